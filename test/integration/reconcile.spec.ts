import { BillingService } from '../../src/billing/billing.service';
import { reconcile } from '../../src/billing/reconcile';
import { AppContext, requestId } from '../helpers/app-context';

describe('reconcile: the books checked against themselves (PostgreSQL)', () => {
  let ctx: AppContext;

  beforeAll(async () => {
    ctx = await AppContext.start();
  });
  afterAll(() => ctx?.close());

  it('reports daily usage totals that no longer equal the logs they sum', async () => {
    const ids = await ctx.workspaceWithKey(1_000_000, { budget_micros: 500_000 });
    const model = { id: 'deepseek-v4-flash', inputPriceMicros: 270_000, outputPriceMicros: 1_100_000 };
    for (let i = 0; i < 3; i++) {
      const hold = await ctx.get(BillingService).reserve({
        requestId: requestId('rec'),
        ...ids,
        keyHasBudget: true, // settled at once in PostgreSQL
        model,
        promptTokens: 100,
        completionTokens: 100,
      });
      const receipt = await hold.settle({
        status: 200,
        errorCode: null,
        provider: 'deepseek',
        promptTokens: 10,
        completionTokens: 20,
        costMicros: 25,
        usageSource: 'provider',
        stream: false,
        latencyMs: 5,
        createdAt: Date.now(),
      });
      expect(receipt).toEqual({ ok: true, chargedMicros: 25 });
    }
    expect(await reconcile(ctx.db)).toEqual([]);

    await ctx.db.query('UPDATE usage_daily SET requests = requests + 1, cost_micros = cost_micros - 5 WHERE workspace_id = $1', [
      ids.workspaceId,
    ]);
    const drifts = await reconcile(ctx.db);
    expect(drifts.map((d) => [d.kind, d.expected, d.actual])).toEqual([
      ['usage_daily_requests', 3, 4],
      ['usage_daily_cost', 75, 70],
    ]);
    expect(drifts[0].id).toContain(ids.workspaceId);

    await ctx.db.query('DELETE FROM usage_daily WHERE workspace_id = $1', [ids.workspaceId]);
    expect((await reconcile(ctx.db)).map((d) => [d.kind, d.expected, d.actual])).toEqual([
      ['usage_daily_requests', 3, 0],
      ['usage_daily_cost', 75, 0],
    ]);
  });
});
