import { Processor, WorkerHost } from '@nestjs/bullmq';
import { Logger } from '@nestjs/common';
import { Job } from 'bullmq';
import { BillingRepository, Settlement } from '../billing/billing.repository';
import { HoldSweeper } from './hold-sweeper.service';
import { JobName, QueueName } from './usage.constants';

@Processor(QueueName.Usage, { concurrency: 16 })
export class UsageProcessor extends WorkerHost {
  private readonly logger = new Logger(UsageProcessor.name);

  constructor(
    private readonly billing: BillingRepository,
    private readonly sweeper: HoldSweeper,
  ) {
    super();
  }

  async process(job: Job): Promise<unknown> {
    switch (job.name) {
      case JobName.Settle:
        return this.billing.settle(job.data as Settlement);
      case JobName.SweepHolds:
        return this.sweeper.sweep();
      default:
        this.logger.warn(`Unknown job ${job.name} on queue ${QueueName.Usage}`);
        return null;
    }
  }
}
