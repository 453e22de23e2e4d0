// `npm run key:create [-- --workspace <id>] [--name <name>]`: a new API key, printed once.
import { NestFactory } from '@nestjs/core';
import { AppModule } from '../app.module';
import { ConfigError, loadConfig } from '../config/app-config';
import { migrateDatabase } from '../database/prepare-database';
import { KeysService } from '../keys/keys.service';
import { DemoWorkspaceService } from '../setup/demo-workspace.service';

function arg(name: string): string | undefined {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : undefined;
}

async function main(): Promise<void> {
  const config = loadConfig(process.env);
  await migrateDatabase(config);
  // neither an HTTP server nor queue workers: just the services
  const ctx = await NestFactory.createApplicationContext(AppModule.forRoot(config, { http: false, workers: false }), {
    logger: ['error'],
  });
  try {
    const workspaceId = arg('workspace') ?? (await ctx.get(DemoWorkspaceService).demoWorkspaceId());
    if (!workspaceId) throw new ConfigError('No --workspace given and no demo workspace exists (start the gateway once in development).');
    const created = await ctx.get(KeysService).create(workspaceId, { name: arg('name') ?? 'cli key' });
    process.stdout.write(`New API key for workspace ${workspaceId} (shown this once):\n\n    ${created.key}\n\n`);
  } finally {
    await ctx.close();
  }
}

main().catch((err: Error) => {
  process.stderr.write(err instanceof ConfigError ? `${err.message}\n` : `key:create failed: ${err.message}\n`);
  process.exit(1);
});
