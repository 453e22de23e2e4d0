import { getQueueToken } from '@nestjs/bullmq';
import { Queue, UnrecoverableError, Worker } from 'bullmq';
import Redis from 'ioredis';
import { HoldRepository } from '../../src/billing/hold.repository';
import { reconcile, unknownOutcomes } from '../../src/billing/reconcile';
import { HoldSweeper, OUTCOME_UNKNOWN } from '../../src/billing/settlement/hold-sweeper.service';
import { JobName, QueueName } from '../../src/billing/settlement/settlement.constants';
import { AppContext, requestId, settlement } from '../helpers/app-context';
import { REDIS_URL } from '../helpers/databases';

const MODEL = 'deepseek-v4-flash';

describe(`${HoldSweeper.name} (PostgreSQL and Redis)`, () => {
  let ctx: AppContext;
  let holds: HoldRepository;
  let sweeper: HoldSweeper;
  let queue: Queue;

  beforeAll(async () => {
    // no workers: jobs stay where the test puts them
    ctx = await AppContext.start();
    holds = ctx.get(HoldRepository);
    sweeper = ctx.get(HoldSweeper);
    queue = ctx.app.get<Queue>(getQueueToken(QueueName.Usage));
  });
  afterAll(() => ctx?.close());
  beforeEach(async () => {
    // each test sees its own holds only
    await queue.obliterate({ force: true });
    expect(await ctx.db.query('SELECT request_id FROM holds WHERE expires_at < now()')).toEqual([]);
  });

  async function expiredHold(amount = 1_000) {
    const ids = await ctx.workspaceWithKey(1_000_000);
    const id = requestId('sweep');
    expect(await holds.placeHold(id, ids.workspaceId, ids.keyId, MODEL, amount, 900)).toEqual({ outcome: 'held' });
    await ctx.db.query(`UPDATE holds SET expires_at = now() - interval '1 minute' WHERE request_id = $1`, [id]);
    const settled = settlement(ids, id, 600, { latencyMs: 9, stream: true, createdAt: Date.now() - 60_000 });
    return { ...ids, id, settlement: settled };
  }

  it('releases an expired hold with no job at no charge, logged with no status and outcome_unknown', async () => {
    const before = await unknownOutcomes(ctx.db);
    const { workspaceId, keyId, id } = await expiredHold();
    expect(await sweeper.sweep()).toEqual({ released: 1, settledFromFailedJobs: 0, leasesClosed: 0, skipped: 0, errors: 0 });
    expect(await ctx.money(workspaceId, keyId)).toEqual({ balance: 1_000_000, wsHeld: 0, spent: 0, keyHeld: 0 });
    const [log] = await ctx.db.query('SELECT status, error_code, cost_micros, usage_source FROM usage_logs WHERE request_id = $1', [id]);
    expect(log).toEqual({ status: null, error_code: OUTCOME_UNKNOWN, cost_micros: '0', usage_source: 'none' });
    expect(await ctx.db.query('SELECT 1 FROM ledger_entries WHERE reference = $1', [`req:${id}`])).toEqual([]);
    expect(await unknownOutcomes(ctx.db)).toEqual({ requests: before.requests + 1, workspaces: before.workspaces + 1 });
    expect(await reconcile(ctx.db)).toEqual([]);
  });

  it('leaves an expired hold whose job is still queued to the job', async () => {
    const { id, settlement } = await expiredHold();
    await queue.add(JobName.Settle, settlement, { jobId: id });
    expect(await sweeper.sweep()).toEqual({ released: 0, settledFromFailedJobs: 0, leasesClosed: 0, skipped: 1, errors: 0 });
    expect(await ctx.db.query('SELECT 1 FROM holds WHERE request_id = $1', [id])).toHaveLength(1);
    await holds.settle(settlement); // what the job would do
  });

  it('settles an expired hold from the data of its job that failed for good', async () => {
    const { workspaceId, keyId, id, settlement } = await expiredHold();
    await queue.add(JobName.Settle, settlement, { jobId: id });
    const connection = new Redis(REDIS_URL, { maxRetriesPerRequest: null });
    const giveUp = new Worker(QueueName.Usage, null, { connection, prefix: `${ctx.redisPrefix}:bull`, autorun: false });
    try {
      const job = await giveUp.getNextJob('sweeper-test', { block: false });
      expect(job?.id).toBe(id);
      await job.moveToFailed(new UnrecoverableError('gave up'), 'sweeper-test', false);
    } finally {
      await giveUp.close();
      connection.disconnect();
    }
    expect(await sweeper.sweep()).toEqual({ released: 0, settledFromFailedJobs: 1, leasesClosed: 0, skipped: 0, errors: 0 });
    expect(await ctx.money(workspaceId, keyId)).toEqual({ balance: 1_000_000 - 600, wsHeld: 0, spent: 600, keyHeld: 0 });
    const [log] = await ctx.db.query('SELECT status, stream, cost_micros FROM usage_logs WHERE request_id = $1', [id]);
    expect(log).toEqual({ status: 200, stream: true, cost_micros: '600' });
    expect(await reconcile(ctx.db)).toEqual([]);
  });

  it('never releases a hold that is not expired, or that another transaction holds, when it gets to it', async () => {
    const { id, settlement } = await expiredHold();
    const release = { ...settlement, costMicros: 0, status: null, errorCode: OUTCOME_UNKNOWN, usageSource: 'none' as const };

    // locked by a settlement or a renewal in progress: skipped, not waited for
    const runner = ctx.db.createQueryRunner();
    await runner.connect();
    await runner.startTransaction();
    try {
      await runner.query('SELECT 1 FROM holds WHERE request_id = $1 FOR UPDATE', [id]);
      expect(await holds.settleIfExpired(release)).toBe(false);
    } finally {
      await runner.rollbackTransaction();
      await runner.release();
    }

    // renewed by its live process after the sweeper listed it
    expect((await holds.expiredHolds(100)).map((h) => h.requestId)).toContain(id);
    await holds.extendHolds([id], 60);
    expect(await holds.settleIfExpired(release)).toBe(false);
    expect(await sweeper.sweep()).toEqual({ released: 0, settledFromFailedJobs: 0, leasesClosed: 0, skipped: 0, errors: 0 });
    expect(await ctx.db.query('SELECT 1 FROM holds WHERE request_id = $1', [id])).toHaveLength(1);
    await holds.settle(settlement);
  });

  it('lists expired holds oldest expiry first, up to the limit', async () => {
    const a = await expiredHold();
    const b = await expiredHold();
    await ctx.db.query(`UPDATE holds SET expires_at = now() - interval '2 minutes' WHERE request_id = $1`, [b.id]);
    const listed = await holds.expiredHolds(1);
    expect(listed).toEqual([{ requestId: b.id, workspaceId: b.workspaceId, keyId: b.keyId, model: MODEL, createdAt: expect.any(Date) }]);
    expect((await holds.expiredHolds(10)).map((h) => h.requestId)).toEqual([b.id, a.id]);
    expect(await sweeper.sweep()).toMatchObject({ released: 2 });
  });
});
