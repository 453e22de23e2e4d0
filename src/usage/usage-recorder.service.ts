import { InjectQueue } from '@nestjs/bullmq';
import { Injectable, Logger } from '@nestjs/common';
import { Queue } from 'bullmq';
import { BillingRepository, Settlement } from '../billing/billing.repository';
import { MetricsService } from '../metrics/metrics.service';
import { JobName, QueueName } from './usage.constants';

const ENQUEUE_TIMEOUT_MS = 1_000;

/**
 * Hands a finished request to the settlement queue (job id = request id) before the client
 * gets its answer. If Redis cannot take the job, the request is settled synchronously in
 * PostgreSQL instead: the usage record and the charge are never lost. A job that reaches
 * Redis after the fallback settled is harmless: settlement is idempotent.
 */
@Injectable()
export class UsageRecorder {
  private readonly logger = new Logger(UsageRecorder.name);

  constructor(
    @InjectQueue(QueueName.Usage) private readonly queue: Queue,
    private readonly billing: BillingRepository,
    private readonly metrics: MetricsService,
  ) {
    // without a listener, every failed reconnect prints a stack; one line per 10 s is enough
    let last = 0;
    queue.on('error', (err) => {
      if (Date.now() - last < 10_000) return;
      last = Date.now();
      this.logger.warn(`Settlement queue: ${err.message}`);
    });
  }

  /** true once the settlement is queued or applied; false when both stores failed. */
  async record(settlement: Settlement): Promise<boolean> {
    try {
      await withTimeout(this.queue.add(JobName.Settle, settlement, { jobId: settlement.requestId }), ENQUEUE_TIMEOUT_MS);
      this.metrics.settlements.inc({ path: 'queue' });
      return true;
    } catch (err) {
      this.logger.warn(`Settlement queue unavailable (${(err as Error).message}); settling ${settlement.requestId} synchronously`);
    }
    try {
      await this.billing.settle(settlement);
      this.metrics.settlements.inc({ path: 'sync' });
      return true;
    } catch (err) {
      // Both stores failed: the hold stays reserved and the sweeper releases it later.
      this.metrics.settlements.inc({ path: 'lost' });
      this.logger.error(`Could not settle ${settlement.requestId}: ${(err as Error).message}`);
      return false;
    }
  }
}

function withTimeout<T>(promise: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}
