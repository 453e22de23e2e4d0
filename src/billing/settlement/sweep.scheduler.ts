import { InjectQueue } from '@nestjs/bullmq';
import { Injectable, Logger, OnApplicationBootstrap } from '@nestjs/common';
import { Queue } from 'bullmq';
import { AppConfig } from '../../config/app-config';
import { JobName, QueueName } from './settlement.constants';

/** Schedules the hold sweeper once for all worker processes (a BullMQ job scheduler). */
@Injectable()
export class SweepScheduler implements OnApplicationBootstrap {
  private readonly logger = new Logger(SweepScheduler.name);

  constructor(
    @InjectQueue(QueueName.Usage) private readonly queue: Queue,
    private readonly config: AppConfig,
  ) {}

  async onApplicationBootstrap(): Promise<void> {
    try {
      await this.queue.upsertJobScheduler(
        JobName.SweepHolds,
        { every: this.config.sweepIntervalMs },
        { name: JobName.SweepHolds, opts: { removeOnComplete: true, removeOnFail: 100 } },
      );
    } catch (err) {
      this.logger.warn(`Could not schedule the hold sweeper: ${(err as Error).message}`);
    }
  }
}
