import { InjectQueue } from '@nestjs/bullmq';
import { Injectable, OnModuleInit } from '@nestjs/common';
import { Queue } from 'bullmq';
import { Gauge } from 'prom-client';
import { MetricsService } from '../../metrics/metrics.service';
import { HoldRepository } from '../hold.repository';
import { QueueName } from './settlement.constants';

const JOB_STATES = ['waiting', 'active', 'delayed', 'failed', 'completed'] as const;
/** Scrapes within this time of each other (several Prometheus replicas, say) share one reading. */
const CACHE_MS = 5_000;

/** `read`, called at most once per `ms` (concurrent callers share the call in flight); a failure is not kept. */
function cached<T>(read: () => Promise<T>, ms = CACHE_MS): () => Promise<T> {
  let last: { at: number; value: Promise<T> } | null = null;
  return () => {
    if (last && Date.now() - last.at < ms) return last.value;
    const value = read();
    const entry = { at: Date.now(), value };
    last = entry;
    value.catch(() => {
      if (last === entry) last = null;
    });
    return value;
  };
}

/**
 * Queue depth (failed jobs among the states) and money on hold, read when Prometheus scrapes
 * (never on the request path), at most once per 5 s.
 */
@Injectable()
export class SettlementMetrics implements OnModuleInit {
  constructor(
    private readonly metrics: MetricsService,
    @InjectQueue(QueueName.Usage) private readonly queue: Queue,
    private readonly holds: HoldRepository,
  ) {}

  onModuleInit(): void {
    const jobCounts = cached(() => this.queue.getJobCounts(...JOB_STATES));
    const holdTotals = cached(() => this.holds.openHoldTotals());
    new Gauge({
      name: 'nexo_queue_jobs',
      help: 'Jobs of the usage (settlement) queue by state',
      labelNames: ['queue', 'state'] as const,
      registers: [this.metrics.registry],
      async collect() {
        try {
          const counts = await jobCounts();
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
          const totals = await holdTotals();
          this.reset();
          for (const expired of [false, true]) {
            const row = totals.find((r) => r.expired === expired);
            this.set({ measure: 'count', expired: String(expired) }, row?.holds ?? 0);
            this.set({ measure: 'micros', expired: String(expired) }, row?.micros ?? 0);
          }
        } catch {
          this.reset();
        }
      },
    });
  }
}
