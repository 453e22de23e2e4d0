import { OnWorkerEvent, Processor, WorkerHost } from '@nestjs/bullmq';
import { Logger } from '@nestjs/common';
import { Job } from 'bullmq';
import type { Settlement } from '../billing/billing.repository';
import { HoldSweeper } from './hold-sweeper.service';
import { SettlementBatcher } from './settlement-batcher';
import { JobName, QueueName } from './usage.constants';

// up to 64 jobs at once, so concurrent settlements share a transaction in the batcher
@Processor(QueueName.Usage, { concurrency: 64 })
export class UsageProcessor extends WorkerHost {
  private readonly logger = new Logger(UsageProcessor.name);

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
}
