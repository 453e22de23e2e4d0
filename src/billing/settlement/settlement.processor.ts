import { InjectQueue, OnWorkerEvent, Processor, WorkerHost } from '@nestjs/bullmq';
import { BeforeApplicationShutdown, Logger } from '@nestjs/common';
import { Job, Queue } from 'bullmq';
import { RedisService } from '../../redis/redis.service';
import { HoldSweeper } from './hold-sweeper.service';
import { SettlementBatcher } from './settlement-batcher';
import { groupMemberKey, type SettlementGroup } from './settlement-groups';
import { JobName, QueueName, SETTLEMENT_WORKER } from './settlement.constants';
import type { Settlement } from './settlement.types';

@Processor(QueueName.Usage, SETTLEMENT_WORKER)
export class SettlementProcessor extends WorkerHost implements BeforeApplicationShutdown {
  private readonly logger = new Logger(SettlementProcessor.name);

  constructor(
    private readonly batcher: SettlementBatcher,
    private readonly sweeper: HoldSweeper,
    @InjectQueue(QueueName.Usage) private readonly queue: Queue,
    private readonly redis: RedisService,
  ) {
    super();
  }

  private lastError = 0;

  @OnWorkerEvent('error')
  onError(err: Error): void {
    if (Date.now() - this.lastError < 10_000) return;
    this.lastError = Date.now();
    this.logger.warn(`Usage worker: ${err.message}`);
  }

  @OnWorkerEvent('failed')
  onFailed(job: Job | undefined, err: Error): void {
    this.logger.warn(`Job ${job?.name} ${job?.id} failed (attempt ${job?.attemptsMade}): ${err.message}`);
  }

  async process(job: Job): Promise<unknown> {
    switch (job.name) {
      case JobName.Settle:
        return this.batcher.settle(job.data as Settlement);
      case JobName.SettleGroup:
        return this.settleGroup(job.data as SettlementGroup);
      case JobName.SweepHolds:
        return this.sweeper.sweep();
      default:
        this.logger.warn(`Unknown job ${job.name} on queue ${QueueName.Usage}`);
        return null;
    }
  }

  /**
   * A group is applied with the settlements other jobs bring at the same moment (the batcher
   * writes them in one transaction); each request is idempotent on its own, so a group
   * delivered twice, or retried after a partial failure, charges each request once.
   */
  private async settleGroup(group: SettlementGroup): Promise<{ applied: number; settled: number }> {
    const results = await Promise.all(group.settlements.map((s) => this.batcher.settle(s)));
    // the sweeper no longer needs to find these requests' job (best effort: the names expire)
    try {
      await this.redis.client.del(...group.settlements.map((s) => groupMemberKey(this.queue, s.requestId)));
    } catch (err) {
      this.logger.warn(`Could not forget a settled group's members: ${(err as Error).message}`);
    }
    return { applied: results.filter((r) => r.applied).length, settled: results.length };
  }

  /**
   * On SIGTERM, once this process has stopped taking requests: keeps working the queue until
   * no settlement waits (those of the requests just answered among them) or `timeoutMs` has
   * passed, then closes the worker, which waits for the jobs in hand. Whatever still waits
   * stays queued for the other workers (or the next start): settlement is idempotent.
   */
  async drain(timeoutMs: number): Promise<{ waiting: number }> {
    const deadline = Date.now() + timeoutMs;
    let waiting = 0;
    for (;;) {
      try {
        const counts = await this.queue.getJobCounts('waiting', 'prioritized', 'active');
        waiting = (counts.waiting ?? 0) + (counts.prioritized ?? 0) + (counts.active ?? 0);
      } catch (err) {
        this.logger.warn(`Cannot see the settlement queue while draining: ${(err as Error).message}`);
        break;
      }
      if (waiting === 0 || Date.now() >= deadline) break;
      await new Promise((resolve) => setTimeout(resolve, 25));
    }
    await this.beforeApplicationShutdown();
    return { waiting };
  }

  /**
   * Lets the jobs in hand finish before the database pools close: BullMQ itself closes its
   * workers only in the last shutdown phase, after the money statements' pool has ended.
   */
  async beforeApplicationShutdown(): Promise<void> {
    try {
      await this.worker.close();
    } catch {
      // never started (the worker is created once the application has initialised)
    }
  }
}
