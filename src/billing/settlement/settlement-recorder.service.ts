import { InjectQueue } from '@nestjs/bullmq';
import { Injectable, Logger } from '@nestjs/common';
import { Queue } from 'bullmq';
import { MetricsService } from '../../metrics/metrics.service';
import { HoldRepository } from '../hold.repository';
import { JobName, QueueName } from './settlement.constants';
import type { Settlement } from './settlement.types';

const ENQUEUE_TIMEOUT_MS = 1_000;

/** What became of a settlement handed over. */
export interface Recorded {
  /** Queued or applied; false when neither store took it. */
  ok: boolean;
  /** What was charged, when the settlement was applied synchronously; null when queued. */
  chargedMicros: number | null;
}

/**
 * Hands a finished request to the settlement queue (job id = request id) before the client
 * gets its answer. If Redis cannot take the job, the request is settled synchronously in
 * PostgreSQL instead: the usage record and the charge are never lost. A job that reaches
 * Redis after the fallback settled is harmless: settlement is idempotent.
 */
@Injectable()
export class SettlementRecorder {
  private readonly logger = new Logger(SettlementRecorder.name);

  constructor(
    @InjectQueue(QueueName.Usage) private readonly queue: Queue,
    private readonly holds: HoldRepository,
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
      : (await this.enqueue(settlement))
        ? queued
        : await this.settleNow(settlement);
    if (recorded) {
      this.metrics.observeTokens(settlement.model, settlement.promptTokens, settlement.completionTokens);
      return recorded;
    }
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
      return await withTimeout(this.removeWaiting(requestId), ENQUEUE_TIMEOUT_MS);
    } catch {
      return false;
    }
  }

  /**
   * Removes the job only while no worker has it: `Queue.remove` also removes (and reports) a
   * job already completed, whose charge is applied. A job a worker takes between the look and
   * the removal is locked, and its removal throws.
   */
  private async removeWaiting(requestId: string): Promise<boolean> {
    const job = await this.queue.getJob(requestId);
    if (!job) return false;
    const state = await job.getState();
    if (state !== 'waiting' && state !== 'delayed' && state !== 'prioritized') return false;
    await job.remove();
    return true;
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
      const result = await this.holds.settle(settlement);
      this.metrics.settlements.inc({ path: 'sync' });
      return { ok: true, chargedMicros: result.chargedMicros };
    } catch (err) {
      this.logger.error(`Could not settle ${settlement.requestId}: ${(err as Error).message}`);
      return null;
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
