import { getQueueToken } from '@nestjs/bullmq';
import { Queue, Worker } from 'bullmq';
import Redis from 'ioredis';
import { BillingService } from '../../src/billing/billing.service';
import type { HoldOutcome, HoldRequest } from '../../src/billing/hold';
import { holdEstimate } from '../../src/billing/hold-estimate';
import { HoldRepository } from '../../src/billing/hold.repository';
import { reconcile } from '../../src/billing/reconcile';
import { QueueName } from '../../src/billing/settlement/settlement.constants';
import type { Settlement } from '../../src/billing/settlement/settlement.types';
import { ApiError } from '../../src/common/errors/api-error';
import { KeysService } from '../../src/keys/keys.service';
import { AppContext, requestId } from '../helpers/app-context';
import { REDIS_URL } from '../helpers/databases';
import { sleep } from '../helpers/fake-provider';

// deepseek-v4-flash, micro-USD per 1M tokens
const MODEL = { id: 'deepseek-v4-flash', inputPriceMicros: 270_000, outputPriceMicros: 1_100_000 };

function outcome(status: number, costMicros: number, extra: Partial<HoldOutcome> = {}): HoldOutcome {
  return {
    status,
    errorCode: status === 200 ? null : 'upstream_error',
    provider: 'deepseek',
    promptTokens: 100,
    completionTokens: 50,
    costMicros,
    usageSource: 'provider',
    stream: false,
    latencyMs: 42,
    createdAt: Date.now() - 42,
    ...extra,
  };
}

