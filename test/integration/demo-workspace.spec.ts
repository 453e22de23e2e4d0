import { DEMO_CREDIT_MICROS, DEMO_REFERENCE, DemoWorkspaceService } from '../../src/setup/demo-workspace.service';
import { reconcile } from '../../src/billing/reconcile';
import { AppContext } from '../helpers/app-context';

describe(`${DemoWorkspaceService.name} (PostgreSQL)`, () => {
  let ctx: AppContext;
  let other: AppContext;

  beforeAll(async () => {
    ctx = await AppContext.start();
    other = await AppContext.start({ shareWith: ctx });
  });
  afterAll(async () => {
    await other?.close();
    await ctx?.close();
  });

  it('creates one funded demo workspace through the ordinary credit, even when two processes race', async () => {
    expect(await ctx.get(DemoWorkspaceService).demoWorkspaceId()).toBeNull();
    const results = await Promise.all([ctx, other, ctx, other].map((c) => c.get(DemoWorkspaceService).ensure()));
    const created = results.filter((r) => r !== null);
    expect(created).toHaveLength(1);
    expect(created[0].key).toMatch(/^nxr_/);

    const workspaceId = await other.get(DemoWorkspaceService).demoWorkspaceId();
    expect(workspaceId).toBe(created[0].workspaceId);
    const entries = await ctx.db.query(
      'SELECT workspace_id, kind, amount_micros, balance_after_micros, reason FROM ledger_entries WHERE reference = $1',
      [DEMO_REFERENCE],
    );
    expect(entries).toEqual([
      {
        workspace_id: workspaceId,
        kind: 'credit',
        amount_micros: String(DEMO_CREDIT_MICROS),
        balance_after_micros: String(DEMO_CREDIT_MICROS),
        reason: 'development demo credit',
      },
    ]);
    // the losers took their workspaces back
    expect(await ctx.db.query(`SELECT id FROM workspaces WHERE name = 'Demo workspace'`)).toEqual([{ id: workspaceId }]);
    expect(await ctx.get(DemoWorkspaceService).ensure()).toBeNull();
    expect(await reconcile(ctx.db)).toEqual([]);
  });
});
