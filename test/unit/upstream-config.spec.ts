import { ConfigError, loadConfig } from '../../src/config/app-config';

describe('upstream resilience settings', () => {
  it('default to 3 attempts, 250 ms backoff base, 10 s connect timeout, circuits of 5 failures and 30 s', () => {
    const config = loadConfig({});
    expect(config.upstreamMaxAttempts).toBe(3);
    expect(config.upstreamRetryBaseMs).toBe(250);
    expect(config.upstreamConnectTimeoutMs).toBe(10_000);
    expect(config.circuitBreaker).toEqual({ failures: 5, cooldownMs: 30_000 });
  });

  it('are read from the environment', () => {
    const config = loadConfig({
      UPSTREAM_MAX_ATTEMPTS: '1',
      UPSTREAM_RETRY_BASE_MS: '0',
      UPSTREAM_CONNECT_TIMEOUT_MS: '500',
      CIRCUIT_BREAKER_FAILURES: '2',
      CIRCUIT_BREAKER_COOLDOWN_MS: '1000',
    });
    expect(config.upstreamMaxAttempts).toBe(1);
    expect(config.upstreamRetryBaseMs).toBe(0);
    expect(config.upstreamConnectTimeoutMs).toBe(500);
    expect(config.circuitBreaker).toEqual({ failures: 2, cooldownMs: 1_000 });
  });

  it.each([
    [{ UPSTREAM_MAX_ATTEMPTS: '0' }, 'UPSTREAM_MAX_ATTEMPTS'],
    [{ UPSTREAM_MAX_ATTEMPTS: '11' }, 'UPSTREAM_MAX_ATTEMPTS'],
    [{ UPSTREAM_RETRY_BASE_MS: '-1' }, 'UPSTREAM_RETRY_BASE_MS'],
    [{ UPSTREAM_CONNECT_TIMEOUT_MS: 'soon' }, 'UPSTREAM_CONNECT_TIMEOUT_MS'],
    [{ CIRCUIT_BREAKER_FAILURES: '0' }, 'CIRCUIT_BREAKER_FAILURES'],
    [{ CIRCUIT_BREAKER_COOLDOWN_MS: '1.5' }, 'CIRCUIT_BREAKER_COOLDOWN_MS'],
  ])('stop start-up on %j with one line naming the variable', (env, name) => {
    expect(() => loadConfig(env)).toThrow(ConfigError);
    try {
      loadConfig(env);
    } catch (err) {
      expect((err as Error).message).toContain(name);
      expect((err as Error).message).not.toContain('\n');
    }
  });
});