describe('holds: BillingService.reserve and Hold (PostgreSQL and Redis)', () => {
  let ctx: AppContext;
  let billing: BillingService;
  let queue: Queue;

  beforeAll(async () => {
    // no workers: a queued settlement stays in the queue for the test to look at
    ctx = await AppContext.start({ env: { HOLD_TTL_SECONDS: '2' } });
    billing = ctx.get(BillingService);
    queue = ctx.app.get<Queue>(getQueueToken(QueueName.Usage));
  });
  afterAll(() => ctx?.close());

  const request = (ids: { workspaceId: string; keyId: string }, extra: Partial<HoldRequest> = {}): HoldRequest => ({
    requestId: requestId('hold'),
    workspaceId: ids.workspaceId,
    keyId: ids.keyId,
    keyHasBudget: false,
    model: MODEL,
    promptTokens: 1_000,
    completionTokens: 500,
    ...extra,
  });
  const holdRow = async (id: string) =>
    (await ctx.db.query('SELECT amount_micros, expires_at > now() AS live FROM holds WHERE request_id = $1', [id]))[0];

  it('reserves the most the request can cost and queues its settlement (job id = request id), charging at most the hold', async () => {
    const ids = await ctx.workspaceWithKey(1_000_000);
    const req = request(ids);
    const hold = await billing.reserve(req);
    const amount = holdEstimate(1_000, 500, MODEL).amountMicros;
    expect(hold.requestId).toBe(req.requestId);
    expect(hold.amountMicros).toBe(amount);
    expect(Number((await holdRow(req.requestId)).amount_micros)).toBe(amount);
    expect(await ctx.money(ids.workspaceId, ids.keyId)).toEqual({ balance: 1_000_000, wsHeld: amount, spent: 0, keyHeld: amount });

    const receipt = await hold.settle(outcome(200, amount + 10_000));
    expect(receipt).toEqual({ ok: true, chargedMicros: amount });
    const job = await queue.getJob(req.requestId);
    expect(job?.data).toMatchObject({
      requestId: req.requestId,
      workspaceId: ids.workspaceId,
      keyId: ids.keyId,
      model: MODEL.id,
      status: 200,
    });

    // what the worker does with it
    expect(await ctx.get(HoldRepository).settle(job!.data as Settlement)).toEqual({ applied: true, chargedMicros: amount });
    expect(await ctx.money(ids.workspaceId, ids.keyId)).toEqual({ balance: 1_000_000 - amount, wsHeld: 0, spent: amount, keyHeld: 0 });
    expect(await reconcile(ctx.db)).toEqual([]);
  });

  it('settles a 200 of a key with a budget at once, and tells the charge a lowered budget capped', async () => {
    const ids = await ctx.workspaceWithKey(1_000_000, { budget_micros: 100_000 });
    const req = request(ids, { keyHasBudget: true });
    const hold = await billing.reserve(req);
    await ctx.get(KeysService).update(ids.keyId, { budget_micros: 300 });

    const receipt = await hold.settle(outcome(200, 1_000));
    expect(receipt).toEqual({ ok: true, chargedMicros: 300 });
    expect(await queue.getJob(req.requestId)).toBeUndefined();
    expect(await holdRow(req.requestId)).toBeUndefined();
    expect(await ctx.money(ids.workspaceId, ids.keyId)).toEqual({ balance: 1_000_000 - 300, wsHeld: 0, spent: 300, keyHeld: 0 });
    const [entry] = await ctx.db.query('SELECT amount_micros FROM ledger_entries WHERE reference = $1', [`req:${req.requestId}`]);
    expect(Number(entry.amount_micros)).toBe(-300);
  });

  it('queues the failure of a key with a budget (nothing to charge, nothing to wait for)', async () => {
    const ids = await ctx.workspaceWithKey(1_000_000, { budget_micros: 100_000 });
    const req = request(ids, { keyHasBudget: true });
    const hold = await billing.reserve(req);
    expect(await hold.settle(outcome(502, 0))).toEqual({ ok: true, chargedMicros: 0 });
    expect((await queue.getJob(req.requestId))?.data).toMatchObject({ status: 502, errorCode: 'upstream_error', costMicros: 0 });
  });

  it('withdraws a queued settlement no worker started, so the request can be settled anew', async () => {
    const ids = await ctx.workspaceWithKey(1_000_000);
    const req = request(ids);
    const hold = await billing.reserve(req);
    await hold.settle(outcome(200, 123));
    expect(await hold.withdraw()).toBe(true);
    expect(await queue.getJob(req.requestId)).toBeUndefined();

    expect(await hold.settle(outcome(499, 0, { errorCode: 'client_disconnected', usageSource: 'none' }))).toEqual({
      ok: true,
      chargedMicros: 0,
    });
    expect((await queue.getJob(req.requestId))?.data).toMatchObject({ status: 499, errorCode: 'client_disconnected', costMicros: 0 });
  });

  it('does not withdraw a settlement a worker already applied (the charge stands)', async () => {
    await queue.drain(); // the settlements earlier tests left queued
    const ids = await ctx.workspaceWithKey(1_000_000);
    const req = request(ids);
    const hold = await billing.reserve(req);
    await hold.settle(outcome(200, 321));
    // a worker takes the job and applies it, as the gateway's own worker would
    const connection = new Redis(REDIS_URL, { maxRetriesPerRequest: null });
    const worker = new Worker(QueueName.Usage, null, { connection, prefix: queue.opts.prefix, autorun: false });
    try {
      const job = await worker.getNextJob('test-worker', { block: false });
      expect(job?.id).toBe(req.requestId);
      await ctx.get(HoldRepository).settle(job.data as Settlement);
      expect(await hold.withdraw()).toBe(false); // taken: locked by the worker
      await job.moveToCompleted({ applied: true }, 'test-worker', false);
      expect(await queue.getJob(req.requestId).then((j) => j?.getState())).toBe('completed');
      expect(await hold.withdraw()).toBe(false); // done: the charge stands
    } finally {
      await worker.close();
      connection.disconnect();
    }
    expect(await ctx.money(ids.workspaceId, ids.keyId)).toMatchObject({ balance: 1_000_000 - 321, spent: 321 });
  });

  it('refuses with 403 insufficient_quota, saying what the balance or the budget covers', async () => {
    const poor = await ctx.workspaceWithKey(100);
    const balance = await billing.reserve(request(poor)).catch((e: unknown) => e);
    expect(balance).toBeInstanceOf(ApiError);
    expect(balance).toMatchObject({ status: 403, code: 'insufficient_quota' });
    expect((balance as ApiError).message).toMatch(
      /^Insufficient prepaid balance\. Current balance: \$0\.000100\. This request can cost up to/,
    );

    const budgeted = await ctx.workspaceWithKey(1_000_000, { budget_micros: 500 });
    const budget = await billing.reserve(request(budgeted, { keyHasBudget: true, completionTokens: 1_000 })).catch((e: unknown) => e);
    expect(budget).toMatchObject({ status: 403, code: 'insufficient_quota' });
    expect((budget as ApiError).message).toMatch(
      /^Insufficient key budget\. Remaining key budget: \$0\.000500\..* what is left covers about 209 completion tokens/,
    );
    expect(await ctx.money(budgeted.workspaceId, budgeted.keyId)).toMatchObject({ wsHeld: 0, keyHeld: 0 });
  });

  it('renews an open hold every third of HOLD_TTL_SECONDS, and stops once it is settled', async () => {
    const ids = await ctx.workspaceWithKey(1_000_000);
    const req = request(ids);
    const hold = await billing.reserve(req);
    await sleep(3_000); // past the 2 s TTL
    expect((await holdRow(req.requestId)).live).toBe(true);

    await hold.settle(outcome(200, 5)); // queued; no worker here, so the hold stays until the sweeper
    await sleep(2_500);
    expect((await holdRow(req.requestId)).live).toBe(false);
  });
});

describe('holds when Redis cannot take the settlement', () => {
  let ctx: AppContext;

  beforeAll(async () => {
    jest.spyOn(console, 'error').mockImplementation(() => undefined); // ioredis reports each refused connection
    // nothing listens on port 9: every queue call fails or times out
    ctx = await AppContext.start({ env: { REDIS_URL: 'redis://127.0.0.1:9' } });
  });
  afterAll(async () => {
    await ctx?.close();
    jest.restoreAllMocks();
  });

  it('settles synchronously in PostgreSQL instead, after the 1 s enqueue timeout', async () => {
    const ids = await ctx.workspaceWithKey(1_000_000);
    const req: HoldRequest = {
      requestId: requestId('noredis'),
      workspaceId: ids.workspaceId,
      keyId: ids.keyId,
      keyHasBudget: false,
      model: MODEL,
      promptTokens: 10,
      completionTokens: 10,
    };
    const hold = await ctx.get(BillingService).reserve(req);
    const started = Date.now();
    expect(await hold.settle(outcome(200, 7))).toEqual({ ok: true, chargedMicros: 7 });
    expect(Date.now() - started).toBeGreaterThanOrEqual(900);
    expect(await ctx.money(ids.workspaceId, ids.keyId)).toEqual({ balance: 1_000_000 - 7, wsHeld: 0, spent: 7, keyHeld: 0 });
    expect(await hold.withdraw()).toBe(false);
  });
});
