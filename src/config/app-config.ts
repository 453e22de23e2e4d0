import { createHash, randomBytes } from 'node:crypto';
import { plainToInstance } from 'class-transformer';
import { validateSync } from 'class-validator';
import { EnvironmentVariables } from './env.validation';

export type NexoRole = 'api' | 'worker' | 'all';

export interface ProviderOverride {
  baseUrl?: string;
  apiKey?: string;
}

/** The validated, typed configuration every module reads (never `process.env` directly). */
export class AppConfig {
  nodeEnv: 'development' | 'production' | 'test';
  port: number;
  databaseUrl: string;
  redisUrl: string;
  /** Prefix of every Redis key and BullMQ queue this process uses. */
  redisPrefix: string;
  role: NexoRole;
  adminToken: string | null;
  /** Bearer token a Prometheus scraper may use for /metrics instead of the admin token. */
  metricsToken: string | null;
  /** HS256 secret of dashboard sessions; in development, derived so every process of a deployment agrees. */
  jwtSecret: string;
  /** What a workspace created by sign-up starts with: limits for keys without their own (null = none), and a credit. */
  signup: { rpmLimit: number | null; tpmLimit: number | null; creditMicros: number };
  /** Failed logins allowed per account (email) and per client address in 15 minutes; sign-ups per address per hour. */
  authThrottle: { loginFailuresPerEmail: number; loginFailuresPerAddress: number; signupsPerAddressPerHour: number };
  encryptionKey: Buffer;
  stripe: { secretKey: string | null; webhookSecret: string | null; apiBase: string | null };
  /** Bounds of one Stripe top-up, in US cents (TOPUP_MIN_CENTS, TOPUP_MAX_CENTS). */
  topup: { minCents: number; maxCents: number };
  /** Where the dashboard is reached (PUBLIC_URL, no trailing slash): Stripe's success and cancel URLs. */
  publicUrl: string;
  /** PROVIDER_<ID>_BASE_URL / _API_KEY, keyed by lower-case provider id. */
  providerOverrides: Record<string, ProviderOverride>;
  /** Read timeout: the longest wait for a provider's response headers, and between two chunks of its body. */
  upstreamTimeoutMs: number;
  /** The longest a new connection to a provider may take to open (then the attempt failed, and may be retried). */
  upstreamConnectTimeoutMs: number;
  /** Attempts per provider (the first send included) on connection errors, 429 and 5xx before any byte reached the client. */
  upstreamMaxAttempts: number;
  /** Base of the jittered exponential backoff between attempts: a random wait up to base × 2^(attempt-1), at most 2 s. */
  upstreamRetryBaseMs: number;
  /** Per provider and process: consecutive failed requests (each after its retries) that open its circuit, and how long it stays open before one probe. */
  circuitBreaker: { failures: number; cooldownMs: number };
  /** How long a request may wait for a free connection to its provider before answering 503. */
  upstreamConnectWaitMs: number;
  /** Lookups of unknown API keys one client address may cause per minute (then 429). */
  unknownKeyLookupsPerMinute: number;
  /** How long a rate-limit check may wait for Redis before the request goes through unchecked. */
  rateLimitTimeoutMs: number;
  /**
   * Keys whose requests-per-minute limit is at least this take shares of their window (leases)
   * instead of one Redis call per request; 0: never.
   */
  rateLimitLeaseMinRpm: number;
  /** How long a hold lives before the sweeper may release it. */
  holdTtlSeconds: number;
  /**
   * Escrow leases: a process holds its requests against slices of a workspace's balance it
   * reserved once (ESCROW_LEASES, default true), renewed every LEASE_RENEW_MS and living
   * LEASE_TTL_MS past the last renewal.
   */
  leases: { enabled: boolean; ttlMs: number; renewMs: number };
  /**
   * How much V8 lets the old generation grow past what the last full collection kept, in
   * percent (HEAP_GROWTH_PERCENT, default 100: twice); 0 leaves it to V8's heuristics, which on
   * a busy gateway let garbage pile up to three or four times the live heap before collecting.
   */
  heapGrowthPercent: number;
  sweepIntervalMs: number;
  /** Usage logs are kept this many days, then dropped a whole month at a time (null: kept forever). */
  usageLogRetentionDays: number | null;
  /** Whether start-up creates the demo workspace and its key (development only). */
  seedDemo: boolean;
  /** The least severe level written to the log. */
  logLevel: 'error' | 'warn' | 'log' | 'debug';
  /** On SIGTERM, how long requests and streams in flight may take to finish before their connections are closed. */
  shutdownGraceMs: number;

  get isProduction(): boolean {
    return this.nodeEnv === 'production';
  }
  get runsHttp(): boolean {
    return this.role !== 'worker';
  }
  get runsWorkers(): boolean {
    return this.role !== 'api';
  }
}

export class ConfigError extends Error {}

