import { Logger } from '@nestjs/common';
import Redis from 'ioredis';
import { randomBytes, randomUUID } from 'node:crypto';
import { once } from 'node:events';
import { ApiError } from '../../src/common/errors/api-error';
import { loadConfig } from '../../src/config/app-config';
import type { AuthenticatedKey } from '../../src/keys/key-cache';
import { MetricsService } from '../../src/metrics/metrics.service';
import { RateLimiter, type RateLimitGrant } from '../../src/ratelimit/rate-limiter.service';
import { RedisService } from '../../src/redis/redis.service';
import { REDIS_URL } from '../helpers/databases';
import { sleep } from '../helpers/fake-provider';
import { waitFor } from '../helpers/wait';

/**
 * RateLimiter on the real Redis, several instances standing for several gateway processes of one
 * deployment (one Redis prefix), each with its own connection, as a process has.
 */
class LimiterProcess {
  readonly metrics = new MetricsService();
  readonly redis: RedisService;
  readonly limiter: RateLimiter;

  constructor(prefix: string, env: Record<string, string> = {}) {
    // a loaded test machine must not turn a slow answer into a check skipped (which lets the request through)
    const config = loadConfig({
      NODE_ENV: 'test',
      REDIS_URL,
      REDIS_PREFIX: prefix,
      LOG_LEVEL: 'error',
      RATE_LIMIT_TIMEOUT_MS: '2000',
      ...env,
    });
    this.redis = new RedisService(config);
    this.limiter = new RateLimiter(this.redis, config, this.metrics);
  }

  /** Redis calls of the limiter, by kind (check, refill, give_back). */
  async calls(kind: string): Promise<number> {
    const { values } = await this.metrics.rateLimitCalls.get();
    return values.find((v) => v.labels.kind === kind)?.value ?? 0;
  }

  async leased(): Promise<number> {
    return (await this.metrics.rateLimitLeased.get()).values[0]?.value ?? 0;
  }

  /** As the application's shutdown does: shares go back, then the connections close. */
  async close(): Promise<void> {
    await this.limiter.beforeApplicationShutdown();
    await this.redis.onApplicationShutdown();
  }
}

function limitedKey(rpmLimit: number | null, tpmLimit: number | null): AuthenticatedKey {
  return {
    id: randomUUID(),
    workspaceId: randomUUID(),
    name: 'test key',
    prefix: 'sk-nexo-test',
    models: null,
    budgetMicros: null,
    expiresAt: null,
    rpmLimit,
    tpmLimit,
  };
}

/** Lets I/O through between two requests, as a real process serving HTTP does. */
const tick = () => new Promise<void>((resolve) => setImmediate(resolve));

/** Limits count in fixed one-minute windows: a test that needs one window waits out the end of the current one if it is near. */
async function awayFromWindowEnd(needMs = 15_000): Promise<void> {
  const left = 60_000 - (Date.now() % 60_000);
  if (left < needMs) await sleep(left + 100);
}

/** A check's outcome: its grant, or the 429 it was refused with. */
async function attempt(process: LimiterProcess, key: AuthenticatedKey, tokens: number): Promise<RateLimitGrant | ApiError> {
  try {
    const grant = await process.limiter.check(key, tokens);
    if (!grant) throw new Error('the check was skipped (Redis did not answer)');
    return grant;
  } catch (err) {
    if (err instanceof ApiError && err.status === 429) return err;
    throw err;
  }
}

