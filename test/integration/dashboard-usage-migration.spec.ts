import type { DataSource } from 'typeorm';
import { DashboardUsage1764300000100 } from '../../migrations/1764300000100-DashboardUsage';
import { UsageLogPartitions1764400000500 } from '../../migrations/1764400000500-UsageLogPartitions';
import { openTestDatabase } from '../helpers/databases';

/** Upgrading a deployment with usage already logged, and going back. */
describe('migration DashboardUsage on existing usage', () => {
  let db: DataSource;
  let close: () => Promise<void>;

  beforeAll(async () => {
    ({ db, close } = await openTestDatabase());
  });
  afterAll(() => close?.());

  it('backfills usage_daily from the logs (by UTC day), and down restores the earlier functions and tables', async () => {
    const migration = new DashboardUsage1764300000100();
    const runner = db.createQueryRunner();
    // as TypeORM runs it: in a transaction (the backfill locks usage_logs until it commits)
    const up = async () => {
      await runner.startTransaction();
      await migration.up(runner);
      await runner.commitTransaction();
    };
    // the later migration that partitions usage_logs is reverted first, and applied again at the end
    const partitions = new UsageLogPartitions1764400000500();
    const inTransaction = async (step: () => Promise<void>) => {
      await runner.startTransaction();
      await step();
      await runner.commitTransaction();
    };
    try {
      await inTransaction(() => partitions.down(runner));
      await migration.down(runner);
      const [{ id: ws }] = await runner.query(`INSERT INTO workspaces (name, balance_micros) VALUES ('old', 0) RETURNING id`);
      const [{ id: key }] = await runner.query(
        `INSERT INTO api_keys (workspace_id, name, key_hash, prefix, last_four, budget_micros) VALUES ($1, 'k', 'h', 'nxr_x', 'abcd', 100)
         RETURNING id`,
        [ws],
      );
      const log = (id: string, model: string, cost: number, at: string) =>
        runner.query(
          `INSERT INTO usage_logs (request_id, workspace_id, key_id, model, prompt_tokens, completion_tokens, cost_micros, status,
                                   latency_ms, usage_source, created_at)
           VALUES ($1, $2, $3, $4, 10, 5, $5, 200, 1, 'provider', $6)`,
          [id, ws, key, model, cost, at],
        );
      await log('r1', 'm1', 3, '2026-02-01T23:30:00+00:00');
      await log('r2', 'm1', 4, '2026-02-02T01:30:00+02:00'); // 23:30 UTC on Feb 1
      await log('r3', 'm2', 5, '2026-02-02T00:00:00Z');
      await up();
      const daily = await runner.query(
        `SELECT to_char(day, 'YYYY-MM-DD') AS day, model, requests::int, prompt_tokens::int, completion_tokens::int, cost_micros::int
           FROM usage_daily ORDER BY day, model`,
      );
      expect(daily).toEqual([
        { day: '2026-02-01', model: 'm1', requests: 2, prompt_tokens: 20, completion_tokens: 10, cost_micros: 7 },
        { day: '2026-02-02', model: 'm2', requests: 1, prompt_tokens: 10, completion_tokens: 5, cost_micros: 5 },
      ]);
      const [k] = await runner.query(`SELECT budget_period, period_spent_micros::int, last_used_at FROM api_keys WHERE id = $1`, [key]);
      expect(k).toEqual({ budget_period: null, period_spent_micros: 0, last_used_at: null });

      await migration.down(runner);
      expect(await runner.query(`SELECT to_regclass('usage_daily') AS t, to_regproc('nexo_budget_spent') AS f`)).toEqual([
        { t: null, f: null },
      ]);
      // the earlier functions work on the earlier schema
      await runner.query(`UPDATE workspaces SET balance_micros = 1000`);
      await runner.query(
        `INSERT INTO ledger_entries (workspace_id, kind, amount_micros, balance_after_micros, reference)
                          VALUES ($1, 'credit', 1000, 1000, 'seed')`,
        [ws],
      );
      const [held] = await runner.query(`SELECT * FROM nexo_place_hold('r4', $1, $2, 50, 60, 'm1')`, [ws, key]);
      expect(held.outcome).toBe('held');
      const [settled] = await runner.query(
        `SELECT * FROM nexo_settle('r4', $1, $2, 'm1', 'p', 1, 1, 40, 'provider', 200, NULL, 1, false, now())`,
        [ws, key],
      );
      expect(settled).toEqual({ applied: true, charged: '40' });
      await up();
      await inTransaction(() => partitions.up(runner));
      expect(await runner.query(`SELECT count(*)::int AS n FROM usage_logs`)).toEqual([{ n: 4 }]);
    } finally {
      await runner.release();
    }
  });
});
