import { withAdminClient } from './databases';

export default async function globalTeardown(): Promise<void> {
  const run = process.env.NEXO_TEST_RUN;
  if (!run) return;
  await withAdminClient(async (c) => {
    const { rows } = await c.query<{ datname: string }>('SELECT datname FROM pg_database WHERE datname LIKE $1', [`${run}%`]);
    for (const { datname } of rows) await c.query(`DROP DATABASE IF EXISTS "${datname}" WITH (FORCE)`);
  });
}
