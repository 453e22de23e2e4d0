import type { DefaultJobOptions } from 'bullmq';

/** Queue and job names, in one place. */
export const QueueName = { Usage: 'usage' } as const;
export const JobName = { Settle: 'settle', SweepHolds: 'sweep-holds' } as const;

export const USAGE_JOB_DEFAULTS: DefaultJobOptions = {
  attempts: 8,
  backoff: { type: 'exponential', delay: 500 },
  removeOnComplete: { count: 1_000, age: 3_600 },
  removeOnFail: false,
};
