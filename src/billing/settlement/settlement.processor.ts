import { OnWorkerEvent, Processor, WorkerHost } from '@nestjs/bullmq';
import { BeforeApplicationShutdown, Logger } from '@nestjs/common';
import { Job } from 'bullmq';
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
