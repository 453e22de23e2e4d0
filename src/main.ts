import { INestApplication, Logger } from '@nestjs/common';
import { CatalogService } from './catalog/catalog.service';
import { appLogger, createHttpApp, createWorkerContext } from './app.factory';
import { ConfigError, loadConfig } from './config/app-config';
import { migrateDatabase } from './database/prepare-database';
import { DemoWorkspaceService } from './setup/demo-workspace.service';

async function main(): Promise<void> {
  const config = loadConfig(process.env);
  Logger.overrideLogger(appLogger(config));
  const logger = new Logger('NexoRouter');
  const ran = await migrateDatabase(config).catch((err: Error & { code?: string }) => {
    throw new ConfigError(
      `Cannot prepare the database at DATABASE_URL (${redactUrl(config.databaseUrl)}): ${err.code ?? ''} ${err.message}`.trim(),
    );
  });
  if (ran.length > 0) logger.log(`Applied migrations: ${ran.join(', ')}`);

  const app = config.runsHttp ? await createHttpApp(config) : await createWorkerContext(config);
  await app.get(CatalogService).seed();
  if (config.seedDemo) {
    const demo = await app.get(DemoWorkspaceService).ensure();
    if (demo) printDemoKey(config.port, demo.key);
  }
  if (config.runsHttp) {
    await (app as INestApplication).listen(config.port);
    logger.log(`NexoRouter (${config.nodeEnv}, role ${config.role}) listening on http://localhost:${config.port}/v1 — docs at /docs`);
  } else {
    logger.log(`NexoRouter workers running (role ${config.role})`);
  }
}

function printDemoKey(port: number, key: string): void {
  const lines = [
    'A funded demo workspace ($5.000000) was created. Its API key, shown this once:',
    '',
    `    ${key}`,
    '',
    `Try it:  export NEXOROUTER_API_KEY=${key}`,
    `         curl http://localhost:${port}/v1/chat/completions -H "Authorization: Bearer $NEXOROUTER_API_KEY" \\`,
    `              -H "Content-Type: application/json" -d '{"model":"deepseek-v4-flash","messages":[{"role":"user","content":"Hello"}]}'`,
    'More keys: npm run key:create',
  ];
  process.stdout.write(`\n${lines.join('\n')}\n\n`);
}

function redactUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = '***';
    return u.toString();
  } catch {
    return '(unparseable)';
  }
}

main().catch((err: Error) => {
  // One clear line for configuration problems; a stack for anything unexpected.
  process.stderr.write(err instanceof ConfigError ? `${err.message}\n` : `NexoRouter failed to start: ${err.stack ?? err}\n`);
  process.exit(1);
});
