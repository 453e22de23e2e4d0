import { ConfigError, loadConfig } from '../../src/config/app-config';
import { applyHeapGrowth } from '../../src/config/heap-growth';

describe('loadConfig', () => {
  it('has working defaults in development', () => {
    const config = loadConfig({});
    expect(config.port).toBe(3001);
    expect(config.databaseUrl).toBe('postgres://postgres@127.0.0.1:5432/nexorouter');
    expect(config.redisUrl).toBe('redis://127.0.0.1:6379');
    expect(config.role).toBe('all');
    expect(config.adminToken).toBeNull();
    expect(config.encryptionKey).toHaveLength(32);
    expect(config.runsHttp && config.runsWorkers).toBe(true);
  });

  it.each([
    [{ PORT: 'abc' }, 'PORT'],
    [{ PORT: '70000' }, 'PORT'],
    [{ DATABASE_URL: 'mysql://x' }, 'DATABASE_URL'],
    [{ REDIS_URL: 'http://x' }, 'REDIS_URL'],
    [{ NEXO_ROLE: 'both' }, 'NEXO_ROLE'],
    [{ ADMIN_TOKEN: 'short' }, 'ADMIN_TOKEN'],
    [{ NEXO_ENCRYPTION_KEY: 'not-base64!' }, 'NEXO_ENCRYPTION_KEY'],
    [{ NODE_ENV: 'staging' }, 'NODE_ENV'],
    [{ PROVIDER_DEEPSEEK_BASE_URL: 'ftp://x' }, 'PROVIDER_DEEPSEEK_BASE_URL'],
    [{ HOLD_TTL_SECONDS: '0' }, 'HOLD_TTL_SECONDS'],
    [{ RATE_LIMIT_LEASE_MIN_RPM: '-1' }, 'RATE_LIMIT_LEASE_MIN_RPM'],
    [{ RATE_LIMIT_LEASE_MIN_RPM: 'many' }, 'RATE_LIMIT_LEASE_MIN_RPM'],
    [{ ESCROW_LEASES: 'yes' }, 'ESCROW_LEASES'],
    [{ HEAP_GROWTH_PERCENT: '-5' }, 'HEAP_GROWTH_PERCENT'],
    [{ HEAP_GROWTH_PERCENT: '5000' }, 'HEAP_GROWTH_PERCENT'],
    [{ LEASE_TTL_MS: '500' }, 'LEASE_TTL_MS'],
    [{ LEASE_TTL_MS: '4000', LEASE_RENEW_MS: '2000' }, 'LEASE_RENEW_MS'],
    [{ UPSTREAM_TIMEOUT_MS: '1.5' }, 'UPSTREAM_TIMEOUT_MS'],
    [{ SWEEP_INTERVAL_MS: '5' }, 'SWEEP_INTERVAL_MS'],
    [{ USAGE_LOG_RETENTION_DAYS: '0' }, 'USAGE_LOG_RETENTION_DAYS'],
    [{ USAGE_LOG_RETENTION_DAYS: '30d' }, 'USAGE_LOG_RETENTION_DAYS'],
  ])('stops on %j with one line naming the variable', (env, name) => {
    let error: unknown;
    try {
      loadConfig(env);
    } catch (err) {
      error = err;
    }
    expect(error).toBeInstanceOf(ConfigError);
    const message = (error as Error).message;
    expect(message).toContain(name);
    expect(message).not.toContain('\n');
  });

  it('keeps usage logs forever unless USAGE_LOG_RETENTION_DAYS says how many days', () => {
    expect(loadConfig({}).usageLogRetentionDays).toBeNull();
    expect(loadConfig({ USAGE_LOG_RETENTION_DAYS: '' }).usageLogRetentionDays).toBeNull();
    expect(loadConfig({ USAGE_LOG_RETENTION_DAYS: '400' }).usageLogRetentionDays).toBe(400);
  });

  it("caps the heap's growth at 100 % unless HEAP_GROWTH_PERCENT says otherwise (0: V8 decides)", () => {
    expect(loadConfig({}).heapGrowthPercent).toBe(100);
    expect(loadConfig({ HEAP_GROWTH_PERCENT: '0' }).heapGrowthPercent).toBe(0);
    const flags: string[] = [];
    applyHeapGrowth(loadConfig({ HEAP_GROWTH_PERCENT: '150' }).heapGrowthPercent, (f) => flags.push(f));
    applyHeapGrowth(0, (f) => flags.push(f));
    expect(flags).toEqual(['--heap-growing-percent=150']);
  });

  it('holds requests against escrow leases unless ESCROW_LEASES=false', () => {
    expect(loadConfig({}).leases).toEqual({ enabled: true, ttlMs: 5_000, renewMs: 250 });
    expect(loadConfig({ ESCROW_LEASES: 'false' }).leases.enabled).toBe(false);
    expect(loadConfig({ LEASE_TTL_MS: '20000', LEASE_RENEW_MS: '1000' }).leases).toEqual({ enabled: true, ttlMs: 20_000, renewMs: 1_000 });
  });

  it('leases rate-limit shares for keys of 600 requests per minute and more unless RATE_LIMIT_LEASE_MIN_RPM says otherwise', () => {
    expect(loadConfig({}).rateLimitLeaseMinRpm).toBe(600);
    expect(loadConfig({ RATE_LIMIT_LEASE_MIN_RPM: '0' }).rateLimitLeaseMinRpm).toBe(0);
    expect(loadConfig({ RATE_LIMIT_LEASE_MIN_RPM: '5000' }).rateLimitLeaseMinRpm).toBe(5000);
  });

  it('refuses production without its secrets', () => {
    expect(() => loadConfig({ NODE_ENV: 'production' })).toThrow(/ADMIN_TOKEN is required/);
    expect(() => loadConfig({ NODE_ENV: 'production', ADMIN_TOKEN: 'a'.repeat(32) })).toThrow(/JWT_SECRET is required/);
    const ok = loadConfig({
      NODE_ENV: 'production',
      ADMIN_TOKEN: 'a'.repeat(32),
      JWT_SECRET: 'b'.repeat(32),
      NEXO_ENCRYPTION_KEY: Buffer.alloc(32, 7).toString('base64'),
    });
    expect(ok.isProduction).toBe(true);
    expect(ok.seedDemo).toBe(false);
  });

  it('reads provider overrides and roles', () => {
    const config = loadConfig({
      PROVIDER_DEEPSEEK_BASE_URL: 'http://127.0.0.1:9/v1/',
      PROVIDER_DEEPSEEK_API_KEY: 'sk-x',
      NEXO_ROLE: 'worker',
    });
    expect(config.providerOverrides.deepseek).toEqual({ baseUrl: 'http://127.0.0.1:9/v1', apiKey: 'sk-x' });
    expect(config.runsHttp).toBe(false);
    expect(config.runsWorkers).toBe(true);
  });
});
