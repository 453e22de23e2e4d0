import { BeforeApplicationShutdown, Injectable, Logger } from '@nestjs/common';
import { RateLimitError } from '../common/errors/api-error';
import { AppConfig } from '../config/app-config';
import type { AuthenticatedKey } from '../keys/key-cache';
import { MetricsService } from '../metrics/metrics.service';
import { RedisService } from '../redis/redis.service';
import { goDuration } from './duration';
import { WindowShare } from './window-share';

const WINDOW_MS = 60_000;
const KEY_TTL_SECONDS = 120;
/** A share is at most 1/SHARE_FRACTION of what is left in the window, so one process cannot starve the others. */
const SHARE_FRACTION = 8;
/** A share its process has not drawn on for this long goes back to the window. */
const SHARE_IDLE_MS = 1_000;
/** The longest shutdown waits for the shares to go back. */
const SHUTDOWN_GIVE_BACK_MS = 1_000;

// Fixed one-minute windows per key, requests and tokens counted in one round trip. A refused
// request counts against neither window. Answers {outcome, requests used, tokens used}: outcome
// 0 = admitted (counts include this request), 1 = refused by requests, 2 = refused by tokens
// (counts without this request).
const CHECK = `
local rpm = tonumber(ARGV[1])
local tpm = tonumber(ARGV[2])
local tokens = tonumber(ARGV[3])
local ttl = tonumber(ARGV[4])
local r = redis.call('INCR', KEYS[1])
if r == 1 then redis.call('EXPIRE', KEYS[1], ttl) end
if rpm > 0 and r > rpm then
  redis.call('DECR', KEYS[1])
  return {1, r - 1, tonumber(redis.call('GET', KEYS[2]) or '0')}
end
local t = 0
if tpm > 0 then
  t = redis.call('INCRBY', KEYS[2], tokens)
  if t == tokens then redis.call('EXPIRE', KEYS[2], ttl) end
  if t > tpm then
    redis.call('DECRBY', KEYS[2], tokens)
    redis.call('DECR', KEYS[1])
    return {2, r - 1, t - tokens}
  end
end
return {0, r, t}
`;

// Gives back tokens reserved in a window that has not ended (its key still exists): never
// creates a key, so a late give-back cannot leave a negative counter behind.
const GIVE_BACK = `
if redis.call('EXISTS', KEYS[1]) == 1 then return redis.call('DECRBY', KEYS[1], ARGV[1]) end
return 0
`;

// The check of a key with large limits, which may also take a share of the window for this
// process (a lease) in the same round trip. First gives back the process's unused share (only
// into a window key that still exists, as GIVE_BACK), so that it counts as room; then, when
// `count` is 1, checks and counts the request as CHECK does; then adds the share asked for, only
// if all of it fits in 1/SHARE_FRACTION of what is left of both limits (else none: near the
// limit, requests are checked one by one). ARGV: rpm, tpm (0 = none), count (0 or 1), tokens,
// ttl, requests and tokens given back, requests and tokens asked for. Answers {outcome, requests
// used, tokens used, requests granted, tokens granted}: outcome as CHECK's, the counts include
// the request and the share when admitted.
const LEASE = `
local rpm = tonumber(ARGV[1])
local tpm = tonumber(ARGV[2])
local count = tonumber(ARGV[3])
local tokens = tonumber(ARGV[4])
local ttl = tonumber(ARGV[5])
local backRequests = tonumber(ARGV[6])
local backTokens = tonumber(ARGV[7])
local wantRequests = tonumber(ARGV[8])
local wantTokens = tonumber(ARGV[9])
if backRequests > 0 and redis.call('EXISTS', KEYS[1]) == 1 then redis.call('DECRBY', KEYS[1], backRequests) end
if backTokens > 0 and redis.call('EXISTS', KEYS[2]) == 1 then redis.call('DECRBY', KEYS[2], backTokens) end
local r = tonumber(redis.call('GET', KEYS[1]) or '0')
local t = tonumber(redis.call('GET', KEYS[2]) or '0')
if tpm == 0 then tokens = 0 wantTokens = 0 end
if count == 1 then
  if rpm > 0 and r + 1 > rpm then return {1, r, t, 0, 0} end
  if tpm > 0 and t + tokens > tpm then return {2, r, t, 0, 0} end
else
  tokens = 0
end
local gotRequests = 0
local gotTokens = 0
if wantRequests > 0
  and (rpm == 0 or wantRequests * ${SHARE_FRACTION} <= rpm - r - count)
  and (tpm == 0 or wantTokens * ${SHARE_FRACTION} <= tpm - t - tokens) then
  gotRequests = wantRequests
  gotTokens = wantTokens
end
local addRequests = count + gotRequests
local addTokens = tokens + gotTokens
if addRequests > 0 then
  r = redis.call('INCRBY', KEYS[1], addRequests)
  if r == addRequests then redis.call('EXPIRE', KEYS[1], ttl) end
end
if addTokens > 0 then
  t = redis.call('INCRBY', KEYS[2], addTokens)
  if t == addTokens then redis.call('EXPIRE', KEYS[2], ttl) end
end
return {0, r, t, gotRequests, gotTokens}
`;

