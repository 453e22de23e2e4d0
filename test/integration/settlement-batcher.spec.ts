import { getQueueToken } from '@nestjs/bullmq';
import type { Queue } from 'bullmq';
import { HoldRepository } from '../../src/billing/hold.repository';
import { reconcile } from '../../src/billing/reconcile';
import { MAX_BATCH, SettlementBatcher } from '../../src/billing/settlement/settlement-batcher';
import { JobName, QueueName } from '../../src/billing/settlement/settlement.constants';
import { AppContext } from '../helpers/app-context';
import { waitFor } from '../helpers/wait';

describe(`${SettlementBatcher.name} (PostgreSQL and Redis)`, () => {
  let ctx: AppContext;
  let holds: HoldRepository;
  let batcher: SettlementBatcher;

  beforeAll(async () => {
    ctx = await AppContext.start({ workers: true });
    holds = ctx.get(HoldRepository);
    batcher = ctx.get(SettlementBatcher);
  });
  afterAll(() => ctx?.close());
  afterEach(() => jest.restoreAllMocks());

  it(`writes settlements that arrive together in one transaction per ${MAX_BATCH}`, async () => {
    const n = MAX_BATCH + MAX_BATCH / 2;
    const { workspaceId, keyId, settlements } = await ctx.openHolds(n, 1_000, 400, 'batch');
    const settleMany = jest.spyOn(holds, 'settleMany');
    const settle = jest.spyOn(holds, 'settle');

    const results = await Promise.all(settlements.map((s) => batcher.settle(s)));
    expect(results.every((r) => r.applied && r.chargedMicros === 400)).toBe(true);
    expect(settleMany).toHaveBeenCalledTimes(2);
    expect(settleMany.mock.calls.map(([items]) => items.length).sort((a, b) => a - b)).toEqual([MAX_BATCH / 2, MAX_BATCH]);
    expect(settle).not.toHaveBeenCalled();
    expect(await ctx.money(workspaceId, keyId)).toEqual({ balance: 10_000_000 - n * 400, wsHeld: 0, spent: n * 400, keyHeld: 0 });
    expect(await reconcile(ctx.db)).toEqual([]);
  });

  it('settles a request delivered twice in one batch once, and reports the charge to both', async () => {
    const { workspaceId, keyId, settlements } = await ctx.openHolds(1, 1_000, 321, 'batch');
    const [a, b] = await Promise.all([batcher.settle({ ...settlements[0] }), batcher.settle({ ...settlements[0] })]);
    expect(a).toEqual({ applied: true, chargedMicros: 321 });
    expect(b).toEqual(a);
    expect(await ctx.money(workspaceId, keyId)).toMatchObject({ balance: 10_000_000 - 321, spent: 321 });
    expect(await batcher.settle({ ...settlements[0] })).toEqual({ applied: false, chargedMicros: 0 });
  });

  it('retries a failed batch one settlement at a time, so one bad item fails alone', async () => {
    const { workspaceId, keyId, settlements } = await ctx.openHolds(3, 1_000, 200, 'batch');
    const poisoned = { ...settlements[1], promptTokens: -1 }; // refused by the usage log's check constraint
    const settle = jest.spyOn(holds, 'settle');

    const results = await Promise.allSettled([batcher.settle(settlements[0]), batcher.settle(poisoned), batcher.settle(settlements[2])]);
    expect(results.map((r) => r.status)).toEqual(['fulfilled', 'rejected', 'fulfilled']);
    expect(settle).toHaveBeenCalledTimes(3);
    expect(await ctx.money(workspaceId, keyId)).toEqual({ balance: 10_000_000 - 400, wsHeld: 1_000, spent: 400, keyHeld: 1_000 });
    const open = await ctx.db.query('SELECT request_id FROM holds WHERE workspace_id = $1', [workspaceId]);
    expect(open.map((h: { request_id: string }) => h.request_id)).toEqual([poisoned.requestId]);

    expect(await batcher.settle(settlements[1])).toEqual({ applied: true, chargedMicros: 200 });
    expect(await reconcile(ctx.db)).toEqual([]);
  });

  it('is what the queue worker settles jobs with', async () => {
    const { workspaceId, keyId, settlements } = await ctx.openHolds(20, 1_000, 150, 'batch');
    const settleMany = jest.spyOn(holds, 'settleMany');
    const queue = ctx.app.get<Queue>(getQueueToken(QueueName.Usage));
    await queue.addBulk(settlements.map((s) => ({ name: JobName.Settle, data: s, opts: { jobId: s.requestId } })));

    await waitFor('the settlements', async () => ((await ctx.money(workspaceId, keyId)).wsHeld === 0 ? true : undefined));
    expect(await ctx.money(workspaceId, keyId)).toEqual({ balance: 10_000_000 - 20 * 150, wsHeld: 0, spent: 20 * 150, keyHeld: 0 });
    // jobs taken together are written together
    expect(settleMany.mock.calls.length).toBeLessThan(20);
    expect(await reconcile(ctx.db)).toEqual([]);
  });
});
