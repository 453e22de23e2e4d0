import type { DefaultJobOptions } from 'bullmq';

/**
 * Queue and job names, in one place. The settlement queue keeps the name `usage` it has had
 * since the first release: renaming it would strand the jobs a running deployment has queued.
 */
export const QueueName = { Usage: 'usage' } as const;
// `settle` carries one request (job id = request id), `settle-group` the requests that finished
// together (job id = group id; each request's group is also named in Redis for the sweeper)
export const JobName = { Settle: 'settle', SettleGroup: 'settle-group', SweepHolds: 'sweep-holds' } as const;

export const SETTLEMENT_JOB_DEFAULTS: DefaultJobOptions = {
  attempts: 8,
  backoff: { type: 'exponential', delay: 500 },
  removeOnComplete: { count: 1_000, age: 3_600 },
  removeOnFail: false,
};