const TIMED_OUT = Symbol('timed out');

/** Tokens a request reserved in its window, given back in part once its real usage is known. */
export interface TokenReservation {
  window: number;
  tokensKey: string;
  tokens: number;
  /** Set when the tokens came from this process's share of the key's window: they go back to it. */
  leasedFrom?: string;
}

/** An admitted request's standing: the OpenAI `x-ratelimit-*` headers, and what it reserved. */
export interface RateLimitGrant {
  headers: Record<string, string>;
  /** null when the key has no tokens limit (nothing to give back). */
  reservation: TokenReservation | null;
}

/**
 * Requests- and tokens-per-minute limits of a key (its own, else its workspace's; none is
 * unlimited), shared by every gateway process through Redis in one round trip per request.
 * Tokens are reserved from the request's bound and the unused part is given back once the real
 * usage is known (`giveBack`, off the request's path), so a key's TPM counts what it used.
 * Limits guard traffic, not money, so an unreachable or frozen Redis lets requests through
 * after RATE_LIMIT_TIMEOUT_MS (50 ms) at most (money is held in PostgreSQL regardless).
 *
 * Leases: a key whose RPM is at least RATE_LIMIT_LEASE_MIN_RPM is checked without a Redis call
 * per request. The process takes a share of the key's window (requests and tokens, counted in
 * Redis before any is used: the limits hold across processes), sized from what it was asked in
 * the last ~200 ms and at most 1/8 of what is left, and admits requests from it; the share is
 * refilled off the request's path before it runs out, one refill per key at a time. A request
 * that finds the share empty makes the check itself, giving back what is left of the share and
 * possibly taking a new one in the same round trip. Near the limit no share fits, so requests
 * are checked one by one and a 429 is as exact as without leases. An unused share goes back
 * when the key is idle for a second and at shutdown, and dies with its window.
 */
@Injectable()
export class RateLimiter implements BeforeApplicationShutdown {
  private readonly logger = new Logger(RateLimiter.name);
  private lastWarning = 0;
  /** This process's shares, by key id: at most one per key, of the window it was taken in. */
  private readonly shares = new Map<string, WindowShare>();
  private sweeper: NodeJS.Timeout | null = null;
  private closing = false;

  constructor(
    private readonly redis: RedisService,
    private readonly config: AppConfig,
    private readonly metrics: MetricsService,
  ) {
    redis.client.defineCommand('nexoRateLimit', { numberOfKeys: 2, lua: CHECK });
    redis.client.defineCommand('nexoRateLease', { numberOfKeys: 2, lua: LEASE });
    redis.client.defineCommand('nexoRateGiveBack', { numberOfKeys: 1, lua: GIVE_BACK });
  }

  /**
   * Counts the request and reserves `tokens` in the key's current window, or throws 429
   * rate_limit_exceeded (with Retry-After and the headers). null when the key has no limits or
   * Redis did not answer in time.
   */
  async check(key: AuthenticatedKey, tokens: number): Promise<RateLimitGrant | null> {
    if (key.rpmLimit === null && key.tpmLimit === null) return null;
    if (this.leases(key)) return this.checkLeased(key, tokens);
    const now = Date.now();
    const window = Math.floor(now / WINDOW_MS);
    const resetMs = (window + 1) * WINDOW_MS - now;
    const tokensKey = this.redis.key('rl', key.id, 't', String(window));
    let result: [number, number, number];
    try {
      this.metrics.rateLimitCalls.inc({ kind: 'check' });
      const call = this.client.nexoRateLimit(
        this.redis.key('rl', key.id, 'r', String(window)),
        tokensKey,
        key.rpmLimit ?? 0,
        key.tpmLimit ?? 0,
        tokens,
        KEY_TTL_SECONDS,
      );
      result = await this.inTime(call);
    } catch (err) {
      this.warn(now, err);
      return null;
    }
    const [outcome, requestsUsed, tokensUsed] = result;
    const headers = rateLimitHeaders(key, requestsUsed, tokensUsed, resetMs);
    if (outcome === 0) {
      return { headers, reservation: key.tpmLimit !== null && tokens > 0 ? { window, tokensKey, tokens } : null };
    }
    throw refusal(key, outcome, tokens, tokensUsed, resetMs, headers);
  }