const DEV_ENCRYPTION_SEED = 'nexorouter-development-only-encryption-key';
/** One credit is at most $1,000,000 (CONTRACT §2). */
const MAX_SIGNUP_CREDIT_MICROS = 1_000_000_000_000;
/** One top-up is one credit of at most 10^12 micro-USD (CONTRACT §2). */
const MAX_TOPUP_CENTS = 100_000_000;

/** Validates the environment and builds the typed config; throws ConfigError with one clear line. */
export function loadConfig(env: NodeJS.ProcessEnv = process.env): AppConfig {
  const vars = plainToInstance(EnvironmentVariables, { ...env }, { enableImplicitConversion: false });
  const errors = validateSync(vars, { skipMissingProperties: false, whitelist: false });
  if (errors.length > 0) {
    const first = errors[0];
    const why = Object.values(first.constraints ?? {})[0] ?? 'is invalid';
    throw new ConfigError(`Invalid configuration: ${first.property} ${why.replace(new RegExp(`^${first.property} `), '')}`);
  }
  const nodeEnv = vars.NODE_ENV ?? 'development';
  const isProduction = nodeEnv === 'production';
  if (isProduction) {
    for (const name of ['ADMIN_TOKEN', 'JWT_SECRET', 'NEXO_ENCRYPTION_KEY'] as const) {
      if (!vars[name]) throw new ConfigError(`Invalid configuration: ${name} is required when NODE_ENV=production`);
    }
  }

  const config = new AppConfig();
  config.nodeEnv = nodeEnv;
  config.port = vars.PORT ? Number(vars.PORT) : 3001;
  if (config.port < 1 || config.port > 65_535) throw new ConfigError('Invalid configuration: PORT must be a port number (1-65535)');
  config.databaseUrl = vars.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/nexorouter';
  config.redisUrl = vars.REDIS_URL ?? 'redis://127.0.0.1:6379';
  config.redisPrefix = vars.REDIS_PREFIX ?? 'nexo';
  config.role = vars.NEXO_ROLE ?? 'all';
  config.adminToken = vars.ADMIN_TOKEN || null;
  config.metricsToken = vars.METRICS_TOKEN || null;
  // Outside production, every process of one deployment (same database) derives the same
  // secret, so a session opened on one gateway process is valid on the others.
  // CONTRACT §1: random per process when unset (development only; production requires it), so a
  // development session never outlives its process and cannot be forged from public values
  config.jwtSecret = vars.JWT_SECRET || randomBytes(32).toString('hex');
  config.signup = {
    rpmLimit: wholeNumber('SIGNUP_RPM_LIMIT', vars.SIGNUP_RPM_LIMIT, 60, 0, 10_000_000) || null,
    tpmLimit: wholeNumber('SIGNUP_TPM_LIMIT', vars.SIGNUP_TPM_LIMIT, 100_000, 0, 2_000_000_000) || null,
    creditMicros: wholeNumber('SIGNUP_CREDIT_MICROS', vars.SIGNUP_CREDIT_MICROS, isProduction ? 0 : 1_000_000, 0, MAX_SIGNUP_CREDIT_MICROS),
  };
  config.authThrottle = {
    loginFailuresPerEmail: wholeNumber('LOGIN_FAILURES_PER_EMAIL', vars.LOGIN_FAILURES_PER_EMAIL, 10, 1, 1_000_000),
    loginFailuresPerAddress: wholeNumber('LOGIN_FAILURES_PER_ADDRESS', vars.LOGIN_FAILURES_PER_ADDRESS, 50, 1, 1_000_000),
    signupsPerAddressPerHour: wholeNumber('SIGNUPS_PER_ADDRESS_PER_HOUR', vars.SIGNUPS_PER_ADDRESS_PER_HOUR, 10, 1, 1_000_000),
  };
  config.encryptionKey = vars.NEXO_ENCRYPTION_KEY
    ? Buffer.from(vars.NEXO_ENCRYPTION_KEY, 'base64')
    : createHash('sha256').update(DEV_ENCRYPTION_SEED).digest();
  config.stripe = {
    secretKey: vars.STRIPE_SECRET_KEY || null,
    webhookSecret: vars.STRIPE_WEBHOOK_SECRET || null,
    apiBase: vars.STRIPE_API_BASE || null,
  };
  // one top-up is one ledger credit: at most 10^12 micro-USD, i.e. 10^8 cents (CONTRACT §2)
  config.topup = {
    minCents: wholeNumber('TOPUP_MIN_CENTS', vars.TOPUP_MIN_CENTS, 500, 1, MAX_TOPUP_CENTS),
    maxCents: wholeNumber('TOPUP_MAX_CENTS', vars.TOPUP_MAX_CENTS, 1_000_000, 1, MAX_TOPUP_CENTS),
  };
  if (config.topup.minCents > config.topup.maxCents) {
    throw new ConfigError('Invalid configuration: TOPUP_MIN_CENTS must not be above TOPUP_MAX_CENTS');
  }
  config.publicUrl = (vars.PUBLIC_URL || `http://localhost:${config.port}`).replace(/\/+$/, '');
  config.upstreamTimeoutMs = wholeNumber('UPSTREAM_TIMEOUT_MS', vars.UPSTREAM_TIMEOUT_MS, 120_000, 1, 3_600_000);
  config.upstreamConnectTimeoutMs = wholeNumber('UPSTREAM_CONNECT_TIMEOUT_MS', vars.UPSTREAM_CONNECT_TIMEOUT_MS, 10_000, 1, 600_000);
  config.upstreamMaxAttempts = wholeNumber('UPSTREAM_MAX_ATTEMPTS', vars.UPSTREAM_MAX_ATTEMPTS, 3, 1, 10);
  config.upstreamRetryBaseMs = wholeNumber('UPSTREAM_RETRY_BASE_MS', vars.UPSTREAM_RETRY_BASE_MS, 250, 0, 10_000);
  config.circuitBreaker = {
    failures: wholeNumber('CIRCUIT_BREAKER_FAILURES', vars.CIRCUIT_BREAKER_FAILURES, 5, 1, 1_000),
    cooldownMs: wholeNumber('CIRCUIT_BREAKER_COOLDOWN_MS', vars.CIRCUIT_BREAKER_COOLDOWN_MS, 30_000, 1, 3_600_000),
  };
  config.upstreamConnectWaitMs = wholeNumber('UPSTREAM_CONNECT_WAIT_MS', vars.UPSTREAM_CONNECT_WAIT_MS, 1_000, 0, 600_000);
  config.unknownKeyLookupsPerMinute = wholeNumber('UNKNOWN_KEY_LOOKUPS_PER_MINUTE', vars.UNKNOWN_KEY_LOOKUPS_PER_MINUTE, 60, 1, 1_000_000);
  config.rateLimitTimeoutMs = wholeNumber('RATE_LIMIT_TIMEOUT_MS', vars.RATE_LIMIT_TIMEOUT_MS, 50, 1, 60_000);
  config.rateLimitLeaseMinRpm = wholeNumber('RATE_LIMIT_LEASE_MIN_RPM', vars.RATE_LIMIT_LEASE_MIN_RPM, 600, 0, 10_000_000);
  config.holdTtlSeconds = wholeNumber('HOLD_TTL_SECONDS', vars.HOLD_TTL_SECONDS, 120, 1, 86_400);
  config.leases = {
    enabled: vars.ESCROW_LEASES !== 'false',
    ttlMs: wholeNumber('LEASE_TTL_MS', vars.LEASE_TTL_MS, 5_000, 2_000, 600_000),
    renewMs: wholeNumber('LEASE_RENEW_MS', vars.LEASE_RENEW_MS, 250, 50, 10_000),
  };
  config.heapGrowthPercent = wholeNumber('HEAP_GROWTH_PERCENT', vars.HEAP_GROWTH_PERCENT, 100, 0, 1_000);
  if (config.leases.renewMs * 4 > config.leases.ttlMs) {
    throw new ConfigError('Invalid configuration: LEASE_RENEW_MS must be at most a quarter of LEASE_TTL_MS');
  }
  config.sweepIntervalMs = wholeNumber('SWEEP_INTERVAL_MS', vars.SWEEP_INTERVAL_MS, 30_000, 100, 86_400_000);
  config.usageLogRetentionDays = vars.USAGE_LOG_RETENTION_DAYS
    ? wholeNumber('USAGE_LOG_RETENTION_DAYS', vars.USAGE_LOG_RETENTION_DAYS, 0, 1, 36_500)
    : null;
  config.seedDemo = !isProduction && vars.NEXO_SEED_DEMO !== 'false';
  config.logLevel = vars.LOG_LEVEL ?? (nodeEnv === 'test' ? 'error' : 'log');
  config.shutdownGraceMs = wholeNumber('SHUTDOWN_GRACE_MS', vars.SHUTDOWN_GRACE_MS, 10_000, 0, 3_600_000);
  config.providerOverrides = readProviderOverrides(env);
  return config;
}

function wholeNumber(name: string, value: string | undefined, fallback: number, min: number, max: number): number {
  if (!value) return fallback;
  const n = Number(value);
  if (!Number.isSafeInteger(n) || n < min || n > max)
    throw new ConfigError(`Invalid configuration: ${name} must be a whole number from ${min} to ${max}`);
  return n;
}

function readProviderOverrides(env: NodeJS.ProcessEnv): Record<string, ProviderOverride> {
  const overrides: Record<string, ProviderOverride> = {};
  for (const [name, value] of Object.entries(env)) {
    const match = /^PROVIDER_([A-Z0-9_]+?)_(BASE_URL|API_KEY)$/.exec(name);
    if (!match || !value) continue;
    const id = match[1].toLowerCase();
    overrides[id] ??= {};
    if (match[2] === 'BASE_URL') {
      if (!/^https?:\/\/[^\s]+$/.test(value)) throw new ConfigError(`Invalid configuration: ${name} must be an http(s) URL`);
      overrides[id].baseUrl = value.replace(/\/+$/, '');
    } else {
      overrides[id].apiKey = value;
    }
  }
  return overrides;
}
