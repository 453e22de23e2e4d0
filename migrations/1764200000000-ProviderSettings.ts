import { MigrationInterface, QueryRunner } from 'typeorm';

/** Per-provider connection pool size and the field that carries the completion bound. */
export class ProviderSettings1764200000000 implements MigrationInterface {
  name = 'ProviderSettings1764200000000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`
      ALTER TABLE providers
        ADD COLUMN max_connections integer NOT NULL DEFAULT 256 CHECK (max_connections BETWEEN 1 AND 10000),
        ADD COLUMN max_tokens_field text NOT NULL DEFAULT 'both' CHECK (max_tokens_field IN ('max_tokens', 'max_completion_tokens', 'both'))`);
    // the starter providers: DeepSeek and DashScope honour only max_tokens; OpenAI refuses a
    // request that sets both fields
    await q.query(`UPDATE providers SET max_tokens_field = 'max_tokens' WHERE id IN ('deepseek', 'dashscope')`);
    await q.query(`UPDATE providers SET max_tokens_field = 'max_completion_tokens' WHERE id = 'openai'`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`ALTER TABLE providers DROP COLUMN IF EXISTS max_tokens_field, DROP COLUMN IF EXISTS max_connections`);
  }
}
