import type { DataSource } from 'typeorm';
import { ProviderFailover1764400000200 } from '../../migrations/1764400000200-ProviderFailover';
import { UsageLogPartitions1764400000500 } from '../../migrations/1764400000500-UsageLogPartitions';
import { openTestDatabase } from '../helpers/databases';

/** Upgrading a deployment with models and usage already there, while processes of the previous release still settle. */
describe('migration ProviderFailover', () => {
  let db: DataSource;
  let close: () => Promise<void>;

  beforeAll(async () => {
    ({ db, close } = await openTestDatabase());
  });
  afterAll(() => close?.());

  it('adds fallbacks ([]) and attempts (null before it), and settles with the old and the new arguments', async () => {
    const migration = new ProviderFailover1764400000200();
    const runner = db.createQueryRunner();
    const settle = (id: string, attempts?: number) =>
      runner.query(
        `SELECT * FROM nexo_settle($1, $2, $3, 'm', 'p', 1, 2, 0, 'provider', 200, NULL, 5, false, now()${attempts === undefined ? '' : ', $4::integer'})`,
        attempts === undefined ? [id, ws, key] : [id, ws, key, attempts],
      );
    let ws = '';
    let key = '';
    // the later migration that partitions usage_logs is reverted first (in a transaction, as
    // TypeORM runs it), and applied again at the end
    const partitions = new UsageLogPartitions1764400000500();
    const inTransaction = async (step: () => Promise<void>) => {
      await runner.startTransaction();
      await step();
      await runner.commitTransaction();
    };
    try {
      await inTransaction(() => partitions.down(runner));
      await migration.down(runner);
      [{ id: ws }] = await runner.query(`INSERT INTO workspaces (name, balance_micros) VALUES ('old', 0) RETURNING id`);
      [{ id: key }] = await runner.query(
        `INSERT INTO api_keys (workspace_id, name, key_hash, prefix, last_four) VALUES ($1, 'k', 'h-failover', 'nxr_f', 'abcd') RETURNING id`,
        [ws],
      );
      await runner.query(`INSERT INTO providers (id, base_url) VALUES ('old-p', 'https://example.com/v1') ON CONFLICT (id) DO NOTHING`);
      await runner.query(
        `INSERT INTO models (id, provider_id, upstream_model, type, input_price_micros, output_price_micros, max_output_tokens)
         VALUES ('old/m', 'old-p', 'm', 'chat', 1, 1, 10)`,
      );
      await settle('before');

      await migration.up(runner);
      const [model] = await runner.query(`SELECT fallbacks FROM models WHERE id = 'old/m'`);
      expect(model.fallbacks).toEqual([]);
      await expect(runner.query(`UPDATE models SET fallbacks = '{}'::jsonb WHERE id = 'old/m'`)).rejects.toThrow(/models_fallbacks_array/);

      await settle('old-release'); // a process of the previous release, during a rolling deploy
      await settle('new-release', 3);
      const item = (requestId: string, attempts?: number) => ({
        requestId,
        workspaceId: ws,
        keyId: key,
        model: 'm',
        provider: 'p',
        promptTokens: 1,
        completionTokens: 2,
        costMicros: 0,
        usageSource: 'provider',
        status: 200,
        errorCode: null,
        latencyMs: 5,
        stream: false,
        createdAt: Date.now(),
        ...(attempts === undefined ? {} : { attempts }),
      });
      await runner.query('SELECT * FROM nexo_settle_many($1::jsonb)', [JSON.stringify([item('batched', 2), item('queued-by-old')])]);
      const logs: Array<{ request_id: string; attempts: number | null }> = await runner.query(
        `SELECT request_id, attempts FROM usage_logs WHERE workspace_id = $1 ORDER BY request_id`,
        [ws],
      );
      expect(logs).toEqual([
        { request_id: 'batched', attempts: 2 },
        { request_id: 'before', attempts: null },
        { request_id: 'new-release', attempts: 3 },
        { request_id: 'old-release', attempts: null },
        { request_id: 'queued-by-old', attempts: null },
      ]);

      // and back: the earlier function, without the columns
      await migration.down(runner);
      await settle('after-down');
      const columns: Array<{ column_name: string }> = await runner.query(
        `SELECT column_name FROM information_schema.columns WHERE (table_name, column_name) IN (('usage_logs', 'attempts'), ('models', 'fallbacks'))`,
      );
      expect(columns).toEqual([]);
      await migration.up(runner);
      await inTransaction(() => partitions.up(runner));
    } finally {
      await runner.release();
    }
  });
});
