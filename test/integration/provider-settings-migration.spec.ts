import type { DataSource } from 'typeorm';
import { ProviderSettings1764200000000 } from '../../migrations/1764200000000-ProviderSettings';
import { openTestDatabase } from '../helpers/databases';

/** Upgrading a deployment whose providers exist already: each starter provider gets the field it honours. */
describe('migration ProviderSettings on existing providers', () => {
  let db: DataSource;
  let close: () => Promise<void>;

  beforeAll(async () => {
    ({ db, close } = await openTestDatabase());
  });
  afterAll(() => close?.());

  it('sets max_tokens for DeepSeek and DashScope, max_completion_tokens for OpenAI, both for the rest', async () => {
    const migration = new ProviderSettings1764200000000();
    const runner = db.createQueryRunner();
    try {
      await migration.down(runner);
      for (const id of ['deepseek', 'openai', 'dashscope', 'acme']) {
        await runner.query(`INSERT INTO providers (id, base_url) VALUES ($1, 'https://example.com/v1') ON CONFLICT (id) DO NOTHING`, [id]);
      }
      await migration.up(runner);
      const rows: Array<{ id: string; max_tokens_field: string; max_connections: number }> = await runner.query(
        `SELECT id, max_tokens_field, max_connections FROM providers WHERE id IN ('deepseek', 'openai', 'dashscope', 'acme') ORDER BY id`,
      );
      expect(rows).toEqual([
        { id: 'acme', max_tokens_field: 'both', max_connections: 256 },
        { id: 'dashscope', max_tokens_field: 'max_tokens', max_connections: 256 },
        { id: 'deepseek', max_tokens_field: 'max_tokens', max_connections: 256 },
        { id: 'openai', max_tokens_field: 'max_completion_tokens', max_connections: 256 },
      ]);
    } finally {
      await runner.release();
    }
  });
});
