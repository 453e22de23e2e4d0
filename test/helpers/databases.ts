import { DataSource } from 'typeorm';
import { randomBytes } from 'node:crypto';
import { Client } from 'pg';

export const PG_ADMIN_URL = process.env.TEST_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
export const REDIS_URL = process.env.TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';

/** Every database of this test run starts with this; global teardown drops them all. */
export function runPrefix(): string {
  const run = process.env.NEXO_TEST_RUN;
  if (!run) throw new Error('NEXO_TEST_RUN is not set: run the tests through jest (global setup)');
  return run;
}

export function templateName(): string {
  return `${runPrefix()}_template`;
}

export function databaseUrl(name: string): string {
  const url = new URL(PG_ADMIN_URL);
  url.pathname = `/${name}`;
  return url.toString();
}

export async function withAdminClient<T>(fn: (client: Client) => Promise<T>): Promise<T> {
  const client = new Client({ connectionString: PG_ADMIN_URL });
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end();
  }
}

/** A fresh, migrated database copied from the run's template. */
export async function createTestDatabase(): Promise<{ name: string; url: string }> {
  const name = `${runPrefix()}_${randomBytes(4).toString('hex')}`;
  await withAdminClient((c) => c.query(`CREATE DATABASE "${name}" TEMPLATE "${templateName()}"`));
  return { name, url: databaseUrl(name) };
}

export async function dropDatabase(name: string): Promise<void> {
  await withAdminClient((c) => c.query(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`));
}

/** A migrated database of its own, opened as a plain TypeORM DataSource (for migration tests). */
export async function openTestDatabase(): Promise<{ db: DataSource; close: () => Promise<void> }> {
  const created = await createTestDatabase();
  const db = await new DataSource({ type: 'postgres', url: created.url }).initialize();
  return {
    db,
    close: async () => {
      await db.destroy();
      await dropDatabase(created.name);
    },
  };
}
