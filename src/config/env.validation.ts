import { IsBase64, IsIn, IsNumberString, IsOptional, Length, Matches, MinLength, ValidateIf } from 'class-validator';

const optional = (name: keyof EnvironmentVariables) => ValidateIf((o: EnvironmentVariables) => o[name] !== undefined && o[name] !== '');

/** Every environment variable the gateway reads (CONTRACT §1). All optional in development. */
export class EnvironmentVariables {
  @IsOptional()
  @IsIn(['development', 'production', 'test'], { message: 'must be one of development, production, test' })
  NODE_ENV?: 'development' | 'production' | 'test';

  @optional('PORT')
  @Matches(/^\d{1,5}$/, { message: 'must be a port number (1-65535)' })
  PORT?: string;

  @optional('DATABASE_URL')
  @Matches(/^postgres(ql)?:\/\/\S+$/, { message: 'must be a postgres:// URL' })
  DATABASE_URL?: string;

  @optional('REDIS_URL')
  @Matches(/^rediss?:\/\/\S+$/, { message: 'must be a redis:// URL' })
  REDIS_URL?: string;

  @optional('REDIS_PREFIX')
  @Matches(/^[A-Za-z0-9_.-]{1,64}$/, { message: 'must be 1-64 letters, digits, dots, dashes or underscores' })
  REDIS_PREFIX?: string;

  @IsOptional()
  @IsIn(['api', 'worker', 'all'], { message: 'must be one of api, worker, all' })
  NEXO_ROLE?: 'api' | 'worker' | 'all';

  @optional('ADMIN_TOKEN')
  @MinLength(16, { message: 'must be at least 16 characters' })
  ADMIN_TOKEN?: string;

  @optional('METRICS_TOKEN')
  @MinLength(16, { message: 'must be at least 16 characters' })
  METRICS_TOKEN?: string;

  @optional('JWT_SECRET')
  @MinLength(32, { message: 'must be at least 32 characters' })
  JWT_SECRET?: string;

  @optional('NEXO_ENCRYPTION_KEY')
  @IsBase64({}, { message: 'must be 32 bytes, base64-encoded' })
  @Length(43, 44, { message: 'must be 32 bytes, base64-encoded' })
  NEXO_ENCRYPTION_KEY?: string;

  @IsOptional()
  STRIPE_SECRET_KEY?: string;

  @IsOptional()
  STRIPE_WEBHOOK_SECRET?: string;

  @optional('STRIPE_API_BASE')
  @Matches(/^https?:\/\/\S+$/, { message: 'must be an http(s) URL' })
  STRIPE_API_BASE?: string;

  @optional('TOPUP_MIN_CENTS')
  @IsNumberString({ no_symbols: true }, { message: 'must be a whole number of US cents' })
  TOPUP_MIN_CENTS?: string;

  @optional('TOPUP_MAX_CENTS')
  @IsNumberString({ no_symbols: true }, { message: 'must be a whole number of US cents' })
  TOPUP_MAX_CENTS?: string;

  @optional('PUBLIC_URL')
  @Matches(/^https?:\/\/\S+$/, { message: 'must be an http(s) URL' })
  PUBLIC_URL?: string;

  @optional('UPSTREAM_TIMEOUT_MS')
  @IsNumberString({ no_symbols: true }, { message: 'must be a whole number of milliseconds' })
  UPSTREAM_TIMEOUT_MS?: string;

  @optional('UPSTREAM_CONNECT_WAIT_MS')
  @IsNumberString({ no_symbols: true }, { message: 'must be a whole number of milliseconds' })
  UPSTREAM_CONNECT_WAIT_MS?: string;

  @optional('UPSTREAM_CONNECT_TIMEOUT_MS')
  @IsNumberString({ no_symbols: true }, { message: 'must be a whole number of milliseconds' })
  UPSTREAM_CONNECT_TIMEOUT_MS?: string;

  @optional('UPSTREAM_MAX_ATTEMPTS')
  @IsNumberString({ no_symbols: true }, { message: 'must be a whole number' })
  UPSTREAM_MAX_ATTEMPTS?: string;

  @optional('UPSTREAM_RETRY_BASE_MS')
  @IsNumberString({ no_symbols: true }, { message: 'must be a whole number of milliseconds' })
  UPSTREAM_RETRY_BASE_MS?: string;

