import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { loadConfig } from '../../src/config/app-config';
import { migrateDatabase } from '../../src/database/prepare-database';
import { databaseUrl, templateName, withAdminClient } from './databases';

/** Creates this run's template database (migrated once) and makes sure dist/ is current. */
export default async function globalSetup(): Promise<void> {
  await dropStaleRuns();
  process.env.NEXO_TEST_RUN = `nexo_test_${Date.now().toString(36)}_${randomBytes(3).toString('hex')}`;
  const template = templateName();
  await migrateDatabase(loadConfig({ NODE_ENV: 'test', DATABASE_URL: databaseUrl(template) }));
  // no connections may remain on a template
  await withAdminClient((c) =>
    c.query('SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()', [template]),
  );
  // end-to-end tests that start real gateway processes run the compiled output
  execFileSync(process.execPath, [join(__dirname, '..', '..', 'scripts', 'build-if-stale.js')], { stdio: 'inherit' });
}

/** Databases of runs that died before their teardown, started over two hours ago. */
async function dropStaleRuns(): Promise<void> {
  const cutoff = Date.now() - 2 * 60 * 60 * 1000;
  await withAdminClient(async (c) => {
    const { rows } = await c.query<{ datname: string }>("SELECT datname FROM pg_database WHERE datname LIKE 'nexo\\_test\\_%'");
    for (const { datname } of rows) {
      const started = parseInt(datname.split('_')[2] ?? '', 36);
      if (Number.isFinite(started) && started < cutoff) await c.query(`DROP DATABASE IF EXISTS "${datname}" WITH (FORCE)`);
    }
  });
}
