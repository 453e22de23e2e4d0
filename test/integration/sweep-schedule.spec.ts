import { Job, JobScheduler, Queue, Worker } from 'bullmq';
import Redis from 'ioredis';
import { randomBytes } from 'node:crypto';
import { SWEEP_STUCK_MS, SweepScheduler } from '../../src/billing/settlement/sweep.scheduler';
import { JobName, QueueName } from '../../src/billing/settlement/settlement.constants';
import type { AppConfig } from '../../src/config/app-config';
import { REDIS_URL, runPrefix } from '../helpers/databases';
import { sleep } from '../helpers/fake-provider';
import { waitFor } from '../helpers/wait';

const EVERY_MS = 200;

/**
 * The hold sweep is one BullMQ job scheduler for every worker process. BullMQ schedules the next
 * sweep in the worker that takes the current one, just after taking it; these tests stand in for
 * a process killed in between (its job taken, the next sweep never scheduled).
 */
describe('hold sweep schedule (Redis)', () => {
  const connection = new Redis(REDIS_URL, { maxRetriesPerRequest: null });
  const prefix = `${runPrefix()}-sweep-${randomBytes(4).toString('hex')}`;
  const queue = new Queue(QueueName.Usage, { connection, prefix });
  const scheduler = new SweepScheduler(queue, { sweepIntervalMs: EVERY_MS } as AppConfig);
  const workers: Worker[] = [];
  let sweeps = 0;

  beforeAll(() => scheduler.onApplicationBootstrap());
  afterAll(async () => {
    scheduler.onModuleDestroy();
    await Promise.all(workers.map((w) => w.close(true)));
    await queue.obliterate({ force: true });
    await queue.close();
    connection.disconnect();
  });

  /** A worker process that survives: it counts the sweeps it runs. */
  function survivor(): Worker {
    const worker = new Worker(
      QueueName.Usage,
      async (job: Job) => {
        if (job.name === JobName.SweepHolds) sweeps++;
      },
      { connection: connection.duplicate({ maxRetriesPerRequest: null }), prefix },
    );
    workers.push(worker);
    return worker;
  }

  /** The sweep the scheduler points at: its job id, and whether a worker has taken it. */
  async function current(): Promise<{ id: string; taken: boolean }> {
    const s = await queue.getJobScheduler(JobName.SweepHolds);
    const id = `repeat:${JobName.SweepHolds}:${s!.next}`;
    return { id, taken: Boolean((await queue.getJob(id))?.processedOn) };
  }

  it('leaves a healthy schedule alone', async () => {
    const before = await current();
    expect(before.taken).toBe(false);
    expect(await scheduler.heal()).toBe(false);
    expect((await current()).id).toBe(before.id);
  });

  it('schedules the next sweep when the process that took the current one died before scheduling it', async () => {
    // the victim takes the sweep and never gets to schedule the next one
    const next = jest.spyOn(JobScheduler.prototype, 'upsertJobScheduler').mockImplementation(() => new Promise<never>(() => undefined));
    const victim = new Worker(QueueName.Usage, null, {
      connection: connection.duplicate({ maxRetriesPerRequest: null }),
      prefix,
      autorun: false,
    });
    workers.push(victim);
    const stuck = (await current()).id;
    const due = (await queue.getJobScheduler(JobName.SweepHolds))!.next!;
    await sleep(Math.max(0, due - Date.now()) + 20);
    void victim.getNextJob('victim-token', { block: false });
    await waitFor('the victim to take the sweep', async () => (await current()).taken || undefined, 5_000);
    next.mockRestore();
    expect((await current()).id).toBe(stuck);

    // without a heal, the survivors see no sweep at all: the chain stopped
    survivor();
    survivor();
    await sleep(5 * EVERY_MS);
    expect(sweeps).toBe(0);
    expect((await current()).id).toBe(stuck);
    // not yet: the taker may still be about to schedule it
    expect(await scheduler.heal()).toBe(false);

    await sleep(SWEEP_STUCK_MS - 5 * EVERY_MS + 100);
    expect(await scheduler.heal()).toBe(true);
    expect((await current()).id).not.toBe(stuck);
    // the survivors sweep again, every EVERY_MS
    await waitFor('sweeps to run again', async () => (sweeps >= 3 ? true : undefined), 5_000);
    expect(await scheduler.heal()).toBe(false);
  }, 30_000);
});
