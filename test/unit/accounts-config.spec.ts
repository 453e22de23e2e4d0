import { ConfigError, loadConfig } from '../../src/config/app-config';

describe('loadConfig: sessions and sign-up', () => {
  it('uses JWT_SECRET, else a random secret per process (CONTRACT §1: development only)', () => {
    const one = loadConfig({ DATABASE_URL: 'postgres://postgres@127.0.0.1:5432/one' });
    expect(loadConfig({ DATABASE_URL: 'postgres://postgres@127.0.0.1:5432/one' }).jwtSecret).not.toBe(one.jwtSecret);
    expect(one.jwtSecret).toMatch(/^[0-9a-f]{64}$/);
    expect(loadConfig({ JWT_SECRET: 's'.repeat(32) }).jwtSecret).toBe('s'.repeat(32));
  });

  it('still requires JWT_SECRET in production', () => {
    const env = { NODE_ENV: 'production', ADMIN_TOKEN: 'a'.repeat(32), NEXO_ENCRYPTION_KEY: Buffer.alloc(32, 7).toString('base64') };
    expect(() => loadConfig(env)).toThrow(/JWT_SECRET is required/);
    expect(() => loadConfig({ ...env, JWT_SECRET: 'short' })).toThrow(/JWT_SECRET must be at least 32 characters/);
  });

  it('has conservative sign-up defaults: a credit outside production only', () => {
    expect(loadConfig({}).signup).toEqual({ rpmLimit: 60, tpmLimit: 100_000, creditMicros: 1_000_000 });
    expect(loadConfig({ NODE_ENV: 'test' }).signup.creditMicros).toBe(1_000_000);
    const production = loadConfig({
      NODE_ENV: 'production',
      ADMIN_TOKEN: 'a'.repeat(32),
      JWT_SECRET: 'b'.repeat(32),
      NEXO_ENCRYPTION_KEY: Buffer.alloc(32, 7).toString('base64'),
    });
    expect(production.signup).toEqual({ rpmLimit: 60, tpmLimit: 100_000, creditMicros: 0 });
    expect(production.authThrottle).toEqual({ loginFailuresPerEmail: 10, loginFailuresPerAddress: 50, signupsPerAddressPerHour: 10 });
  });

  it('reads the sign-up variables; 0 limits mean none', () => {
    const config = loadConfig({ SIGNUP_RPM_LIMIT: '0', SIGNUP_TPM_LIMIT: '5000', SIGNUP_CREDIT_MICROS: '2500000' });
    expect(config.signup).toEqual({ rpmLimit: null, tpmLimit: 5000, creditMicros: 2_500_000 });
  });

  it.each([
    [{ SIGNUP_RPM_LIMIT: '-1' }, 'SIGNUP_RPM_LIMIT'],
    [{ SIGNUP_TPM_LIMIT: '1.5' }, 'SIGNUP_TPM_LIMIT'],
    [{ SIGNUP_CREDIT_MICROS: '1000000000001' }, 'SIGNUP_CREDIT_MICROS'],
    [{ SIGNUP_CREDIT_MICROS: 'lots' }, 'SIGNUP_CREDIT_MICROS'],
    [{ LOGIN_FAILURES_PER_EMAIL: '0' }, 'LOGIN_FAILURES_PER_EMAIL'],
    [{ LOGIN_FAILURES_PER_ADDRESS: 'x' }, 'LOGIN_FAILURES_PER_ADDRESS'],
    [{ SIGNUPS_PER_ADDRESS_PER_HOUR: '0' }, 'SIGNUPS_PER_ADDRESS_PER_HOUR'],
  ])('stops on %j with one line naming the variable', (env, name) => {
    let error: unknown;
    try {
      loadConfig(env);
    } catch (err) {
      error = err;
    }
    expect(error).toBeInstanceOf(ConfigError);
    expect((error as Error).message).toContain(name);
    expect((error as Error).message).not.toContain('\n');
  });
});
