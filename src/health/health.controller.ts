import { Controller, Get, Header, Res } from '@nestjs/common';
import { ApiExcludeEndpoint, ApiOkResponse, ApiOperation, ApiServiceUnavailableResponse, ApiTags } from '@nestjs/swagger';
import { InjectDataSource } from '@nestjs/typeorm';
import type { Response } from 'express';
import { DataSource } from 'typeorm';
import { Public } from '../auth/auth.decorators';
import { MetricsService } from '../metrics/metrics.service';
import { RedisService } from '../redis/redis.service';

@ApiTags('Operations')
@Public()
@Controller()
export class HealthController {
  constructor(
    @InjectDataSource() private readonly db: DataSource,
    private readonly redis: RedisService,
    private readonly metrics: MetricsService,
  ) {}

  @Get('health/live')
  @ApiOperation({ summary: 'The process is up' })
  live(): { status: 'ok' } {
    return { status: 'ok' };
  }

  @Get('health/ready')
  @ApiOperation({ summary: 'PostgreSQL and Redis answer' })
  @ApiOkResponse({ description: '{"status":"ok","checks":{"postgres":"up","redis":"up"}}' })
  @ApiServiceUnavailableResponse({ description: 'a dependency is down' })
  async ready(@Res() res: Response): Promise<void> {
    const [postgres, redis] = await Promise.all([
      this.db.query('SELECT 1').then(
        () => 'up',
        () => 'down',
      ),
      this.redis.ping().then((ok) => (ok ? 'up' : 'down')),
    ]);
    const ok = postgres === 'up' && redis === 'up';
    res.status(ok ? 200 : 503).json({ status: ok ? 'ok' : 'unavailable', checks: { postgres, redis } });
  }

  @Get('metrics')
  @ApiOperation({ summary: 'Prometheus metrics' })
  @Header('content-type', 'text/plain; version=0.0.4; charset=utf-8')
  metricsText(): Promise<string> {
    return this.metrics.registry.metrics();
  }

  @Get()
  @ApiExcludeEndpoint()
  root(): { name: string; docs: string; base_url: string } {
    return { name: 'NexoRouter', docs: '/docs', base_url: '/v1' };
  }
}
