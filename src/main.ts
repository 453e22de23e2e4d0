import { INestApplication, INestApplicationContext, Logger } from '@nestjs/common';
import { CatalogService } from './catalog/catalog.service';
import { appLogger, createHttpApp, createWorkerContext } from './app.factory';
import { SettlementProcessor } from './billing/settlement/settlement.processor';
import { AppConfig, ConfigError, loadConfig } from './config/app-config';
import { applyHeapGrowth } from './config/heap-growth';
import { migrateDatabase } from './database/prepare-database';
import { HttpDrain } from './health/http-drain.service';
import type { AppLogger } from './logging/app-logger';
import { DemoWorkspaceService } from './setup/demo-workspace.service';

/** The least time the settlement workers get to empty the queue on shutdown, whatever the grace period left. */
const MIN_QUEUE_DRAIN_MS = 2_000;
/** Past the grace period, how long closing may still take before the process exits anyway. */
const HARD_STOP_EXTRA_MS = 15_000;

/** The process's logger once configured: flushed before a failed start exits. */
let startupLog: AppLogger | undefined;

async function main(): Promise<void> {
  const config = loadConfig(process.env);
  applyHeapGrowth(config.heapGrowthPercent);
  const appLog = appLogger(config);
  startupLog = appLog;
  Logger.overrideLogger(appLog);
  const logger = new Logger('NexoRouter');
  const ran = await migrateDatabase(config).catch((err: Error & { code?: string }) => {
    throw new ConfigError(
      `Cannot prepare the database at DATABASE_URL (${redactUrl(config.databaseUrl)}): ${err.code ?? ''} ${err.message}`.trim(),
    );
  });
  if (ran.length > 0) logger.log(`Applied migrations: ${ran.join(', ')}`);

  const app = config.runsHttp ? await createHttpApp(config, appLog) : await createWorkerContext(config, appLog);
  onShutdownSignal((signal) => shutdown(app, config, appLog, signal));
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

/** SIGTERM or SIGINT, once; a second one while shutting down exits at once. */
function onShutdownSignal(handler: (signal: NodeJS.Signals) => Promise<void>): void {
  let started = false;
  for (const signal of ['SIGTERM', 'SIGINT'] as const) {
    process.on(signal, () => {
      if (started) process.exit(1);
      started = true;
      void handler(signal);
    });
  }
}

/**
 * Graceful shutdown: readiness turns false and the server stops taking connections at once;
 * requests and streams in flight get SHUTDOWN_GRACE_MS to finish (then their connections are
 * closed); the settlement workers work off what those requests queued; then the application
 * closes (workers, queues, pools) and the process exits 0.
 */
async function shutdown(app: INestApplicationContext, config: AppConfig, appLog: AppLogger, signal: NodeJS.Signals): Promise<void> {
  const logger = new Logger('Shutdown');
  const started = Date.now();
  const hardStop = setTimeout(() => {
    logger.error(`Shutdown still not done after ${Date.now() - started} ms: exiting`);
    void appLog.flush().finally(() => process.exit(1));
  }, config.shutdownGraceMs + HARD_STOP_EXTRA_MS);
  hardStop.unref();
  let code = 0;
  try {
    logger.log(`${signal}: shutting down (grace ${config.shutdownGraceMs} ms)`);
    if (config.runsHttp) {
      const drained = await app.get(HttpDrain).drain(config.shutdownGraceMs);
      logger.log(
        `HTTP drained in ${drained.ms} ms${drained.clean ? '' : `, ${drained.forced} connections closed at the end of the grace period`}`,
      );
    }
    if (config.runsWorkers) {
      // a process that also served HTTP works off what its requests queued; a worker-only one
      // finishes the jobs in hand and leaves the rest to the other workers
      const left = config.runsHttp ? Math.max(MIN_QUEUE_DRAIN_MS, config.shutdownGraceMs - (Date.now() - started)) : 0;
      const { waiting } = await app.get(SettlementProcessor, { strict: false }).drain(left);
      if (waiting > 0) logger.warn(`${waiting} settlements left queued for the other workers`);
    }
    await app.close();
    logger.log(`Shut down in ${Date.now() - started} ms`);
  } catch (err) {
    code = 1;
    logger.error(`Shutdown failed: ${(err as Error).stack ?? String(err)}`);
  }
  await appLog.flush();
  process.exit(code);
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
  void (startupLog?.flush() ?? Promise.resolve()).finally(() => process.exit(1));
});