  /**
   * The headers of the key's current windows, without counting anything (for answers that are
   * not rate limited themselves); null when the key has no limits or Redis did not answer in time.
   * This process's unused share counts as room.
   */
  async peek(key: AuthenticatedKey): Promise<Record<string, string> | null> {
    if (key.rpmLimit === null && key.tpmLimit === null) return null;
    const now = Date.now();
    const window = Math.floor(now / WINDOW_MS);
    try {
      const answer = await this.inTime(
        this.redis.client.mget(this.redis.key('rl', key.id, 'r', String(window)), this.redis.key('rl', key.id, 't', String(window))),
      );
      const [requests, tokens] = answer.map((v) => Number(v ?? 0));
      const share = this.shares.get(key.id);
      const unused = share?.window === window ? share : { requests: 0, tokens: 0 };
      return rateLimitHeaders(key, requests - unused.requests, tokens - unused.tokens, (window + 1) * WINDOW_MS - now);
    } catch (err) {
      this.warn(now, err);
      return null;
    }
  }

  /**
   * Gives back the part of a reservation the request did not use, if its window is still the
   * current one (a later window never counted it): to this process's share when it came from
   * one, else to Redis. Fire-and-forget: never awaited by a request.
   */
  giveBack(reservation: TokenReservation | null, usedTokens: number): void {
    if (!reservation) return;
    const unused = reservation.tokens - Math.max(0, Math.floor(usedTokens));
    if (unused <= 0 || Math.floor(Date.now() / WINDOW_MS) !== reservation.window) return;
    const share = reservation.leasedFrom === undefined ? undefined : this.shares.get(reservation.leasedFrom);
    if (share?.window === reservation.window && !this.closing) {
      share.tokens += unused;
      return;
    }
    this.metrics.rateLimitCalls.inc({ kind: 'give_back' });
    this.client.nexoRateGiveBack(reservation.tokensKey, unused).catch((err: Error) => this.warn(Date.now(), err));
  }

  /** Gives every unused share back to its window before the Redis connection closes. */
  async beforeApplicationShutdown(): Promise<void> {
    this.closing = true;
    if (this.sweeper) clearInterval(this.sweeper);
    this.sweeper = null;
    const window = Math.floor(Date.now() / WINDOW_MS);
    const returns = [...this.shares].filter(([, share]) => share.window === window).map(([keyId, share]) => this.returnShare(keyId, share));
    this.shares.clear();
    await withTimeout(Promise.all(returns), SHUTDOWN_GIVE_BACK_MS);
  }

  /** Whether the key's requests are admitted from shares of its window (large limits only). */
  private leases(key: AuthenticatedKey): boolean {
    const min = this.config.rateLimitLeaseMinRpm;
    return min > 0 && key.rpmLimit !== null && key.rpmLimit >= min;
  }

  /**
   * `check` for a key with leases: from this process's share when it holds the request, else
   * by its own round trip, which gives back what is left of the share and asks for a new one
   * (unless another call is asking already).
   */
  private async checkLeased(key: AuthenticatedKey, tokens: number): Promise<RateLimitGrant | null> {
    const now = Date.now();
    const window = Math.floor(now / WINDOW_MS);
    const resetMs = (window + 1) * WINDOW_MS - now;
    const countsTokens = key.tpmLimit !== null;
    const needed = countsTokens ? tokens : 0;
    const share = this.shareOf(key.id, window, now);
    share.note(now, needed);
    const tokensKey = this.redis.key('rl', key.id, 't', String(window));

    if (share.take(needed)) {
      this.metrics.rateLimitLeased.inc();
      if (!share.refilling && !share.full && !this.closing && share.low(countsTokens)) this.refill(key, share);
      return {
        headers: rateLimitHeaders(key, share.seenRequests - share.requests, share.seenTokens - share.tokens, resetMs),
        reservation: countsTokens && needed > 0 ? { window, tokensKey, tokens: needed, leasedFrom: key.id } : null,
      };
    }

    const back = share.drain();
    const asks = !share.refilling && !this.closing;
    const wantRequests = asks ? share.targetRequests : 0;
    const wantTokens = asks && countsTokens ? share.targetTokens(needed) : 0;
    if (asks) share.refilling = true;
    let result: LeaseAnswer;
    try {
      this.metrics.rateLimitCalls.inc({ kind: 'check' });
      const call = this.lease(key, share, 1, needed, back, wantRequests, wantTokens);
      result = await this.inTime(call);
    } catch (err) {
      this.warn(now, err);
      return null;
    }
    const [outcome, requestsUsed, tokensUsed] = result;
    const headers = rateLimitHeaders(key, requestsUsed - share.requests, tokensUsed - share.tokens, resetMs);
    if (outcome === 0) {
      return { headers, reservation: countsTokens && needed > 0 ? { window, tokensKey, tokens: needed } : null };
    }
    throw refusal(key, outcome, needed, tokensUsed, resetMs, headers);
  }

