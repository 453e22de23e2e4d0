import { Injectable, Logger } from '@nestjs/common';
import { AppConfig } from '../config/app-config';
import { addUtcMonths, UsageLogPartitionRepository } from './usage-log-partition.repository';

/** Month partitions kept ahead of now: the current month's and this many after it. */
export const PARTITION_MONTHS_AHEAD = 2;
/** The longest a maintenance step waits for a lock before giving up until the next run. */
const LOCK_TIMEOUT_MS = 250;
const DAY_MS = 86_400_000;

export interface PartitionMaintenance {
  /** The month partitions that exist for now and the months ahead (created or found). */
  ensured: string[];
  /** The month partitions dropped by retention. */
  dropped: string[];
}

/**
 * Keeps usage_logs' month partitions: creates them ahead of time (an insert never waits for
 * one, and the default partition stays empty), and with USAGE_LOG_RETENTION_DAYS drops whole
 * months that ended before now minus the retention. usage_daily and the ledger are never
 * touched: the dashboard's totals and the books stay whole.
 */
@Injectable()
export class UsageLogPartitions {
  private readonly logger = new Logger(UsageLogPartitions.name);

  constructor(
    private readonly partitions: UsageLogPartitionRepository,
    private readonly config: AppConfig,
  ) {}

  async maintain(now = new Date()): Promise<PartitionMaintenance> {
    const ensured: string[] = [];
    for (let i = 0; i <= PARTITION_MONTHS_AHEAD; i++) {
      ensured.push(await this.partitions.ensureMonth(addUtcMonths(now, i), LOCK_TIMEOUT_MS));
    }
    let dropped: string[] = [];
    const days = this.config.usageLogRetentionDays;
    if (days !== null) {
      dropped = await this.partitions.dropBefore(new Date(now.getTime() - days * DAY_MS), LOCK_TIMEOUT_MS);
      if (dropped.length > 0) this.logger.log(`Usage log retention (${days} days) dropped ${dropped.join(', ')}`);
    }
    return { ensured, dropped };
  }
}
