import { BillingService } from '../../src/billing/billing.service';
import type { HoldOutcome } from '../../src/billing/hold';
import { holdEstimate } from '../../src/billing/hold-estimate';
import { reconcile } from '../../src/billing/reconcile';
import { AppContext, requestId } from '../helpers/app-context';

const MODEL = { id: 'deepseek-v4-flash', inputPriceMicros: 270_000, outputPriceMicros: 1_100_000 };

const served = (costMicros: number): HoldOutcome => ({
  status: 200,
  errorCode: null,
  provider: 'deepseek',
  promptTokens: 100,
  completionTokens: 50,
  costMicros,
  usageSource: 'provider',
  stream: false,
  latencyMs: 42,
  createdAt: Date.now() - 42,
});

/** BillingService.withLedger: the Stripe money movements against the real PostgreSQL. */
describe('Stripe ledger postings (PostgreSQL)', () => {
  let ctx: AppContext;
  let billing: BillingService;

  beforeAll(async () => {
    ctx = await AppContext.start();
    billing = ctx.get(BillingService);
  });
  afterAll(() => ctx?.close());

  it('a refund debit may take the balance below zero without breaking a hold in flight, which still settles', async () => {
    const ids = await ctx.workspaceWithKey(1_000_000, { budget_micros: 1_000_000 });
    const hold = await billing.reserve({
      requestId: requestId('refund'),
      workspaceId: ids.workspaceId,
      keyId: ids.keyId,
      keyHasBudget: true,
      model: MODEL,
      promptTokens: 1_000,
      completionTokens: 500,
    });
    const held = holdEstimate(1_000, 500, MODEL).amountMicros;

    const result = await billing.withLedger((_tx, ledger) =>
      ledger.post({
        workspaceId: ids.workspaceId,
        kind: 'refund',
        amountMicros: -5_000_000,
        reference: 'stripe:refund:re_hold',
        reason: null,
      }),
    );
    expect(result.outcome).toBe('applied');
    expect(await ctx.money(ids.workspaceId, ids.keyId)).toMatchObject({ balance: -4_000_000, wsHeld: held });

    expect(await hold.settle(served(500))).toEqual({ ok: true, chargedMicros: 500 });
    expect(await ctx.money(ids.workspaceId, ids.keyId)).toMatchObject({ balance: -4_000_500, wsHeld: 0, spent: 500 });
    expect(await reconcile(ctx.db)).toEqual([]);
  });

  it('a repeated reference changes nothing, and the balance never leaves ±2^53', async () => {
    const ids = await ctx.workspaceWithKey(1_000_000);
    const post = (amountMicros: number, reference: string) =>
      billing.withLedger((_tx, ledger) =>
        ledger.post({ workspaceId: ids.workspaceId, kind: 'topup', amountMicros, reference, reason: null }),
      );
    expect((await post(2_000_000, 'stripe:cs:cs_once')).outcome).toBe('applied');
    expect((await post(2_000_000, 'stripe:cs:cs_once')).outcome).toBe('duplicate_reference');
    await ctx.db.query('UPDATE workspaces SET balance_micros = $2 WHERE id = $1', [ids.workspaceId, Number.MAX_SAFE_INTEGER - 10]);
    expect((await post(1_000_000, 'stripe:cs:cs_over')).outcome).toBe('out_of_range');
    await ctx.db.query('UPDATE workspaces SET balance_micros = $2 WHERE id = $1', [ids.workspaceId, 3_000_000]);
    expect((await ctx.money(ids.workspaceId, ids.keyId)).balance).toBe(3_000_000);
    expect(await reconcile(ctx.db)).toEqual([]);
  });
});
