import { InjectQueue } from '@nestjs/bullmq';
import { Injectable, OnModuleInit } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { Queue } from 'bullmq';
import { Gauge } from 'prom-client';
import { DataSource } from 'typeorm';
import { MetricsService } from '../metrics/metrics.service';
import { QueueName } from './usage.constants';

const JOB_STATES = ['waiting', 'active', 'delayed', 'failed', 'completed'] as const;

/** Queue depth and money on hold, read when Prometheus scrapes (never on the request path). */
@Injectable()
export class UsageMetrics implements OnModuleInit {
  constructor(
    private readonly metrics: MetricsService,
    @InjectQueue(QueueName.Usage) private readonly queue: Queue,
    @InjectDataSource() private readonly db: DataSource,
  ) {}

  onModuleInit(): void {
    const queue = this.queue;
    const db = this.db;
    new Gauge({
      name: 'nexo_queue_jobs',
      help: 'Jobs of the usage (settlement) queue by state',
      labelNames: ['queue', 'state'] as const,
      registers: [this.metrics.registry],
      async collect() {
        try {
          const counts = await queue.getJobCounts(...JOB_STATES);
          for (const state of JOB_STATES) this.set({ queue: QueueName.Usage, state }, counts[state] ?? 0);
        } catch {
          this.reset(); // Redis away: no numbers rather than stale ones
        }
      },
    });
    new Gauge({
      name: 'nexo_billing_open_holds',
      help: 'Holds of requests in flight (count and micro-USD); expired ones await the sweeper',
      labelNames: ['measure', 'expired'] as const,
      registers: [this.metrics.registry],
      async collect() {
        try {
          const rows: Array<{ expired: boolean; holds: number; micros: string }> = await db.query(
            `SELECT expires_at < now() AS expired, count(*)::int AS holds, COALESCE(sum(amount_micros), 0) AS micros FROM holds GROUP BY 1`,
          );
          this.reset();
          for (const expired of [false, true]) {
            const row = rows.find((r) => r.expired === expired);
            this.set({ measure: 'count', expired: String(expired) }, row?.holds ?? 0);
            this.set({ measure: 'micros', expired: String(expired) }, Number(row?.micros ?? 0));
          }
        } catch {
          this.reset();
        }
      },
    });
  }
}
