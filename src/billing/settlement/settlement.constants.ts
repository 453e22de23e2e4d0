import type { DefaultJobOptions } from 'bullmq';

/**
 * Queue and job names, in one place. The settlement queue keeps the name `usage` it has had
 * since the first release: renaming it would strand the jobs a running deployment has queued.
 */
export const QueueName = { Usage: 'usage' } as const;
// `settle` carries one request (job id = request id), `settle-group` the requests that finished
// together (job id = group id; each request's group is also named in Redis for the sweeper)
export const JobName = { Settle: 'settle', SettleGroup: 'settle-group', SweepHolds: 'sweep-holds' } as const;

/**
 * The settlement worker's options. Up to 64 jobs at once, so concurrent settlements share a
 * transaction in the batcher. A job whose process died goes back to the queue once its lock
 * expired (10 s) and the next stall check ran (every 5 s): within about 15 s, where BullMQ's
 * defaults (30 s and 30 s) take up to a minute. A live worker renews its locks every 5 s; a job
 * run twice charges once (settlement is idempotent per request).
 */
export const SETTLEMENT_WORKER = { concurrency: 64, lockDuration: 10_000, stalledInterval: 5_000 } as const;

export const SETTLEMENT_JOB_DEFAULTS: DefaultJobOptions = {
  attempts: 8,
  backoff: { type: 'exponential', delay: 500 },
  removeOnComplete: { count: 1_000, age: 3_600 },
  removeOnFail: false,
};
