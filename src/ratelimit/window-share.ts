/** A share is sized from what the process asked of the key in about this long. */
export const SHARE_SPAN_MS = 200;

/**
 * One process's share of one key's window (a lease): requests and tokens already counted in the
 * shared Redis window and not used yet, the window's counts as Redis last gave them, and the
 * process's recent demand, which sizes the next share. A share belongs to its window and dies
 * with it.
 */
export class WindowShare {
  /** Unused requests of the share (counted in Redis already). */
  requests = 0;
  /** Unused tokens of the share, given-back tokens of leased requests included. */
  tokens = 0;
  /** The window's counts in Redis as last seen (every process's whole shares included). */
  seenRequests = 0;
  seenTokens = 0;
  /** A call that may grant a share is in flight: one at a time per key. */
  refilling = false;
  /** The last refill off the path found no room: none is tried again until a request's own call gets a share. */
  full = false;
  lastUsed: number;
  private spanStart: number;
  private spanRequests = 0;
  private spanTokens = 0;
  private lastSpanRequests = 0;
  private lastSpanTokens = 0;

  constructor(
    readonly window: number,
    now: number,
  ) {
    this.lastUsed = now;
    this.spanStart = now;
  }

  /** One request's demand (admitted from the share or not), `tokens` its reservation. */
  note(now: number, tokens: number): void {
    this.lastUsed = now;
    const elapsed = now - this.spanStart;
    if (elapsed >= SHARE_SPAN_MS) {
      const adjacent = elapsed < 2 * SHARE_SPAN_MS;
      this.lastSpanRequests = adjacent ? this.spanRequests : 0;
      this.lastSpanTokens = adjacent ? this.spanTokens : 0;
      this.spanRequests = 0;
      this.spanTokens = 0;
      this.spanStart = now;
    }
    this.spanRequests++;
    this.spanTokens += tokens;
  }

  /** Requests a full share holds: what the process was asked in about the last span, at least 1. */
  get targetRequests(): number {
    return Math.max(1, this.lastSpanRequests, this.spanRequests);
  }

  /** Tokens a full share holds: targetRequests at the recent mean reservation, or at `tokens` if more. */
  targetTokens(tokens = 0): number {
    const requests = this.lastSpanRequests + this.spanRequests;
    const mean = requests > 0 ? (this.lastSpanTokens + this.spanTokens) / requests : 0;
    return Math.ceil(this.targetRequests * Math.max(mean, tokens));
  }

  /** Whether the share is under half of what it should hold, so a refill should start before it runs out. */
  low(countsTokens: boolean): boolean {
    return this.requests * 2 < this.targetRequests || (countsTokens && this.tokens * 2 < this.targetTokens());
  }

  /** Takes one request (and its tokens) from the share, if it holds them. */
  take(tokens: number): boolean {
    if (this.requests < 1 || this.tokens < tokens) return false;
    this.requests--;
    this.tokens -= tokens;
    return true;
  }

  /** Empties the share, answering what it held (to be given back). */
  drain(): { requests: number; tokens: number } {
    const held = { requests: this.requests, tokens: this.tokens };
    this.requests = 0;
    this.tokens = 0;
    return held;
  }
}