  /** Asks for more share off the request's path. */
  private refill(key: AuthenticatedKey, share: WindowShare): void {
    const wantRequests = Math.max(1, share.targetRequests - share.requests);
    const wantTokens = key.tpmLimit === null ? 0 : Math.max(0, share.targetTokens() - share.tokens);
    share.refilling = true;
    this.metrics.rateLimitCalls.inc({ kind: 'refill' });
    this.lease(key, share, 0, 0, { requests: 0, tokens: 0 }, wantRequests, wantTokens).then(
      ([, , , granted]) => {
        share.full = granted === 0;
      },
      (err: Error) => this.warn(Date.now(), err),
    );
  }

  /**
   * One LEASE call for the key's window of `share`. What it grants is added to the share when
   * the answer comes, however late (a request that stopped waiting does not lose it); a grant
   * clears `full`. Clears `refilling` if the call asked for a share.
   */
  private lease(
    key: AuthenticatedKey,
    share: WindowShare,
    count: 0 | 1,
    tokens: number,
    back: { requests: number; tokens: number },
    wantRequests: number,
    wantTokens: number,
  ): Promise<LeaseAnswer> {
    const window = String(share.window);
    const call = this.client.nexoRateLease(
      this.redis.key('rl', key.id, 'r', window),
      this.redis.key('rl', key.id, 't', window),
      key.rpmLimit ?? 0,
      key.tpmLimit ?? 0,
      count,
      tokens,
      KEY_TTL_SECONDS,
      back.requests,
      back.tokens,
      wantRequests,
      wantTokens,
    );
    const asked = wantRequests > 0;
    return call.then(
      (answer) => {
        const [, requestsUsed, tokensUsed, grantedRequests, grantedTokens] = answer;
        if (asked) share.refilling = false;
        share.seenRequests = requestsUsed;
        share.seenTokens = tokensUsed;
        if (grantedRequests > 0) {
          share.full = false;
          if (this.shares.get(key.id) === share && !this.closing) {
            share.requests += grantedRequests;
            share.tokens += grantedTokens;
          } else {
            // the share was given back or shut down meanwhile: so is this part
            void this.returnShare(key.id, { window: share.window, requests: grantedRequests, tokens: grantedTokens });
          }
        }
        return answer;
      },
      (err: unknown) => {
        if (asked) share.refilling = false;
        throw err;
      },
    );
  }

  /** The key's share of `window` (a new, empty one when its last was of an earlier window). */
  private shareOf(keyId: string, window: number, now: number): WindowShare {
    let share = this.shares.get(keyId);
    if (share?.window !== window) {
      // a share of an ended window ended with it: its counters are no longer anyone's concern
      share = new WindowShare(window, now);
      this.shares.set(keyId, share);
      if (!this.closing) this.sweeper ??= setInterval(() => this.sweep(), SHARE_IDLE_MS / 2).unref();
    }
    return share;
  }

  /** Gives back the shares of idle keys and forgets those of ended windows. */
  private sweep(): void {
    const now = Date.now();
    const window = Math.floor(now / WINDOW_MS);
    for (const [keyId, share] of this.shares) {
      if (share.window !== window) this.shares.delete(keyId);
      else if (now - share.lastUsed >= SHARE_IDLE_MS && !share.refilling) {
        this.shares.delete(keyId);
        void this.returnShare(keyId, share);
      }
    }
    if (this.shares.size === 0 && this.sweeper) {
      clearInterval(this.sweeper);
      this.sweeper = null;
    }
  }

