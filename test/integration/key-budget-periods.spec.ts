import { HoldRepository } from '../../src/billing/hold.repository';
import { reconcile } from '../../src/billing/reconcile';
import { KeysService } from '../../src/keys/keys.service';
import { AppContext, requestId, settlement } from '../helpers/app-context';

const MODEL = 'deepseek-v4-flash';

describe('key budgets with a reset period, last use and daily usage (nexo_place_hold / nexo_settle)', () => {
  let ctx: AppContext;
  let holds: HoldRepository;
  let keys: KeysService;

  beforeAll(async () => {
    ctx = await AppContext.start();
    holds = ctx.get(HoldRepository);
    keys = ctx.get(KeysService);
  });
  afterAll(() => ctx?.close());

  /** Places a hold of `amount` and settles it at `cost`: what it charged, or the refusal. */
  async function spend(ids: { workspaceId: string; keyId: string }, amount: number, cost = amount): Promise<number | string> {
    const id = requestId('period');
    const placed = await holds.placeHold(id, ids.workspaceId, ids.keyId, MODEL, amount, 900);
    if (placed.outcome !== 'held') return placed.outcome;
    return (await holds.settle(settlement(ids, id, cost))).chargedMicros;
  }

  const keyRow = async (keyId: string) =>
    (await ctx.db.query('SELECT spent_micros, period_spent_micros, period_start, last_used_at FROM api_keys WHERE id = $1', [keyId]))[0];
  /** Moves the key's stored period back by a day, as if its last charge had been yesterday. */
  const endPeriod = (keyId: string) =>
    ctx.db.query(`UPDATE api_keys SET period_start = period_start - interval '1 day' WHERE id = $1`, [keyId]);

  it('nexo_period_start: UTC days, weeks from Monday 00:00, months', async () => {
    const [row] = await ctx.db.query(`
      SELECT nexo_period_start('daily', '2026-03-04T23:59:59Z') AS daily,
             nexo_period_start('weekly', '2026-03-04T10:00:00Z') AS wednesday,
             nexo_period_start('weekly', '2026-03-08T23:59:59Z') AS sunday,
             nexo_period_start('weekly', '2026-03-09T00:00:00Z') AS monday,
             nexo_period_start('monthly', '2026-03-31T23:59:59+05:00') AS monthly,
             nexo_period_start(NULL, now()) AS none`);
    expect(row.daily.toISOString()).toBe('2026-03-04T00:00:00.000Z');
    expect(row.wednesday.toISOString()).toBe('2026-03-02T00:00:00.000Z');
    expect(row.sunday.toISOString()).toBe('2026-03-02T00:00:00.000Z');
    expect(row.monday.toISOString()).toBe('2026-03-09T00:00:00.000Z');
    // 23:59:59 at +05:00 is 18:59:59 UTC, still March
    expect(row.monthly.toISOString()).toBe('2026-03-01T00:00:00.000Z');
    expect(row.none).toBeNull();
  });

  it('a daily budget caps the spend within the day, and starts again once the day is over', async () => {
    const ids = await ctx.workspaceWithKey(1_000_000, { budget_micros: 1_000, budget_period: 'daily' });
    expect(await spend(ids, 600)).toBe(600);
    expect(await spend(ids, 500)).toBe('insufficient_budget');
    expect(await spend(ids, 400)).toBe(400);
    expect(await spend(ids, 1)).toBe('insufficient_budget');
    expect((await keys.get(ids.keyId)).spent_micros).toBe(1_000);

    await endPeriod(ids.keyId);
    expect((await keys.get(ids.keyId)).spent_micros).toBe(0);
    expect(await spend(ids, 700)).toBe(700);
    expect(await spend(ids, 400)).toBe('insufficient_budget');
    const row = await keyRow(ids.keyId);
    // the lifetime spend goes on (reconcile compares it with the ledger); the period's restarted
    expect(Number(row.spent_micros)).toBe(1_700);
    expect(Number(row.period_spent_micros)).toBe(700);
    const [{ today }] = await ctx.db.query(`SELECT nexo_period_start('daily', now()) AS today`);
    expect(row.period_start.toISOString()).toBe(today.toISOString());
    expect(await keys.get(ids.keyId)).toMatchObject({ budget_period: 'daily', budget_micros: 1_000, spent_micros: 700 });
    expect(await reconcile(ctx.db)).toEqual([]);
  });

  it('a request that crosses the boundary is charged in the new period, capped by what is left of it', async () => {
    const ids = await ctx.workspaceWithKey(1_000_000, { budget_micros: 1_000, budget_period: 'weekly' });
    expect(await spend(ids, 900)).toBe(900);
    const id = requestId('period');
    expect((await holds.placeHold(id, ids.workspaceId, ids.keyId, MODEL, 100, 900)).outcome).toBe('held');
    await endPeriod(ids.keyId);
    await ctx.db.query(`UPDATE api_keys SET period_start = period_start - interval '7 days' WHERE id = $1`, [ids.keyId]);
    expect((await holds.settle(settlement(ids, id, 100))).chargedMicros).toBe(100);
    expect(Number((await keyRow(ids.keyId)).period_spent_micros)).toBe(100);
    // the budget lowered under a running request still caps its charge, in this period
    const late = requestId('period');
    expect((await holds.placeHold(late, ids.workspaceId, ids.keyId, MODEL, 500, 900)).outcome).toBe('held');
    await keys.update(ids.keyId, { budget_micros: 300 });
    expect((await holds.settle(settlement(ids, late, 500))).chargedMicros).toBe(200);
    expect((await keys.get(ids.keyId)).spent_micros).toBe(300);
    expect(await reconcile(ctx.db)).toEqual([]);
  });

  it('under concurrency a period never spends more than its budget', async () => {
    const ids = await ctx.workspaceWithKey(10_000_000, { budget_micros: 10_000, budget_period: 'monthly' });
    // some of it was spent in an earlier month: that no longer counts
    expect(await spend(ids, 6_000)).toBe(6_000);
    await ctx.db.query(`UPDATE api_keys SET period_start = period_start - interval '40 days' WHERE id = $1`, [ids.keyId]);
    const results = await Promise.all(Array.from({ length: 30 }, () => spend(ids, 1_000, 1_000)));
    expect(results.filter((r) => r === 1_000)).toHaveLength(10);
    expect(results.filter((r) => r === 'insufficient_budget')).toHaveLength(20);
    const row = await keyRow(ids.keyId);
    expect(Number(row.period_spent_micros)).toBe(10_000);
    expect(Number(row.spent_micros)).toBe(16_000);
    expect(await reconcile(ctx.db)).toEqual([]);
  });

  it('a key without a period is capped by its lifetime spend, as before', async () => {
    const ids = await ctx.workspaceWithKey(1_000_000, { budget_micros: 1_000 });
    expect(await spend(ids, 1_000)).toBe(1_000);
    await ctx.db.query(`UPDATE api_keys SET period_start = now() - interval '3 days' WHERE id = $1`, [ids.keyId]);
    expect(await spend(ids, 1)).toBe('insufficient_budget');
    expect(await keys.get(ids.keyId)).toMatchObject({ budget_period: null, spent_micros: 1_000 });
  });

  it('a new period counts the charges since its start (from the ledger); none counts the lifetime spend', async () => {
    const ids = await ctx.workspaceWithKey(1_000_000, { budget_micros: 5_000 });
    expect(await spend(ids, 700)).toBe(700);
    // a charge of an earlier day
    await ctx.db.query(`UPDATE ledger_entries SET created_at = created_at - interval '2 days' WHERE key_id = $1 AND kind = 'charge'`, [
      ids.keyId,
    ]);
    expect(await spend(ids, 300)).toBe(300);
    expect(await keys.update(ids.keyId, { budget_period: 'daily' })).toMatchObject({ budget_period: 'daily', spent_micros: 300 });
    // naming the same period again restarts nothing
    expect(await spend(ids, 200)).toBe(200);
    expect(await keys.update(ids.keyId, { budget_period: 'daily', name: 'renamed' })).toMatchObject({ name: 'renamed', spent_micros: 500 });
    expect(await keys.update(ids.keyId, { budget_period: 'monthly' })).toMatchObject({ budget_period: 'monthly' });
    expect(await keys.update(ids.keyId, { budget_period: null })).toMatchObject({ budget_period: null, spent_micros: 1_200 });
    expect(await reconcile(ctx.db)).toEqual([]);
  });

  it('the settlement sets last_used_at (the latest request start) and keeps usage_daily equal to the logs, once per request', async () => {
    const ids = await ctx.workspaceWithKey(1_000_000);
    expect((await keys.get(ids.keyId)).last_used_at).toBeNull();
    const t1 = Date.parse('2026-01-10T23:59:59.500Z');
    const t2 = Date.parse('2026-01-11T00:00:00.250Z');
    const a = requestId('daily');
    const b = requestId('daily');
    for (const id of [a, b]) expect((await holds.placeHold(id, ids.workspaceId, ids.keyId, MODEL, 1_000, 900)).outcome).toBe('held');
    await holds.settle(settlement(ids, b, 300, { createdAt: t2, promptTokens: 7, completionTokens: 9 }));
    await holds.settle(settlement(ids, a, 200, { createdAt: t1 }));
    // settled again, alone and in a batch: nothing more is counted
    await holds.settle(settlement(ids, a, 200, { createdAt: t1 }));
    await holds.settleMany([settlement(ids, b, 300, { createdAt: t2 }), settlement(ids, a, 200, { createdAt: t1 })]);
    // a request with no hold (released meanwhile) is still logged and counted, at no charge
    const c = requestId('daily');
    await holds.settle(settlement(ids, c, 999, { createdAt: t1, status: 502, errorCode: 'gateway_error' }));
    expect((await keys.get(ids.keyId)).last_used_at).toBe(new Date(t2).toISOString());

    const daily = await ctx.db.query(
      `SELECT to_char(day, 'YYYY-MM-DD') AS day, model, requests::int, prompt_tokens::int, completion_tokens::int, cost_micros::int
         FROM usage_daily WHERE key_id = $1 ORDER BY day`,
      [ids.keyId],
    );
    expect(daily).toEqual([
      { day: '2026-01-10', model: MODEL, requests: 2, prompt_tokens: 20, completion_tokens: 40, cost_micros: 200 },
      { day: '2026-01-11', model: MODEL, requests: 1, prompt_tokens: 7, completion_tokens: 9, cost_micros: 300 },
    ]);
    const [logs] = await ctx.db.query(
      `SELECT count(*)::int AS requests, sum(prompt_tokens)::int AS prompt_tokens, sum(completion_tokens)::int AS completion_tokens,
              sum(cost_micros)::int AS cost_micros FROM usage_logs WHERE key_id = $1`,
      [ids.keyId],
    );
    expect(logs).toEqual({ requests: 3, prompt_tokens: 27, completion_tokens: 49, cost_micros: 500 });
    expect(await reconcile(ctx.db)).toEqual([]);
  });
});
