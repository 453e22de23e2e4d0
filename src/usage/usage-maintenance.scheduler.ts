import { InjectQueue } from '@nestjs/bullmq';
import { Injectable, Logger, OnApplicationBootstrap } from '@nestjs/common';
import { Queue } from 'bullmq';
import { PARTITION_MAINTENANCE_INTERVAL_MS, UsageJobName, UsageQueueName } from './usage-maintenance.constants';

/** Schedules the partition upkeep once for all worker processes (a BullMQ job scheduler; its first run is immediate). */
@Injectable()
export class UsageMaintenanceScheduler implements OnApplicationBootstrap {
  private readonly logger = new Logger(UsageMaintenanceScheduler.name);

  constructor(@InjectQueue(UsageQueueName.Maintenance) private readonly queue: Queue) {}

  async onApplicationBootstrap(): Promise<void> {
    try {
      await this.queue.upsertJobScheduler(
        UsageJobName.MaintainPartitions,
        { every: PARTITION_MAINTENANCE_INTERVAL_MS },
        { name: UsageJobName.MaintainPartitions, opts: { removeOnComplete: true, removeOnFail: 100, attempts: 3, backoff: 60_000 } },
      );
    } catch (err) {
      this.logger.warn(`Could not schedule the usage log partition upkeep: ${(err as Error).message}`);
    }
  }
}
