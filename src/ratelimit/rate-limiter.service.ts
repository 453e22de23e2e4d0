import { Injectable, Logger } from '@nestjs/common';
import { RateLimitError } from '../common/errors/api-error';
import { AppConfig } from '../config/app-config';
import type { AuthenticatedKey } from '../keys/key-cache';
import { RedisService } from '../redis/redis.service';
import { goDuration } from './duration';

const WINDOW_MS = 60_000;
const KEY_TTL_SECONDS = 120;

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

const TIMED_OUT = Symbol('timed out');

/** Tokens a request reserved in its window, given back in part once its real usage is known. */
export interface TokenReservation {
  window: number;
  tokensKey: string;
  tokens: number;
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
 */
@Injectable()
export class RateLimiter {
  private readonly logger = new Logger(RateLimiter.name);
  private lastWarning = 0;

  constructor(
    private readonly redis: RedisService,
    private readonly config: AppConfig,
  ) {
    redis.client.defineCommand('nexoRateLimit', { numberOfKeys: 2, lua: CHECK });
    redis.client.defineCommand('nexoRateGiveBack', { numberOfKeys: 1, lua: GIVE_BACK });
  }

  /**
   * Counts the request and reserves `tokens` in the key's current window, or throws 429
   * rate_limit_exceeded (with Retry-After and the headers). null when the key has no limits or
   * Redis did not answer in time.
   */
  async check(key: AuthenticatedKey, tokens: number): Promise<RateLimitGrant | null> {
    if (key.rpmLimit === null && key.tpmLimit === null) return null;
    const now = Date.now();
    const window = Math.floor(now / WINDOW_MS);
    const resetMs = (window + 1) * WINDOW_MS - now;
    const tokensKey = this.redis.key('rl', key.id, 't', String(window));
    let result: [number, number, number];
    try {
      const call = this.client.nexoRateLimit(
        this.redis.key('rl', key.id, 'r', String(window)),
        tokensKey,
        key.rpmLimit ?? 0,
        key.tpmLimit ?? 0,
        tokens,
        KEY_TTL_SECONDS,
      );
      const answer = await withTimeout(call, this.config.rateLimitTimeoutMs);
      if (answer === TIMED_OUT) throw new Error(`no answer within ${this.config.rateLimitTimeoutMs} ms`);
      result = answer;
    } catch (err) {
      this.warn(now, err);
      return null;
    }
    const [outcome, requestsUsed, tokensUsed] = result;
    const headers = rateLimitHeaders(key, requestsUsed, tokensUsed, resetMs);
    if (outcome === 0) {
      return { headers, reservation: key.tpmLimit !== null && tokens > 0 ? { window, tokensKey, tokens } : null };
    }
    const retryAfter = Math.max(1, Math.ceil(resetMs / 1000));
    const error =
      outcome === 1
        ? new RateLimitError('requests', key.rpmLimit!, retryAfter)
        : new RateLimitError('tokens', key.tpmLimit!, retryAfter, { used: tokensUsed, requested: tokens });
    Object.assign(error.headers, headers, { 'retry-after-ms': String(resetMs) });
    throw error;
  }

  /**
   * The headers of the key's current windows, without counting anything (for answers that are
   * not rate limited themselves); null when the key has no limits or Redis did not answer in time.
   */
  async peek(key: AuthenticatedKey): Promise<Record<string, string> | null> {
    if (key.rpmLimit === null && key.tpmLimit === null) return null;
    const now = Date.now();
    const window = String(Math.floor(now / WINDOW_MS));
    try {
      const answer = await withTimeout(
        this.redis.client.mget(this.redis.key('rl', key.id, 'r', window), this.redis.key('rl', key.id, 't', window)),
        this.config.rateLimitTimeoutMs,
      );
      if (answer === TIMED_OUT) throw new Error(`no answer within ${this.config.rateLimitTimeoutMs} ms`);
      const [requests, tokens] = answer.map((v) => Number(v ?? 0));
      return rateLimitHeaders(key, requests, tokens, (Math.floor(now / WINDOW_MS) + 1) * WINDOW_MS - now);
    } catch (err) {
      this.warn(now, err);
      return null;
    }
  }

  /**
   * Gives back the part of a reservation the request did not use, if its window is still the
   * current one (a later window never counted it). Fire-and-forget: never awaited by a request.
   */
  giveBack(reservation: TokenReservation | null, usedTokens: number): void {
    if (!reservation) return;
    const unused = reservation.tokens - Math.max(0, Math.floor(usedTokens));
    if (unused <= 0 || Math.floor(Date.now() / WINDOW_MS) !== reservation.window) return;
    this.client.nexoRateGiveBack(reservation.tokensKey, unused).catch((err: Error) => this.warn(Date.now(), err));
  }

  private get client(): RateLimitClient {
    return this.redis.client as unknown as RateLimitClient;
  }

  private warn(now: number, err: unknown): void {
    if (now - this.lastWarning > 10_000) {
      this.lastWarning = now;
      this.logger.warn(`Rate limits not enforced: Redis unavailable (${(err as Error).message})`);
    }
  }
}

/**
 * OpenAI's rate-limit headers for the limits the key has: limit, remaining and the time until
 * the window resets, as a Go duration (`59ms`, `1.5s`, `6m0s`).
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
    headers['x-ratelimit-remaining-requests'] = String(Math.max(0, key.rpmLimit - requestsUsed));
    headers['x-ratelimit-reset-requests'] = reset;
  }
  if (key.tpmLimit !== null) {
    headers['x-ratelimit-limit-tokens'] = String(key.tpmLimit);
    headers['x-ratelimit-remaining-tokens'] = String(Math.max(0, key.tpmLimit - tokensUsed));
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

interface RateLimitClient {
  nexoRateLimit(rKey: string, tKey: string, rpm: number, tpm: number, tokens: number, ttl: number): Promise<[number, number, number]>;
  nexoRateGiveBack(tKey: string, tokens: number): Promise<number>;
}