  /** Gives an unused share back to its window in Redis, if the window still exists. */
  private async returnShare(keyId: string, share: Pick<WindowShare, 'window' | 'requests' | 'tokens'>): Promise<void> {
    const window = String(share.window);
    const returns: Array<Promise<number>> = [];
    if (share.requests > 0) returns.push(this.client.nexoRateGiveBack(this.redis.key('rl', keyId, 'r', window), share.requests));
    if (share.tokens > 0) returns.push(this.client.nexoRateGiveBack(this.redis.key('rl', keyId, 't', window), share.tokens));
    if (returns.length === 0) return;
    this.metrics.rateLimitCalls.inc({ kind: 'give_back' }, returns.length);
    await Promise.all(returns).catch((err: Error) => this.warn(Date.now(), err));
  }

  private get client(): RateLimitClient {
    return this.redis.client as unknown as RateLimitClient;
  }

  /** Redis's answer within RATE_LIMIT_TIMEOUT_MS, else an error (the caller lets the request through). */
  private async inTime<T>(call: Promise<T>): Promise<T> {
    const answer = await withTimeout(call, this.config.rateLimitTimeoutMs);
    if (answer === TIMED_OUT) throw new Error(`no answer within ${this.config.rateLimitTimeoutMs} ms`);
    return answer;
  }

  private warn(now: number, err: unknown): void {
    if (now - this.lastWarning > 10_000) {
      this.lastWarning = now;
      this.logger.warn(`Rate limits not enforced: Redis unavailable (${(err as Error).message})`);
    }
  }
}

/** The 429 of a refused check: which limit, Retry-After, and the headers. */
function refusal(
  key: AuthenticatedKey,
  outcome: number,
  tokens: number,
  tokensUsed: number,
  resetMs: number,
  headers: Record<string, string>,
): RateLimitError {
  const retryAfter = Math.max(1, Math.ceil(resetMs / 1000));
  const error =
    outcome === 1
      ? new RateLimitError('requests', key.rpmLimit!, retryAfter)
      : new RateLimitError('tokens', key.tpmLimit!, retryAfter, { used: tokensUsed, requested: tokens });
  Object.assign(error.headers, headers, { 'retry-after-ms': String(resetMs) });
  return error;
}

/**
 * OpenAI's rate-limit headers for the limits the key has: limit, remaining (from 0 to the
 * limit) and the time until the window resets, as a Go duration (`59ms`, `1.5s`, `6m0s`).
 */
export function rateLimitHeaders(
  key: Pick<AuthenticatedKey, 'rpmLimit' | 'tpmLimit'>,
  requestsUsed: number,
  tokensUsed: number,
  resetMs: number,
): Record<string, string> {
  const headers: Record<string, string> = {};
  const reset = goDuration(resetMs);
  if (key.rpmLimit !== null) {
    headers['x-ratelimit-limit-requests'] = String(key.rpmLimit);
    headers['x-ratelimit-remaining-requests'] = String(Math.min(key.rpmLimit, Math.max(0, key.rpmLimit - requestsUsed)));
    headers['x-ratelimit-reset-requests'] = reset;
  }
  if (key.tpmLimit !== null) {
    headers['x-ratelimit-limit-tokens'] = String(key.tpmLimit);
    headers['x-ratelimit-remaining-tokens'] = String(Math.min(key.tpmLimit, Math.max(0, key.tpmLimit - tokensUsed)));
    headers['x-ratelimit-reset-tokens'] = reset;
  }
  return headers;
}

/**
 * The call's answer, or TIMED_OUT after `ms`. The timer yields once more to I/O before giving
 * up, so an answer that arrived while the event loop was busy still wins over the timer.
 */
function withTimeout<T>(call: Promise<T>, ms: number): Promise<T | typeof TIMED_OUT> {
  call.catch(() => undefined); // a late failure, after the timeout, is nobody's concern
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<typeof TIMED_OUT>((resolve) => {
    timer = setTimeout(() => setImmediate(() => resolve(TIMED_OUT)), ms);
  });
  return Promise.race([call, timeout]).finally(() => clearTimeout(timer));
}

/** LEASE's answer: outcome, requests used, tokens used, requests granted, tokens granted. */
type LeaseAnswer = [number, number, number, number, number];

interface RateLimitClient {
  nexoRateLimit(rKey: string, tKey: string, rpm: number, tpm: number, tokens: number, ttl: number): Promise<[number, number, number]>;
  nexoRateLease(
    rKey: string,
    tKey: string,
    rpm: number,
    tpm: number,
    count: number,
    tokens: number,
    ttl: number,
    backRequests: number,
    backTokens: number,
    wantRequests: number,
    wantTokens: number,
  ): Promise<LeaseAnswer>;
  nexoRateGiveBack(key: string, amount: number): Promise<number>;
}
