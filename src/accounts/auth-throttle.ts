import { Injectable, Logger } from '@nestjs/common';
import { createHash } from 'node:crypto';
import { ApiError, GatewayError } from '../common/errors/api-error';
import { AppConfig } from '../config/app-config';
import { addressBucket } from '../keys/unknown-key-throttle';
import { RedisService } from '../redis/redis.service';

/** Fixed windows of login attempts (15 min) and sign-ups (1 h). */
export const LOGIN_WINDOW_SECONDS = 15 * 60;
export const SIGNUP_WINDOW_SECONDS = 60 * 60;

// Takes one attempt from every window in KEYS (ARGV: the limit of each, then the window in
// seconds), all or none: when one is full, nothing is counted and the answer is the seconds
// until the last full window ends; otherwise 0. Counting before the password is checked means
// concurrent guesses cannot overrun a limit.
const TAKE = `
local window = tonumber(ARGV[#ARGV])
local wait = 0
for i = 1, #KEYS do
  local n = tonumber(redis.call('GET', KEYS[i]) or '0')
  if n >= tonumber(ARGV[i]) then
    local ttl = redis.call('TTL', KEYS[i])
    if ttl < 1 then
      redis.call('EXPIRE', KEYS[i], window)
      ttl = window
    end
    if ttl > wait then wait = ttl end
  end
end
if wait > 0 then return wait end
for i = 1, #KEYS do
  if redis.call('INCR', KEYS[i]) == 1 then redis.call('EXPIRE', KEYS[i], window) end
end
return 0
`;

// A login that succeeded: the account's window starts over, and the address gets its attempt back.
const SUCCEEDED = `
redis.call('DEL', KEYS[1])
if tonumber(redis.call('GET', KEYS[2]) or '0') > 0 then redis.call('DECR', KEYS[2]) end
return 0
`;

interface ThrottleClient {
  nexoAuthTake(...args: Array<string | number>): Promise<number>;
  nexoAuthSucceeded(emailKey: string, addressKey: string): Promise<number>;
}

/**
 * Login and sign-up throttles, shared by every gateway process through Redis: failed logins
 * per account (email) and per client address, sign-ups per address. Unlike API rate limits,
 * these guard secrets: when Redis cannot be reached, login and sign-up are refused (503).
 */
@Injectable()
export class AuthThrottle {
  private readonly logger = new Logger(AuthThrottle.name);
  private readonly client: ThrottleClient;

  constructor(
    private readonly redis: RedisService,
    private readonly config: AppConfig,
  ) {
    redis.client.defineCommand('nexoAuthTake', { lua: TAKE });
    redis.client.defineCommand('nexoAuthSucceeded', { numberOfKeys: 2, lua: SUCCEEDED });
    this.client = redis.client as unknown as ThrottleClient;
  }

  /** One login attempt for this email from this address; 429 past either limit. */
  async takeLogin(email: string, address: string | undefined): Promise<void> {
    const { loginFailuresPerEmail, loginFailuresPerAddress } = this.config.authThrottle;
    const wait = await this.take(
      [this.emailKey(email), this.addressKey('login', address)],
      [loginFailuresPerEmail, loginFailuresPerAddress],
      LOGIN_WINDOW_SECONDS,
    );
    if (wait > 0) throw tooMany(`Too many failed logins for this account or from your address. Try again in ${wait}s.`, wait);
  }

  /** The attempt taken by takeLogin succeeded. */
  async loginSucceeded(email: string, address: string | undefined): Promise<void> {
    try {
      await this.client.nexoAuthSucceeded(this.emailKey(email), this.addressKey('login', address));
    } catch (err) {
      this.logger.warn(`Could not reset the login throttle: ${(err as Error).message}`);
    }
  }

  /** One sign-up from this address; 429 past the hourly limit. */
  async takeSignup(address: string | undefined): Promise<void> {
    const wait = await this.take(
      [this.addressKey('signup', address)],
      [this.config.authThrottle.signupsPerAddressPerHour],
      SIGNUP_WINDOW_SECONDS,
    );
    if (wait > 0) throw tooMany(`Too many sign-ups from your address. Try again in ${wait}s.`, wait);
  }

  private async take(keys: string[], limits: number[], windowSeconds: number): Promise<number> {
    try {
      return Number(await this.client.nexoAuthTake(keys.length, ...keys, ...limits, windowSeconds));
    } catch (err) {
      this.logger.error(`Login throttle unavailable: ${(err as Error).message}`);
      throw new GatewayError(503, 'Sign-in is unavailable right now. Try again shortly.', { 'retry-after': '1' });
    }
  }

  /** Emails are hashed: Redis need not hold who tried to log in. */
  private emailKey(email: string): string {
    return this.redis.key('auth', 'login', 'email', createHash('sha256').update(email).digest('hex').slice(0, 32));
  }

  private addressKey(kind: 'login' | 'signup', address: string | undefined): string {
    return this.redis.key('auth', kind, 'addr', addressBucket(address));
  }
}

function tooMany(message: string, retryAfter: number): ApiError {
  return new ApiError(429, 'rate_limit_exceeded', message, 'requests', null, { 'retry-after': String(retryAfter) });
}
