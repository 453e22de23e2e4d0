import { Injectable } from '@nestjs/common';
import { DataSource } from 'typeorm';

/** A month partition of usage_logs: its name (usage_logs_YYYY_MM) and the month it holds, [from, to). */
export interface UsageLogPartition {
  name: string;
  from: Date;
  to: Date;
}

/**
 * The partitions of usage_logs, through the SQL functions of 1764400000500-UsageLogPartitions.
 * Each call is one short transaction that gives up after `lockTimeoutMs` waiting for a lock
 * (attaching a partition briefly locks usage_logs' default partition, detaching one the whole
 * table; usage_logs has no foreign keys, so workspaces and api_keys are never locked): the next
 * run tries again, and no settlement queues behind it for longer than that.
 */
@Injectable()
export class UsageLogPartitionRepository {
  constructor(private readonly db: DataSource) {}

  /** Creates the partition of the UTC month holding `month` unless it exists; returns its name. */
  async ensureMonth(month: Date, lockTimeoutMs: number): Promise<string> {
    return this.db.transaction(async (tx) => {
      await tx.query(`SELECT set_config('lock_timeout', $1, true)`, [`${lockTimeoutMs}ms`]);
      const [row]: Array<{ name: string }> = await tx.query('SELECT nexo_usage_log_partition($1) AS name', [month]);
      return row.name;
    });
  }

  /** Detaches and drops the month partitions ending at or before the UTC month start at or before `before`. */
  async dropBefore(before: Date, lockTimeoutMs: number): Promise<string[]> {
    return this.db.transaction(async (tx) => {
      await tx.query(`SELECT set_config('lock_timeout', $1, true)`, [`${lockTimeoutMs}ms`]);
      const rows: Array<{ name: string }> = await tx.query('SELECT name FROM nexo_drop_usage_log_partitions($1) AS name', [before]);
      return rows.map((r) => r.name);
    });
  }

  /** The month partitions, oldest first (the default partition is not one). */
  async list(): Promise<UsageLogPartition[]> {
    const rows: Array<{ name: string; from: Date }> = await this.db.query(
      `SELECT c.relname AS name, to_date(substr(c.relname, 12), 'YYYY_MM')::timestamp AT TIME ZONE 'UTC' AS "from"
         FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
        WHERE i.inhparent = 'usage_logs'::regclass AND c.relname ~ '^usage_logs_[0-9]{4}_[0-9]{2}$'
        ORDER BY c.relname`,
    );
    return rows.map((r) => ({ name: r.name, from: r.from, to: addUtcMonths(r.from, 1) }));
  }

  /** Until when logs were dropped by retention (logs created before it are gone), or null. */
  async droppedBefore(): Promise<Date | null> {
    const [row]: Array<{ dropped_before: Date | null }> = await this.db.query('SELECT dropped_before FROM usage_log_retention');
    return row?.dropped_before ?? null;
  }
}

/** The start of the UTC month `months` after the one holding `at`. */
export function addUtcMonths(at: Date, months: number): Date {
  return new Date(Date.UTC(at.getUTCFullYear(), at.getUTCMonth() + months, 1));
}
