import { InjectQueue } from '@nestjs/bullmq';
import { Injectable, Logger, OnApplicationBootstrap, OnModuleDestroy } from '@nestjs/common';
import { Queue } from 'bullmq';
import { AppConfig } from '../../config/app-config';
import { JobName, QueueName } from './settlement.constants';

/**
 * How long a sweep job may stay taken with no next sweep scheduled. A live worker schedules the
 * next one within milliseconds of taking a sweep (before it runs it).
 */
export const SWEEP_STUCK_MS = 5_000;

/**
 * Schedules the hold sweeper once for all worker processes (a BullMQ job scheduler), and keeps
 * it going when a process dies holding a sweep job (see `heal`).
 */
@Injectable()
export class SweepScheduler implements OnApplicationBootstrap, OnModuleDestroy {
  private readonly logger = new Logger(SweepScheduler.name);
  private watch: NodeJS.Timeout | null = null;
  private lastWarning = 0;

  constructor(
    @InjectQueue(QueueName.Usage) private readonly queue: Queue,
    private readonly config: AppConfig,
  ) {}

  async onApplicationBootstrap(): Promise<void> {
    try {
      await this.schedule();
    } catch (err) {
      this.logger.warn(`Could not schedule the hold sweeper: ${(err as Error).message}`);
    }
    this.watch = setInterval(() => void this.heal(), SWEEP_STUCK_MS);
    this.watch.unref();
  }

  onModuleDestroy(): void {
    if (this.watch) clearInterval(this.watch);
    this.watch = null;
  }

  /**
   * BullMQ schedules the next sweep in the worker that takes the current one, right after the job
   * became active. A process killed between the two leaves no next sweep: the chain would stop
   * until BullMQ's stall check hands the taken job to another worker (its 30 s lock plus a 30 s
   * check), and with it the closing of dead processes' leases. When the sweep the scheduler
   * points at was taken more than SWEEP_STUCK_MS ago, the schedule is upserted again, which adds
   * the next sweep. The taken job, when the stall check runs it later, schedules nothing more
   * (BullMQ only lets the scheduler's current job do that): there is still one chain. true when
   * it rescheduled.
   */
  async heal(): Promise<boolean> {
    try {
      const scheduler = await this.queue.getJobScheduler(JobName.SweepHolds);
      if (!scheduler?.next) return false;
      const current = await this.queue.getJob(`repeat:${JobName.SweepHolds}:${scheduler.next}`);
      if (!current?.processedOn || Date.now() - current.processedOn < SWEEP_STUCK_MS) return false;
      this.logger.warn(`The hold sweep taken at ${new Date(current.processedOn).toISOString()} scheduled no next sweep: scheduling it`);
      await this.schedule();
      return true;
    } catch (err) {
      // Redis unreachable: once a minute is enough (the queue's own errors are logged too)
      if (Date.now() - this.lastWarning >= 60_000) {
        this.lastWarning = Date.now();
        this.logger.warn(`Could not check the hold sweeper's schedule: ${(err as Error).message}`);
      }
      return false;
    }
  }

  private async schedule(): Promise<void> {
    await this.queue.upsertJobScheduler(
      JobName.SweepHolds,
      { every: this.config.sweepIntervalMs },
      { name: JobName.SweepHolds, opts: { removeOnComplete: true, removeOnFail: 100 } },
    );
  }
}
