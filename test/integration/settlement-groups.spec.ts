import { getQueueToken } from '@nestjs/bullmq';
import { Queue, UnrecoverableError, Worker } from 'bullmq';
import Redis from 'ioredis';
import { HoldRepository } from '../../src/billing/hold.repository';
import { reconcile } from '../../src/billing/reconcile';
import { HoldSweeper } from '../../src/billing/settlement/hold-sweeper.service';
import { SettlementRecorder } from '../../src/billing/settlement/settlement-recorder.service';
import { groupMemberKey, type SettlementGroup } from '../../src/billing/settlement/settlement-groups';
import { JobName, QueueName, SETTLEMENT_WORKER } from '../../src/billing/settlement/settlement.constants';
import type { Settlement } from '../../src/billing/settlement/settlement.types';
import { RedisService } from '../../src/redis/redis.service';
import { AppContext } from '../helpers/app-context';
import { REDIS_URL } from '../helpers/databases';
import { waitFor } from '../helpers/wait';

/**
 * Grouped settlement: the requests that finish together travel as one `settle-group` job. First
 * without workers (the jobs stay where the recorder put them), then with a worker process.
 */
describe('grouped settlement (PostgreSQL and Redis)', () => {
  let ctx: AppContext;
  let holds: HoldRepository;
  let recorder: SettlementRecorder;
  let queue: Queue;

  beforeAll(async () => {
    ctx = await AppContext.start();
    holds = ctx.get(HoldRepository);
    recorder = ctx.get(SettlementRecorder);
    queue = ctx.app.get<Queue>(getQueueToken(QueueName.Usage));
  });
  afterAll(() => ctx?.close());
  beforeEach(() => queue.obliterate({ force: true }));

  async function jobs() {
    return queue.getJobs(['waiting', 'active', 'delayed', 'prioritized', 'failed', 'completed']);
  }

  it('records the requests that finish together as one group job, each named in Redis for the sweeper', async () => {
    const { settlements } = await ctx.openHolds(30, 1_000, 100, 'group');
    const recorded = await Promise.all(settlements.map((s) => recorder.record(s)));
    expect(recorded.every((r) => r.ok && r.chargedMicros === null)).toBe(true);
    const all = await jobs();
    expect(all).toHaveLength(1);
    expect(all[0].name).toBe(JobName.SettleGroup);
    expect((all[0].data as SettlementGroup).settlements.map((s) => s.requestId)).toEqual(settlements.map((s) => s.requestId));
    const redis = ctx.get(RedisService).client;
    for (const s of settlements) expect(await redis.get(groupMemberKey(queue, s.requestId))).toBe(all[0].id);
  });

  it('records a request alone as a job of its own, named by its request id', async () => {
    const { settlements } = await ctx.openHolds(1, 1_000, 100, 'group');
    expect(await recorder.record(settlements[0])).toEqual({ ok: true, chargedMicros: null });
    const all = await jobs();
    expect(all.map((j) => [j.name, j.id])).toEqual([[JobName.Settle, settlements[0].requestId]]);
  });

  it('sends the job of a request recorded by an idle process before the event loop turns; a busy one groups each turn', async () => {
    const { settlements } = await ctx.openHolds(3, 1_000, 100, 'group');
    const [alone, a, b] = settlements;
    // the recorder's clock: idle (long after anything was recorded), then busy (a fraction of a millisecond later)
    let clock = performance.now() + 60_000;
    const now = jest.spyOn(performance, 'now').mockImplementation(() => clock);
    const add = jest.spyOn(queue, 'add');
    try {
      const first = recorder.record(alone);
      for (let i = 0; i < 5; i++) await Promise.resolve();
      // no turn of the event loop yet: no other I/O (a worker's, say) ran before the job left
      expect(add).toHaveBeenCalledTimes(1);
      clock += 0.5;
      // busy: what finishes in separate callbacks of one turn travels together
      const recorded = await new Promise<Array<Promise<unknown>>>((resolve) => {
        const promises: Array<Promise<unknown>> = [first];
        setImmediate(() => promises.push(recorder.record(a)));
        setImmediate(() => {
          promises.push(recorder.record(b));
          resolve(promises);
        });
      });
      await Promise.all(recorded);
    } finally {
      now.mockRestore();
      add.mockRestore();
    }
    const all = await jobs();
    expect(all.map((j) => j.name).sort()).toEqual([JobName.Settle, JobName.SettleGroup]);
    const group = all.find((j) => j.name === JobName.SettleGroup)!;
    expect((group.data as SettlementGroup).settlements.map((s) => s.requestId)).toEqual([a.requestId, b.requestId]);
  });

  it('withdraws one request from a waiting group: the others travel on in a new group', async () => {
    const { workspaceId, keyId, settlements } = await ctx.openHolds(3, 1_000, 100, 'group');
    await Promise.all(settlements.map((s) => recorder.record(s)));
    const [first] = await jobs();
    expect(await recorder.withdraw(settlements[1].requestId)).toBe(true);
    expect(await queue.getJob(first.id!)).toBeUndefined();
    const after = await jobs();
    expect(after).toHaveLength(1);
    expect((after[0].data as SettlementGroup).settlements.map((s) => s.requestId)).toEqual([
      settlements[0].requestId,
      settlements[2].requestId,
    ]);
    // withdrawn twice: nothing left to take back
    expect(await recorder.withdraw(settlements[1].requestId)).toBe(false);
    // the withdrawn request is recorded anew (as the relay does, with what the client got)
    expect(await recorder.record({ ...settlements[1], status: 499, costMicros: 0, errorCode: 'client_disconnected' })).toMatchObject({
      ok: true,
    });
    for (const s of await jobs()) {
      const items = s.name === JobName.SettleGroup ? (s.data as SettlementGroup).settlements : [s.data as Settlement];
      for (const item of items) await holds.settle(item); // what the worker would do
    }
    expect(await ctx.money(workspaceId, keyId)).toEqual({ balance: 10_000_000 - 200, wsHeld: 0, spent: 200, keyHeld: 0 });
    expect(await reconcile(ctx.db)).toEqual([]);
  });

  it('the sweeper leaves an expired hold to its queued group, and settles it from a group that failed for good', async () => {
    const { workspaceId, keyId, settlements } = await ctx.openHolds(2, 1_000, 300, 'group');
    await Promise.all(settlements.map((s) => recorder.record(s)));
    await ctx.db.query(`UPDATE holds SET expires_at = now() - interval '1 minute' WHERE workspace_id = $1`, [workspaceId]);
    const sweeper = ctx.get(HoldSweeper);
    expect(await sweeper.sweep()).toEqual({ released: 0, settledFromFailedJobs: 0, leasesClosed: 0, skipped: 2, errors: 0 });

    const connection = new Redis(REDIS_URL, { maxRetriesPerRequest: null });
    const giveUp = new Worker(QueueName.Usage, null, { connection, prefix: `${ctx.redisPrefix}:bull`, autorun: false });
    try {
      const job = await giveUp.getNextJob('sweeper-test', { block: false });
      expect(job?.name).toBe(JobName.SettleGroup);
      await job.moveToFailed(new UnrecoverableError('gave up'), 'sweeper-test', false);
    } finally {
      await giveUp.close();
      connection.disconnect();
    }
    expect(await sweeper.sweep()).toEqual({ released: 0, settledFromFailedJobs: 2, leasesClosed: 0, skipped: 0, errors: 0 });
    expect(await ctx.money(workspaceId, keyId)).toEqual({ balance: 10_000_000 - 600, wsHeld: 0, spent: 600, keyHeld: 0 });
    expect(await reconcile(ctx.db)).toEqual([]);
  });

  it('hands a job whose worker died to another worker within about 15 s', async () => {
    const { workspaceId, keyId, settlements } = await ctx.openHolds(3, 1_000, 100, 'group');
    await Promise.all(settlements.map((s) => recorder.record(s)));
    // a gateway process takes the group and dies: its lock is what it set, and nobody renews it
    const connection = new Redis(REDIS_URL, { maxRetriesPerRequest: null });
    const victim = new Worker(QueueName.Usage, null, {
      connection,
      prefix: `${ctx.redisPrefix}:bull`,
      autorun: false,
      lockDuration: SETTLEMENT_WORKER.lockDuration,
    });
    const taken = await victim.getNextJob('victim-token', { block: false });
    expect(taken?.name).toBe(JobName.SettleGroup);
    await victim.close(true);
    connection.disconnect();
    const died = Date.now();

    const survivor = await AppContext.start({ workers: true, shareWith: ctx });
    try {
      await waitFor(
        'the survivor to apply the group',
        async () => ((await ctx.money(workspaceId, keyId)).wsHeld === 0 ? true : undefined),
        25_000,
      );
      // not before the lock expired, and within its lock and a stall check or two (BullMQ's defaults take up to a minute)
      expect(Date.now() - died).toBeGreaterThanOrEqual(SETTLEMENT_WORKER.lockDuration - 1_000);
      expect(Date.now() - died).toBeLessThan(SETTLEMENT_WORKER.lockDuration + 2 * SETTLEMENT_WORKER.stalledInterval + 2_000);
      expect(await ctx.money(workspaceId, keyId)).toEqual({ balance: 10_000_000 - 300, wsHeld: 0, spent: 300, keyHeld: 0 });
      expect(await reconcile(ctx.db)).toEqual([]);
    } finally {
      await survivor.close();
    }
  }, 60_000);

  describe('with a worker', () => {
    let worker: AppContext;

    beforeAll(async () => {
      worker = await AppContext.start({ workers: true, shareWith: ctx });
    });
    afterAll(() => worker?.close());

    it('applies a group once, and a group delivered twice charges each request once', async () => {
      const { workspaceId, keyId, settlements } = await ctx.openHolds(40, 1_000, 250, 'group');
      await Promise.all(settlements.map((s) => recorder.record(s)));
      await waitFor('the group', async () => ((await ctx.money(workspaceId, keyId)).wsHeld === 0 ? true : undefined));
      expect(await ctx.money(workspaceId, keyId)).toEqual({ balance: 10_000_000 - 40 * 250, wsHeld: 0, spent: 40 * 250, keyHeld: 0 });
      // the worker forgets the names once the group is applied
      const redis = ctx.get(RedisService).client;
      await waitFor('the names to go', async () =>
        (await redis.get(groupMemberKey(queue, settlements[0].requestId))) === null ? true : undefined,
      );

      // the same group again, under another id (a redelivery): nothing changes
      const again = await queue.add(JobName.SettleGroup, { settlements } satisfies SettlementGroup, { jobId: 'group-redelivered' });
      await waitFor('the redelivery', async () => ((await again.getState()) === 'completed' ? true : undefined));
      expect((await queue.getJob('group-redelivered'))?.returnvalue).toEqual({ applied: 0, settled: 40 });
      expect(await ctx.money(workspaceId, keyId)).toEqual({ balance: 10_000_000 - 40 * 250, wsHeld: 0, spent: 40 * 250, keyHeld: 0 });
      const [{ n }] = await ctx.db.query(`SELECT count(*)::int AS n FROM ledger_entries WHERE workspace_id = $1 AND kind = 'charge'`, [
        workspaceId,
      ]);
      expect(n).toBe(40);
      expect(await reconcile(ctx.db)).toEqual([]);
    });
  });
});
