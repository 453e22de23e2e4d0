import { Controller, Get, Header, Res, ServiceUnavailableException } from '@nestjs/common';
import { HealthCheckResult, HealthCheckService, HealthIndicatorService } from '@nestjs/terminus';
import { ApiOkResponse, ApiOperation, ApiServiceUnavailableResponse, ApiTags } from '@nestjs/swagger';
import type { Response } from 'express';
import { MetricsAuth, Public } from '../common/auth-scope';
import { DatabaseHealth } from '../database/database-health';
import { MetricsService } from '../metrics/metrics.service';
import { RedisDurabilityCheck } from '../redis/redis-durability.service';
import { RedisService } from '../redis/redis.service';
import { HttpDrain } from './http-drain.service';

/** How long one dependency may take to answer a readiness probe before it counts as down. */
const PROBE_TIMEOUT_MS = 2_000;

@ApiTags('Operations')
@Public()
@Controller()
export class HealthController {
  constructor(
    private readonly health: HealthCheckService,
    private readonly indicator: HealthIndicatorService,
    private readonly database: DatabaseHealth,
    private readonly redis: RedisService,
    private readonly metrics: MetricsService,
    private readonly durability: RedisDurabilityCheck,
    private readonly drain: HttpDrain,
  ) {}

  @Get('health/live')
  @ApiOperation({ summary: 'The process is up and its event loop answers' })
  @ApiOkResponse({ description: '{"status":"ok"}' })
  async live(): Promise<{ status: 'ok' }> {
    await this.health.check([() => this.indicator.check('process').up()]);
    return { status: 'ok' };
  }

  @Get('health/ready')
  @ApiOperation({
    summary: 'PostgreSQL and Redis answer, and this process is not shutting down',
    description:
      '503 while a dependency is down or while the process drains on SIGTERM (`checks.process: "draining"`). ' +
      '`checks.redis_durability` is `at_risk` (with `warnings`) when Redis may lose queued settlements: ' +
      'an eviction policy other than noeviction, or neither AOF nor RDB persistence.',
  })
  @ApiOkResponse({ description: '{"status":"ok","checks":{"postgres":"up","redis":"up","redis_durability":"ok","process":"serving"}}' })
  @ApiServiceUnavailableResponse({ description: 'a dependency is down, or the process is draining' })
  async ready(@Res() res: Response): Promise<void> {
    const result = await this.health
      .check([
        () => (this.drain.draining ? this.indicator.check('process').down({ state: 'draining' }) : this.indicator.check('process').up()),
        () => this.probe('postgres', () => this.database.ping()),
        () => this.probe('redis', () => this.redis.ping()),
      ])
      .catch((err: unknown) => {
        if (err instanceof ServiceUnavailableException) return err.getResponse() as HealthCheckResult;
        throw err;
      });
    const status = (key: string) => (result.details[key]?.status === 'up' ? 'up' : 'down');
    const redis = status('redis');
    const durability = redis === 'up' ? await this.durability.current() : null;
    const checks = {
      postgres: status('postgres'),
      redis,
      redis_durability: durability ? (durability.ok ? 'ok' : 'at_risk') : 'unknown',
      process: this.drain.draining ? 'draining' : 'serving',
    };
    const ok = result.status === 'ok' || result.status === 'degraded';
    const warnings = durability?.problems.map((p) => `Redis may lose settlement jobs: ${p}`) ?? [];
    res.status(ok ? 200 : 503).json({ status: ok ? 'ok' : 'unavailable', checks, ...(warnings.length ? { warnings } : {}) });
  }

  @Get('metrics')
  @MetricsAuth()
  @ApiOperation({ summary: 'Prometheus metrics (bearer METRICS_TOKEN or ADMIN_TOKEN: they show revenue)' })
  @Header('content-type', 'text/plain; version=0.0.4; charset=utf-8')
  metricsText(): Promise<string> {
    return this.metrics.registry.metrics();
  }

  /** A dependency that answers true within PROBE_TIMEOUT_MS is up. */
  private probe(key: 'postgres' | 'redis', ping: () => Promise<boolean>) {
    return this.indicator
      .check(key)
      .attempt(async () => {
        if (!(await ping())) throw new Error(`${key} did not answer`);
      })
      .withTimeout(PROBE_TIMEOUT_MS);
  }
}
