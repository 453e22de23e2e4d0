import { Processor, WorkerHost } from '@nestjs/bullmq';
import { Logger } from '@nestjs/common';
import { Job } from 'bullmq';
import { UsageLogPartitions } from './usage-log-partitions.service';
import { UsageJobName, UsageQueueName } from './usage-maintenance.constants';

@Processor(UsageQueueName.Maintenance, { concurrency: 1 })
export class UsageMaintenanceProcessor extends WorkerHost {
  private readonly logger = new Logger(UsageMaintenanceProcessor.name);

  constructor(private readonly partitions: UsageLogPartitions) {
    super();
  }

  async process(job: Job): Promise<unknown> {
    if (job.name === UsageJobName.MaintainPartitions) return this.partitions.maintain();
    this.logger.warn(`Unknown job ${job.name} on queue ${UsageQueueName.Maintenance}`);
    return null;
  }
}
