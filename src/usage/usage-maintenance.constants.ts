/** The queue of usage_logs' upkeep (its partitions), separate from billing's settlement queue. */
export const UsageQueueName = { Maintenance: 'usage-maintenance' } as const;
export const UsageJobName = { MaintainPartitions: 'maintain-usage-log-partitions' } as const;

/** How often the partitions are kept: hourly is plenty for months created two ahead. */
export const PARTITION_MAINTENANCE_INTERVAL_MS = 3_600_000;
