import { InjectQueue, OnWorkerEvent, Processor, WorkerHost } from '@nestjs/bullmq';
import { BeforeApplicationShutdown, Logger } from '@nestjs/common';
import { Job, Queue } from 'bullmq';
import { HoldSweeper } from './hold-sweeper.service';
import { SettlementBatcher } from './settlement-batcher';
import { JobName, QueueName } from './settlement.constants';
import type { Settlement } from './settlement.types';

// up to 64 jobs at once, so concurrent settlements share a transaction in the batcher
@Processor(QueueName.Usage, { concurrency: 64 })
export class SettlementProcessor extends WorkerHost implements BeforeApplicationShutdown {
  private readonly logger = new Logger(SettlementProcessor.name);

  constructor(
    private readonly batcher: SettlementBatcher,
    private readonly sweeper: HoldSweeper,
    @InjectQueue(QueueName.Usage) private readonly queue: Queue,
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
      case JobName.SweepHolds:
        return this.sweeper.sweep();
      default:
        this.logger.warn(`Unknown job ${job.name} on queue ${QueueName.Usage}`);
        return null;
    }
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
