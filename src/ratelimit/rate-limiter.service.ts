import { Injectable, Logger } from '@nestjs/common';
import { RateLimitError } from '../common/errors/api-error';
import { AppConfig } from '../config/app-config';
import type { AuthenticatedKey } from '../keys/key-cache';
import { RedisService } from '../redis/redis.service';

// Fixed one-minute windows per key, requests and tokens counted in one round trip. A refused
// request does not count against the window.
const SCRIPT = `
local rpm = tonumber(ARGV[1])
local tpm = tonumber(ARGV[2])
local tokens = tonumber(ARGV[3])
local ttl = tonumber(ARGV[4])
local r = redis.call('INCR', KEYS[1])
if r == 1 then redis.call('EXPIRE', KEYS[1], ttl) end
if rpm > 0 and r > rpm then
  redis.call('DECR', KEYS[1])
  return {1, rpm}
end
if tpm > 0 then
  local t = redis.call('INCRBY', KEYS[2], tokens)
  if t == tokens then redis.call('EXPIRE', KEYS[2], ttl) end
  if t > tpm then
    redis.call('DECRBY', KEYS[2], tokens)
    redis.call('DECR', KEYS[1])
    return {2, tpm}
  end
end
return {0, 0}
`;

const TIMED_OUT = Symbol('timed out');

/**
 * Requests- and tokens-per-minute limits of a key (its own, else its workspace's; none is
 * unlimited). Limits guard traffic, not money, so an unreachable or frozen Redis lets requests
 * through after RATE_LIMIT_TIMEOUT_MS (50 ms) at most (money is held in PostgreSQL regardless).
 */
@Injectable()
export class RateLimiter {
  private readonly logger = new Logger(RateLimiter.name);
  private lastWarning = 0;

  constructor(
    private readonly redis: RedisService,
    private readonly config: AppConfig,
  ) {
    redis.client.defineCommand('nexoRateLimit', { numberOfKeys: 2, lua: SCRIPT });
  }

  async check(key: AuthenticatedKey, tokens: number): Promise<void> {
    if (key.rpmLimit === null && key.tpmLimit === null) return;
    const now = Date.now();
    const window = Math.floor(now / 60_000);
    const retryAfter = Math.max(1, Math.ceil(((window + 1) * 60_000 - now) / 1000));
    let result: [number, number];
    try {
      const call = (this.redis.client as unknown as RateLimitClient).nexoRateLimit(
        this.redis.key('rl', key.id, 'r', String(window)),
        this.redis.key('rl', key.id, 't', String(window)),
        key.rpmLimit ?? 0,
        key.tpmLimit ?? 0,
        tokens,
        120,
      );
      const answer = await withTimeout(call, this.config.rateLimitTimeoutMs);
      if (answer === TIMED_OUT) throw new Error(`no answer within ${this.config.rateLimitTimeoutMs} ms`);
      result = answer;
    } catch (err) {
      if (now - this.lastWarning > 10_000) {
        this.lastWarning = now;
        this.logger.warn(`Rate limits not enforced: Redis unavailable (${(err as Error).message})`);
      }
      return;
    }
    if (result[0] === 1) throw new RateLimitError('requests', result[1], retryAfter);
    if (result[0] === 2) throw new RateLimitError('tokens', result[1], retryAfter);
  }
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
  nexoRateLimit(rKey: string, tKey: string, rpm: number, tpm: number, tokens: number, ttl: number): Promise<[number, number]>;
}
