import { Job, JobScheduler, Queue, Worker } from 'bullmq';
import Redis from 'ioredis';
import { randomBytes } from 'node:crypto';
import { JobName, QueueName, SETTLEMENT_WORKER } from '../../src/billing/settlement/settlement.constants';
import { SweepScheduler } from '../../src/billing/settlement/sweep.scheduler';
import type { AppConfig } from '../../src/config/app-config';
import { REDIS_URL, runPrefix } from '../helpers/databases';
import { sleep } from '../helpers/fake-provider';
import { waitFor } from '../helpers/wait';

const EVERY_MS = 200;

/**
 * The hold sweep is one BullMQ job scheduler for every worker process, and BullMQ schedules the
 * next sweep in the worker that takes the current one, just after taking it. A process killed in
 * between leaves no next sweep: the chain (and with it the closing of dead processes' leases)
 * resumes only once the stall check hands the taken sweep to another worker.
 */
describe('hold sweep schedule (Redis)', () => {
  const connection = new Redis(REDIS_URL, { maxRetriesPerRequest: null });
  const prefix = `${runPrefix()}-sweep-${randomBytes(4).toString('hex')}`;
  const queue = new Queue(QueueName.Usage, { connection, prefix });
  const workers: Worker[] = [];
  let sweeps = 0;

  beforeAll(() => new SweepScheduler(queue, { sweepIntervalMs: EVERY_MS } as AppConfig).onApplicationBootstrap());
  afterAll(async () => {
    await Promise.all(workers.map((w) => w.close(true)));
    await queue.obliterate({ force: true });
    await queue.close();
    connection.disconnect();
  });

  function worker(options: { autorun: boolean }): Worker {
    const w = new Worker(
      QueueName.Usage,
      async (job: Job) => {
        if (job.name === JobName.SweepHolds) sweeps++;
      },
      { ...SETTLEMENT_WORKER, ...options, connection: connection.duplicate({ maxRetriesPerRequest: null }), prefix },
    );
    workers.push(w);
    return w;
  }

  /** The sweep the scheduler points at, and whether a worker has taken it. */
  async function current(): Promise<{ id: string; due: number; taken: boolean }> {
    const next = (await queue.getJobScheduler(JobName.SweepHolds))!.next!;
    const id = `repeat:${JobName.SweepHolds}:${next}`;
    return { id, due: next, taken: Boolean((await queue.getJob(id))?.processedOn) };
  }

  it('goes on within about 15 s when the process that took a sweep died before scheduling the next', async () => {
    // the victim takes the sweep and dies before it schedules the next one
    const scheduleNext = jest
      .spyOn(JobScheduler.prototype, 'upsertJobScheduler')
      .mockImplementation(() => new Promise<never>(() => undefined));
    const victim = worker({ autorun: false });
    const stuck = await current();
    await sleep(Math.max(0, stuck.due - Date.now()) + 20);
    void victim.getNextJob('victim-token', { block: false });
    await waitFor('the victim to take the sweep', async () => (await current()).taken || undefined, 5_000);
    scheduleNext.mockRestore();
    await victim.close(true);
    const died = Date.now();

    // two surviving processes: no sweep at first, the chain stopped
    worker({ autorun: true });
    worker({ autorun: true });
    await sleep(5 * EVERY_MS);
    expect(sweeps).toBe(0);
    expect((await current()).id).toBe(stuck.id);

    // once the lock expired, a stall check hands the sweep to a survivor, which schedules the next
    await waitFor('sweeps to run again', async () => (sweeps >= 3 ? true : undefined), 25_000);
    expect(Date.now() - died).toBeLessThan(SETTLEMENT_WORKER.lockDuration + 2 * SETTLEMENT_WORKER.stalledInterval + 2 * 1_000);
    expect((await current()).id).not.toBe(stuck.id);
  }, 40_000);
});
