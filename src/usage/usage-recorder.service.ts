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

  /**
   * Hands a finished request to settlement. `synchronous` applies it in PostgreSQL at once,
   * so the charge is known exactly (a key with a budget may be charged less than its cost when
   * the budget was lowered meanwhile); otherwise it is queued. Either store stands in for the
   * other when it fails.
   */
  async record(settlement: Settlement, options: { synchronous?: boolean } = {}): Promise<Recorded> {
    const queued = { ok: true, chargedMicros: null };
    const recorded = options.synchronous
      ? ((await this.settleNow(settlement)) ?? ((await this.enqueue(settlement)) ? queued : null))
      : (await this.enqueue(settlement)) ? queued : await this.settleNow(settlement);
    if (recorded) return recorded;
    // both stores failed: the hold stays reserved and the sweeper releases it later
    this.metrics.settlements.inc({ path: 'lost' });
    return { ok: false, chargedMicros: null };
  }

  /**
   * Takes back a queued settlement no worker has started yet (the client left before its
   * answer could be written). true when it was removed: the request may be recorded anew.
   */
  async withdraw(requestId: string): Promise<boolean> {
    try {
      return (await withTimeout(this.queue.remove(requestId), ENQUEUE_TIMEOUT_MS)) === 1;
    } catch {
      return false;
    }
  }

  private async enqueue(settlement: Settlement): Promise<boolean> {
    try {
      await withTimeout(this.queue.add(JobName.Settle, settlement, { jobId: settlement.requestId }), ENQUEUE_TIMEOUT_MS);
      this.metrics.settlements.inc({ path: 'queue' });
      return true;
    } catch (err) {
      this.logger.warn(`Settlement queue unavailable (${(err as Error).message}) for ${settlement.requestId}`);
      return false;
    }
  }

  private async settleNow(settlement: Settlement): Promise<Recorded | null> {
    try {
      const result = await this.billing.settle(settlement);
      this.metrics.settlements.inc({ path: 'sync' });
      return { ok: true, chargedMicros: result.chargedMicros };
    } catch (err) {
      this.logger.error(`Could not settle ${settlement.requestId}: ${(err as Error).message}`);
      return null;
    }
  }
}

/** What became of a settlement handed over. */
export interface Recorded {
  /** Queued or applied; false when neither store took it. */
  ok: boolean;
  /** What was charged, when the settlement was applied synchronously; null when queued. */
  chargedMicros: number | null;
}

function withTimeout<T>(promise: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}