  @optional('CIRCUIT_BREAKER_FAILURES')
  @IsNumberString({ no_symbols: true }, { message: 'must be a whole number' })
  CIRCUIT_BREAKER_FAILURES?: string;

  @optional('CIRCUIT_BREAKER_COOLDOWN_MS')
  @IsNumberString({ no_symbols: true }, { message: 'must be a whole number of milliseconds' })
  CIRCUIT_BREAKER_COOLDOWN_MS?: string;

  @optional('UNKNOWN_KEY_LOOKUPS_PER_MINUTE')
  @IsNumberString({ no_symbols: true }, { message: 'must be a whole number' })
  UNKNOWN_KEY_LOOKUPS_PER_MINUTE?: string;

  @optional('RATE_LIMIT_TIMEOUT_MS')
  @IsNumberString({ no_symbols: true }, { message: 'must be a whole number of milliseconds' })
  RATE_LIMIT_TIMEOUT_MS?: string;

  @optional('RATE_LIMIT_LEASE_MIN_RPM')
  @IsNumberString({ no_symbols: true }, { message: 'must be a whole number' })
  RATE_LIMIT_LEASE_MIN_RPM?: string;

  @optional('HOLD_TTL_SECONDS')
  @IsNumberString({ no_symbols: true }, { message: 'must be a whole number of seconds' })
  HOLD_TTL_SECONDS?: string;

  @optional('ESCROW_LEASES')
  @IsIn(['true', 'false'], { message: 'must be true or false' })
  ESCROW_LEASES?: string;

  @optional('LEASE_TTL_MS')
  @IsNumberString({ no_symbols: true }, { message: 'must be a whole number of milliseconds' })
  LEASE_TTL_MS?: string;

  @optional('HEAP_GROWTH_PERCENT')
  @IsNumberString({ no_symbols: true }, { message: 'must be a whole number (percent)' })
  HEAP_GROWTH_PERCENT?: string;

  @optional('LEASE_RENEW_MS')
  @IsNumberString({ no_symbols: true }, { message: 'must be a whole number of milliseconds' })
  LEASE_RENEW_MS?: string;

  @optional('SWEEP_INTERVAL_MS')
  @IsNumberString({ no_symbols: true }, { message: 'must be a whole number of milliseconds' })
  SWEEP_INTERVAL_MS?: string;

  @optional('USAGE_LOG_RETENTION_DAYS')
  @IsNumberString({ no_symbols: true }, { message: 'must be a whole number of days' })
  USAGE_LOG_RETENTION_DAYS?: string;

  @optional('SIGNUP_RPM_LIMIT')
  @IsNumberString({ no_symbols: true }, { message: 'must be a whole number of requests per minute (0 = no limit)' })
  SIGNUP_RPM_LIMIT?: string;

  @optional('SIGNUP_TPM_LIMIT')
  @IsNumberString({ no_symbols: true }, { message: 'must be a whole number of tokens per minute (0 = no limit)' })
  SIGNUP_TPM_LIMIT?: string;

  @optional('SIGNUP_CREDIT_MICROS')
  @IsNumberString({ no_symbols: true }, { message: 'must be a whole number of micro-USD' })
  SIGNUP_CREDIT_MICROS?: string;

  @optional('LOGIN_FAILURES_PER_EMAIL')
  @IsNumberString({ no_symbols: true }, { message: 'must be a whole number' })
  LOGIN_FAILURES_PER_EMAIL?: string;

  @optional('LOGIN_FAILURES_PER_ADDRESS')
  @IsNumberString({ no_symbols: true }, { message: 'must be a whole number' })
  LOGIN_FAILURES_PER_ADDRESS?: string;

  @optional('SIGNUPS_PER_ADDRESS_PER_HOUR')
  @IsNumberString({ no_symbols: true }, { message: 'must be a whole number' })
  SIGNUPS_PER_ADDRESS_PER_HOUR?: string;

  @IsOptional()
  @IsIn(['true', 'false'], { message: 'must be true or false' })
  NEXO_SEED_DEMO?: string;

  @IsOptional()
  @IsIn(['error', 'warn', 'log', 'debug'], { message: 'must be one of error, warn, log, debug' })
  LOG_LEVEL?: 'error' | 'warn' | 'log' | 'debug';

  @optional('SHUTDOWN_GRACE_MS')
  @IsNumberString({ no_symbols: true }, { message: 'must be a whole number of milliseconds' })
  SHUTDOWN_GRACE_MS?: string;
}