describe('RateLimiter leases (real Redis)', () => {
  let prefix: string;
  let redis: Redis;
  const open: LimiterProcess[] = [];
  /** A process, once its Redis connection is up (as a gateway is once it is ready). */
  const start = async (env: Record<string, string> = {}) => {
    const process = new LimiterProcess(prefix, env);
    open.push(process);
    if (process.redis.client.status !== 'ready') await once(process.redis.client, 'ready');
    return process;
  };
  const window = () => Math.floor(Date.now() / 60_000);
  const counted = async (key: AuthenticatedKey, kind: 'r' | 't', w: number) =>
    Number(await redis.get(`${prefix}:rl:${key.id}:${kind}:${w}`));

  beforeAll(() => {
    redis = new Redis(REDIS_URL);
  });
  beforeEach(() => {
    prefix = `nexotest-${randomBytes(5).toString('hex')}`;
  });
  afterEach(async () => {
    await Promise.all(open.splice(0).map((p) => p.close()));
    const keys = await redis.keys(`${prefix}:*`);
    if (keys.length) await redis.del(...keys);
  });
  afterAll(() => redis.disconnect());

  it('admits most requests of a key with a large RPM from its share, with far fewer Redis calls than requests', async () => {
    const gateway = await start();
    const key = limitedKey(100_000, null);
    await awayFromWindowEnd();
    const w = window();
    const n = 400;
    for (let i = 0; i < n; i++) {
      const grant = await attempt(gateway, key, 50);
      if (grant instanceof ApiError) throw grant;
      // one process alone: its headers count down one by one, whole shares or not
      expect(grant.headers['x-ratelimit-remaining-requests']).toBe(String(100_000 - i - 1));
      expect(grant.headers['x-ratelimit-limit-requests']).toBe('100000');
      await tick();
    }
    const redisCalls = (await gateway.calls('check')) + (await gateway.calls('refill'));
    expect(redisCalls).toBeLessThan(n / 5);
    expect(await gateway.leased()).toBeGreaterThan(n / 2);
    expect((await gateway.leased()) + (await gateway.calls('check'))).toBe(n);

    // the window counts the requests and the unused share, taken before any of it was used
    await sleep(20);
    expect(await counted(key, 'r', w)).toBeGreaterThan(n);
    expect(await counted(key, 'r', w)).toBeLessThanOrEqual(n + 100_000 / 8);
    // peek (the headers of GET answers) counts the unused share as room
    expect((await gateway.limiter.peek(key))?.['x-ratelimit-remaining-requests']).toBe(String(100_000 - n));
    // at shutdown the unused share goes back: the window counts exactly what was admitted
    await gateway.close();
    open.splice(open.indexOf(gateway), 1);
    expect(await counted(key, 'r', w)).toBe(n);
  });

  it('never admits more than the RPM across processes, and refuses only once the window is really full', async () => {
    const processes = await Promise.all([start(), start(), start()]);
    const key = limitedKey(1_000, null);
    await awayFromWindowEnd(20_000);
    const w = window();
    const admitted: RateLimitGrant[] = [];
    const refused: ApiError[] = [];
    // 1300 requests, each process sending its third with four at a time
    await Promise.all(
      processes.flatMap((process, p) =>
        [0, 1, 2, 3].map(async (worker) => {
          for (let i = worker; i < 434 - (p === 2 ? 2 : 0); i += 4) {
            const outcome = await attempt(process, key, 10);
            if (outcome instanceof ApiError) refused.push(outcome);
            else admitted.push(outcome);
            await tick();
          }
        }),
      ),
    );
    expect(admitted.length + refused.length).toBe(1_300);
    const leased = (await Promise.all(processes.map((p) => p.leased()))).reduce((a, b) => a + b);
    expect(leased).toBeGreaterThan(0);
    if (window() === w) {
      expect(admitted).toHaveLength(1_000);
      expect(refused).toHaveLength(300);
    } else {
      expect(admitted.length).toBeLessThanOrEqual(2_000);
    }
    for (const error of refused) {
      expect(error).toMatchObject({ code: 'rate_limit_exceeded', type: 'requests' });
      expect(error.headers).toMatchObject({ 'x-ratelimit-limit-requests': '1000', 'x-ratelimit-remaining-requests': '0' });
      expect(Number(error.headers['retry-after'])).toBeGreaterThanOrEqual(1);
    }
    for (const grant of admitted) {
      const remaining = Number(grant.headers['x-ratelimit-remaining-requests']);
      expect(remaining).toBeGreaterThanOrEqual(0);
      expect(remaining).toBeLessThan(1_000);
    }
    await Promise.all(open.splice(0).map((p) => p.close()));
    expect(await counted(key, 'r', w)).toBeLessThanOrEqual(1_000);
    if (window() === w) expect(await counted(key, 'r', w)).toBe(1_000);
  });

  it('never reserves more than the TPM across processes', async () => {
    const processes = await Promise.all([start(), start(), start()]);
    const key = limitedKey(100_000, 30_000);
    await awayFromWindowEnd(20_000);
    const w = window();

    // no give-backs: 300 reservations of 100 tokens fill the window exactly
    const run = async (perProcess: number, used: number | null) => {
      const outcomes: Array<RateLimitGrant | ApiError> = [];
      await Promise.all(
        processes.flatMap((process) =>
          [0, 1, 2, 3].map(async (worker) => {
            for (let i = worker; i < perProcess; i += 4) {
              const outcome = await attempt(process, key, 100);
              outcomes.push(outcome);
              if (used !== null && !(outcome instanceof ApiError)) process.limiter.giveBack(outcome.reservation, used);
              await tick();
            }
          }),
        ),
      );
      return outcomes;
    };
    const first = await run(140, null);
    const admitted = first.filter((o) => !(o instanceof ApiError));
    const refused = first.filter((o): o is ApiError => o instanceof ApiError);
    if (window() === w) expect(admitted).toHaveLength(300);
    else expect(admitted.length).toBeLessThanOrEqual(600);
    expect(refused.length).toBe(420 - admitted.length);
    for (const error of refused) {
      expect(error).toMatchObject({ code: 'rate_limit_exceeded', type: 'tokens' });
      expect(error.message).toContain('30000 tokens per minute');
      expect(Number(error.headers['x-ratelimit-remaining-tokens'])).toBeLessThan(100);
    }
    for (const grant of admitted as RateLimitGrant[]) {
      expect(grant.reservation?.tokens).toBe(100);
      expect(Number(grant.headers['x-ratelimit-remaining-tokens'])).toBeLessThanOrEqual(30_000 - 100);
    }
    // every reservation was counted: nothing more, nothing less
    expect(await counted(key, 't', w)).toBeLessThanOrEqual(30_000);
    expect((await Promise.all(processes.map((p) => p.leased()))).reduce((a, b) => a + b)).toBeGreaterThan(0);
  });

  it('counts what leased requests used once their unused tokens come back, and nothing is lost on the way', async () => {
    const processes = await Promise.all([start(), start(), start()]);
    const key = limitedKey(100_000, 30_000);
    await awayFromWindowEnd(20_000);
    const w = window();
    let admitted = 0;
    let refused = 0;
    await Promise.all(
      processes.flatMap((process) =>
        [0, 1, 2, 3].map(async (worker) => {
          for (let i = worker; i < 200; i += 4) {
            const outcome = await attempt(process, key, 100);
            if (outcome instanceof ApiError) {
              expect(outcome.type).toBe('tokens');
              refused++;
            } else {
              admitted++;
              // the request used 40 of the 100 tokens it reserved
              process.limiter.giveBack(outcome.reservation, 40);
            }
            await tick();
          }
        }),
      ),
    );
    expect(admitted + refused).toBe(600);
    expect(admitted).toBeGreaterThan(300); // the given-back tokens were used again
    expect(await counted(key, 't', w)).toBeLessThanOrEqual(30_000);
    // once every process has given back its share, the window counts what was used
    await Promise.all(open.splice(0).map((p) => p.close()));
    if (window() === w) expect(await counted(key, 't', w)).toBe(admitted * 40);
  });

  it('gives an idle share back to the window', async () => {
    const gateway = await start();
    const key = limitedKey(50_000, null);
    await awayFromWindowEnd();
    const w = window();
    for (let i = 0; i < 50; i++) {
      expect(await attempt(gateway, key, 1)).not.toBeInstanceOf(ApiError);
      await tick();
    }
    await sleep(20); // the last refill's answer
    expect(await counted(key, 'r', w)).toBeGreaterThan(50);
    await waitFor('the idle share to go back', async () => ((await counted(key, 'r', w)) === 50 ? true : undefined));
    expect(await gateway.calls('give_back')).toBeGreaterThan(0);
  });

  it('keeps one exact Redis check per request for small limits, or when leases are off', async () => {
    const small = await start();
    const off = await start({ RATE_LIMIT_LEASE_MIN_RPM: '0' });
    const smallKey = limitedKey(599, 100_000);
    const largeKey = limitedKey(100_000, null);
    await awayFromWindowEnd();
    const w = window();
    for (let i = 0; i < 30; i++) {
      const grant = await attempt(small, smallKey, 10);
      expect(grant).not.toBeInstanceOf(ApiError);
      expect((grant as RateLimitGrant).headers['x-ratelimit-remaining-requests']).toBe(String(599 - i - 1));
      expect(await attempt(off, largeKey, 10)).not.toBeInstanceOf(ApiError);
    }
    expect(await small.calls('check')).toBe(30);
    expect(await off.calls('check')).toBe(30);
    expect(await small.leased()).toBe(0);
    expect(await off.leased()).toBe(0);
    expect(await counted(smallKey, 'r', w)).toBe(30);
    expect(await counted(largeKey, 'r', w)).toBe(30);
  });

  it('lets requests through, warning once, while Redis is unreachable', async () => {
    const warn = jest.spyOn(Logger.prototype, 'warn').mockImplementation(() => undefined);
    try {
      const gateway = new LimiterProcess(prefix, { REDIS_URL: 'redis://127.0.0.1:1' });
      open.push(gateway);
      const key = limitedKey(100_000, 100_000);
      for (let i = 0; i < 5; i++) expect(await gateway.limiter.check(key, 10)).toBeNull();
      expect(await gateway.limiter.peek(key)).toBeNull();
      const warnings = warn.mock.calls.filter(([message]) => String(message).includes('Rate limits not enforced'));
      expect(warnings).toHaveLength(1);
    } finally {
      warn.mockRestore();
    }
  });
});
