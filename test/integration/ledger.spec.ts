import { BillingService } from '../../src/billing/billing.service';
import { LedgerRepository } from '../../src/billing/ledger.repository';
import { reconcile } from '../../src/billing/reconcile';
import { ApiError } from '../../src/common/errors/api-error';
import { MAX_BALANCE_MICROS, MAX_CREDIT_MICROS } from '../../src/common/money';
import { WorkspacesService } from '../../src/workspaces/workspaces.service';
import { AppContext } from '../helpers/app-context';
import { failure } from '../helpers/deployment';

/** The error a call fails with, for matching its status and code. */
describe('ledger (PostgreSQL)', () => {
  let ctx: AppContext;
  let billing: BillingService;
  let ledger: LedgerRepository;

  beforeAll(async () => {
    ctx = await AppContext.start();
    billing = ctx.get(BillingService);
    ledger = ctx.get(LedgerRepository);
  });
  afterAll(() => ctx?.close());

  const newWorkspace = async () => (await ctx.get(WorkspacesService).create({ name: 'ledger test' })).id;
  const balanceOf = async (id: string) => (await ctx.get(WorkspacesService).get(id)).balance_micros;

  it('credits and corrects with one ledger entry each, in the balance transaction', async () => {
    const ws = await newWorkspace();
    const credit = await billing.credit(ws, { amount_micros: 2_500_000, reason: 'top-up' }, undefined);
    expect(credit.created).toBe(true);
    expect(credit.entry).toMatchObject({
      workspace_id: ws,
      kind: 'credit',
      amount_micros: 2_500_000,
      balance_after_micros: 2_500_000,
      reason: 'top-up',
    });
    expect(credit.entry.reference).toMatch(new RegExp(`^admin:${ws}:`));
    const correction = await billing.credit(ws, { amount_micros: -500_000 }, undefined);
    expect(correction.entry).toMatchObject({ kind: 'correction', amount_micros: -500_000, balance_after_micros: 2_000_000, reason: null });
    expect(await balanceOf(ws)).toBe(2_000_000);

    const page = await billing.ledger(ws, 10, undefined);
    expect(page.data.map((e) => e.amount_micros)).toEqual([-500_000, 2_500_000]);
    expect(page.next_cursor).toBeNull();
    expect(await reconcile(ctx.db)).toEqual([]);
  });

  it('pages the ledger newest first with a cursor', async () => {
    const ws = await newWorkspace();
    for (const amount of [1, 2, 3, 4, 5]) await billing.credit(ws, { amount_micros: amount }, undefined);
    const first = await billing.ledger(ws, 2, undefined);
    expect(first.data.map((e) => e.amount_micros)).toEqual([5, 4]);
    const second = await billing.ledger(ws, 2, first.next_cursor!);
    expect(second.data.map((e) => e.amount_micros)).toEqual([3, 2]);
    const last = await billing.ledger(ws, 2, second.next_cursor!);
    expect(last.data.map((e) => e.amount_micros)).toEqual([1]);
    expect(last.next_cursor).toBeNull();
    expect((await failure(billing.ledger(ws, 2, 'not-a-cursor'))).status).toBe(400);
  });

  it('replays an Idempotency-Key with the first entry, refuses it with another body, and credits once under a race', async () => {
    const ws = await newWorkspace();
    const first = await billing.credit(ws, { amount_micros: 700, reason: 'once' }, 'key-1');
    const again = await billing.credit(ws, { amount_micros: 700, reason: 'once' }, 'key-1');
    expect(first.created).toBe(true);
    expect(again).toEqual({ entry: first.entry, created: false });

    const conflict = await failure(billing.credit(ws, { amount_micros: 701, reason: 'once' }, 'key-1'));
    expect(conflict.status).toBe(409);
    expect(conflict.code).toBe('idempotency_key_reused');

    const raced = await Promise.all(Array.from({ length: 8 }, () => billing.credit(ws, { amount_micros: 1_000 }, 'key-2')));
    expect(raced.filter((r) => r.created)).toHaveLength(1);
    expect(new Set(raced.map((r) => r.entry.id)).size).toBe(1);
    expect(await balanceOf(ws)).toBe(1_700);
    expect(await reconcile(ctx.db)).toEqual([]);
  });

  it('refuses a zero amount, a malformed Idempotency-Key and an unknown workspace without writing', async () => {
    const ws = await newWorkspace();
    expect((await failure(billing.credit(ws, { amount_micros: 0 }, undefined))).status).toBe(400);
    expect((await failure(billing.credit(ws, { amount_micros: 1 }, 'has space'))).status).toBe(400);
    const missing = await failure(billing.credit('00000000-0000-4000-8000-000000000000', { amount_micros: 1 }, undefined));
    expect(missing.status).toBe(404);
    expect(await ctx.db.query('SELECT 1 FROM ledger_entries WHERE workspace_id = $1', [ws])).toEqual([]);
  });

  it('keeps the balance within ±(2^53-1), even for credits that race', async () => {
    const ws = await newWorkspace();
    // walk the balance up to one credit below the bound, in the largest steps allowed
    const steps = Math.floor(MAX_BALANCE_MICROS / MAX_CREDIT_MICROS);
    await ctx.db.query('UPDATE workspaces SET balance_micros = $2 WHERE id = $1', [ws, (steps - 1) * MAX_CREDIT_MICROS]);
    await ctx.db.query(
      `INSERT INTO ledger_entries (workspace_id, kind, amount_micros, balance_after_micros, reference) VALUES ($1, 'credit', $2, $2, $3)`,
      [ws, (steps - 1) * MAX_CREDIT_MICROS, `test:${ws}`],
    );
    const results = await Promise.allSettled(
      Array.from({ length: 4 }, () => billing.credit(ws, { amount_micros: MAX_CREDIT_MICROS }, undefined)),
    );
    expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(1);
    for (const r of results.filter((r): r is PromiseRejectedResult => r.status === 'rejected')) {
      expect(r.reason).toBeInstanceOf(ApiError);
      expect((r.reason as ApiError).status).toBe(400);
      expect((r.reason as ApiError).message).toMatch(/outside the supported range .* Nothing was changed\.$/);
    }
    expect(await balanceOf(ws)).toBe(steps * MAX_CREDIT_MICROS);
    expect(await balanceOf(ws)).toBeLessThanOrEqual(MAX_BALANCE_MICROS);
    expect(await reconcile(ctx.db)).toEqual([]);
  });

  it('applies a credit under a chosen reference once (the repository names the duplicate)', async () => {
    const ws = await newWorkspace();
    const reference = `seed:test-${ws}`;
    expect(await billing.creditOnce(ws, 1_234, reference, 'seed')).toBe(true);
    expect(await billing.creditOnce(ws, 1_234, reference, 'seed')).toBe(false);
    expect(await ledger.credit({ workspaceId: ws, kind: 'credit', amountMicros: 1, reference, reason: null, requestHash: null })).toEqual({
      outcome: 'duplicate_reference',
    });
    expect(await billing.findEntry(reference)).toMatchObject({ workspace_id: ws, amount_micros: 1_234, reason: 'seed' });
    expect(await balanceOf(ws)).toBe(1_234);
  });
});
