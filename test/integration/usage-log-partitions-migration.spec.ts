import type { DataSource, QueryRunner } from 'typeorm';
import { UsageLogPartitions1764400000500 } from '../../migrations/1764400000500-UsageLogPartitions';
import { addUtcMonths } from '../../src/usage/usage-log-partition.repository';
import { openTestDatabase } from '../helpers/databases';

/** Partitioning the usage logs of a deployment that has some, and going back. */
describe('migration UsageLogPartitions on existing usage', () => {
  let db: DataSource;
  let close: () => Promise<void>;

  beforeAll(async () => {
    ({ db, close } = await openTestDatabase());
  });
  afterAll(() => close?.());

  // as TypeORM runs a migration: in a transaction
  const inTransaction = async (runner: QueryRunner, step: () => Promise<void>) => {
    await runner.startTransaction();
    await step();
    await runner.commitTransaction();
  };
  const columns = `id, request_id, workspace_id, key_id, model, provider, prompt_tokens, completion_tokens, cost_micros, status,
                   error_code, latency_ms, stream, usage_source, created_at, attempts`;

  it('moves every row into the partition of its month, keeps ids and one log per request, and down restores the table', async () => {
    const migration = new UsageLogPartitions1764400000500();
    const runner = db.createQueryRunner();
    try {
      await inTransaction(runner, () => migration.down(runner));
      expect(await runner.query(`SELECT relkind FROM pg_class WHERE relname = 'usage_logs'`)).toEqual([{ relkind: 'r' }]);
      const [{ id: ws }] = await runner.query(`INSERT INTO workspaces (name, balance_micros) VALUES ('old', 0) RETURNING id`);
      const [{ id: key }] = await runner.query(
        `INSERT INTO api_keys (workspace_id, name, key_hash, prefix, last_four) VALUES ($1, 'k', 'h', 'nxr_x', 'abcd') RETURNING id`,
        [ws],
      );
      const at = ['2025-03-31T23:59:59.999999Z', '2025-04-01T00:00:00Z', '2025-11-15T10:00:00+02:00', new Date().toISOString()];
      for (const [i, createdAt] of at.entries()) {
        await runner.query(
          `INSERT INTO usage_logs (request_id, workspace_id, key_id, model, provider, prompt_tokens, completion_tokens, cost_micros, status,
                                   latency_ms, usage_source, created_at, attempts)
           VALUES ($1, $2, $3, 'm', 'p', 10, 5, $4, 200, 1, 'provider', $5, $6)`,
          [`r${i}`, ws, key, 10 + i, createdAt, i === 3 ? 2 : null],
        );
      }
      const before = await runner.query(`SELECT ${columns} FROM usage_logs ORDER BY id`);

      await inTransaction(runner, () => migration.up(runner));
      expect(await runner.query(`SELECT relkind FROM pg_class WHERE relname = 'usage_logs'`)).toEqual([{ relkind: 'p' }]);
      expect(await runner.query(`SELECT ${columns} FROM usage_logs ORDER BY id`)).toEqual(before);
      const placed = await runner.query(`SELECT request_id, tableoid::regclass::text AS p FROM usage_logs ORDER BY id`);
      const month = (d: Date) => `usage_logs_${d.getUTCFullYear()}_${String(d.getUTCMonth() + 1).padStart(2, '0')}`;
      expect(placed).toEqual([
        { request_id: 'r0', p: 'usage_logs_2025_03' },
        { request_id: 'r1', p: 'usage_logs_2025_04' },
        { request_id: 'r2', p: 'usage_logs_2025_11' },
        { request_id: 'r3', p: month(new Date()) },
      ]);
      // every month from the oldest log's to two ahead, and the default partition
      const parts: Array<{ name: string }> = await runner.query(
        `SELECT c.relname AS name FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
          WHERE i.inhparent = 'usage_logs'::regclass ORDER BY 1`,
      );
      const months: string[] = [];
      for (let m = new Date(Date.UTC(2025, 2, 1)); m <= addUtcMonths(new Date(), 2); m = addUtcMonths(m, 1)) months.push(month(m));
      expect(parts.map((p) => p.name)).toEqual([...months, 'usage_logs_default']);
      const indexes: Array<{ indexname: string }> = await runner.query(
        `SELECT indexname FROM pg_indexes WHERE tablename = 'usage_logs' ORDER BY 1`,
      );
      expect(indexes.map((i) => i.indexname)).toEqual([
        'usage_logs_key_idx',
        'usage_logs_pkey',
        'usage_logs_request_idx',
        'usage_logs_workspace_idx',
      ]);

      // the new nexo_settle: ids continue after the copied ones; a request already logged is not logged again
      await runner.query(`SELECT * FROM nexo_settle('r4', $1, $2, 'm', 'p', 1, 1, 0, 'provider', 200, NULL, 1, false, now(), 1)`, [
        ws,
        key,
      ]);
      const [again] = await runner.query(
        `SELECT * FROM nexo_settle('r1', $1, $2, 'm', 'p', 1, 1, 0, 'provider', 200, NULL, 1, false, now(), 1)`,
        [ws, key],
      );
      expect(again).toEqual({ applied: false, charged: '0' });
      const ids: Array<{ request_id: string; id: string }> = await runner.query(`SELECT request_id, id FROM usage_logs ORDER BY id`);
      expect(ids.map((r) => r.request_id)).toEqual(['r0', 'r1', 'r2', 'r3', 'r4']);
      expect(Number(ids[4].id)).toBeGreaterThan(Number(ids[3].id));

      const after = await runner.query(`SELECT ${columns} FROM usage_logs ORDER BY id`);
      await inTransaction(runner, () => migration.down(runner));
      expect(await runner.query(`SELECT relkind FROM pg_class WHERE relname = 'usage_logs'`)).toEqual([{ relkind: 'r' }]);
      expect(await runner.query(`SELECT ${columns} FROM usage_logs ORDER BY id`)).toEqual(after);
      expect(await runner.query(`SELECT to_regclass('usage_log_retention') AS t, to_regproc('nexo_usage_log_partition') AS f`)).toEqual([
        { t: null, f: null },
      ]);
      // the earlier nexo_settle, on its unique request_id, works again
      const [earlier] = await runner.query(
        `SELECT * FROM nexo_settle('r4', $1, $2, 'm', 'p', 1, 1, 0, 'provider', 200, NULL, 1, false, now(), 1)`,
        [ws, key],
      );
      expect(earlier).toEqual({ applied: false, charged: '0' });
      await inTransaction(runner, () => migration.up(runner));
      expect(await runner.query(`SELECT ${columns} FROM usage_logs ORDER BY id`)).toEqual(after);
    } finally {
      await runner.release();
    }
  });
});
