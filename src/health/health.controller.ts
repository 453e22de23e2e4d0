import { Controller, Get, Header, Res } from '@nestjs/common';
import { ApiOkResponse, ApiOperation, ApiServiceUnavailableResponse, ApiTags } from '@nestjs/swagger';
import type { Response } from 'express';
import { MetricsAuth, Public } from '../common/auth-scope';
import { DatabaseHealth } from '../database/database-health';
import { MetricsService } from '../metrics/metrics.service';
import { RedisDurabilityCheck } from '../redis/redis-durability.service';
import { RedisService } from '../redis/redis.service';

@ApiTags('Operations')
@Public()
@Controller()
export class HealthController {
  constructor(
    private readonly database: DatabaseHealth,
    private readonly redis: RedisService,
    private readonly metrics: MetricsService,
    private readonly durability: RedisDurabilityCheck,
  ) {}

  @Get('health/live')
  @ApiOperation({ summary: 'The process is up' })
  live(): { status: 'ok' } {
    return { status: 'ok' };
  }

  @Get('health/ready')
  @ApiOperation({
    summary: 'PostgreSQL and Redis answer',
    description:
      '`checks.redis_durability` is `at_risk` (with `warnings`) when Redis may lose queued settlements: ' +
      'an eviction policy other than noeviction, or neither AOF nor RDB persistence.',
  })
  @ApiOkResponse({ description: '{"status":"ok","checks":{"postgres":"up","redis":"up","redis_durability":"ok"}}' })
  @ApiServiceUnavailableResponse({ description: 'a dependency is down' })
  async ready(@Res() res: Response): Promise<void> {
    const [postgres, redis] = await Promise.all([
      this.database.ping().then((ok) => (ok ? 'up' : 'down')),
      this.redis.ping().then((ok) => (ok ? 'up' : 'down')),
    ]);
    const ok = postgres === 'up' && redis === 'up';
    const durability = redis === 'up' ? await this.durability.current() : null;
    const checks = { postgres, redis, redis_durability: durability ? (durability.ok ? 'ok' : 'at_risk') : 'unknown' };
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
}
