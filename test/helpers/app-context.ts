import type { INestApplicationContext } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { randomBytes } from 'node:crypto';
import type { Settlement } from '../../src/billing/settlement/settlement.types';
import { DataSource } from 'typeorm';
import { AppModule } from '../../src/app.module';
import { BillingService } from '../../src/billing/billing.service';
import { HoldRepository } from '../../src/billing/hold.repository';
import { CatalogService } from '../../src/catalog/catalog.service';
import { AppConfig, loadConfig } from '../../src/config/app-config';
import { KeysService } from '../../src/keys/keys.service';
import { WorkspacesService } from '../../src/workspaces/workspaces.service';
import type { ApiKeyCreateDto } from '../../src/keys/keys.dto';
import { REDIS_URL } from './databases';
import { deployment, removeDeployment } from './deployment';

export interface AppContextOptions {
  /** Run the settlement workers (processor, batcher, sweep schedule) in this context. */
  workers?: boolean;
  env?: Record<string, string>;
  /** Another process of the same deployment: its database and Redis prefix, not new ones. */
  shareWith?: AppContext;
}

/**
 * The real AppModule without HTTP, on its own migrated database and Redis prefix: services and
 * repositories are taken from `ctx.get(...)` and run against the real PostgreSQL and Redis.
 */
export class AppContext {
  app: INestApplicationContext;
  config: AppConfig;
  db: DataSource;
  databaseName: string;
  databaseUrl: string;
  redisPrefix: string;
  private ownsDatabase = true;

  static async start(options: AppContextOptions = {}): Promise<AppContext> {
    const ctx = new AppContext();
    const d = await deployment(options.shareWith);
    ctx.databaseName = d.databaseName;
    ctx.databaseUrl = d.databaseUrl;
    ctx.redisPrefix = d.redisPrefix;
    ctx.ownsDatabase = d.owned;
    ctx.config = loadConfig({
      NODE_ENV: 'test',
      DATABASE_URL: ctx.databaseUrl,
      REDIS_URL,
      REDIS_PREFIX: ctx.redisPrefix,
      NEXO_SEED_DEMO: 'false',
      LOG_LEVEL: 'error',
      // the schedule is not the tests' to race: they call the sweeper themselves
      SWEEP_INTERVAL_MS: '86400000',
      // per-request holds, as these specs watch them (test/e2e/escrow-leases covers leases)
      ESCROW_LEASES: 'false',
      ...options.env,
    });
    ctx.app = await NestFactory.createApplicationContext(
      AppModule.forRoot(ctx.config, { http: false, workers: options.workers ?? false }),
      {
        logger: ['fatal'],
      },
    );
    await ctx.app.get(CatalogService).seed();
    ctx.db = ctx.app.get(DataSource);
    return ctx;
  }

  get<T>(type: new (...args: any[]) => T): T {
    return this.app.get(type);
  }

  /** A workspace credited with `creditMicros`, and a key of it. */
  async workspaceWithKey(
    creditMicros = 10_000_000,
    key: Partial<ApiKeyCreateDto> = {},
  ): Promise<{ workspaceId: string; keyId: string; key: string }> {
    const workspace = await this.get(WorkspacesService).create({ name: 'test' });
    if (creditMicros !== 0)
      await this.get(BillingService).credit(workspace.id, { amount_micros: creditMicros, reason: 'test credit' }, undefined);
    const created = await this.get(KeysService).create(workspace.id, { name: 'test key', ...key });
    return { workspaceId: workspace.id, keyId: created.id, key: created.key };
  }

  /** A key of a workspace credited with $10, `count` open holds of `amount` on it, and a settlement at `cost` for each. */
  async openHolds(
    count: number,
    amount: number,
    cost: number,
    label = 'int',
  ): Promise<{ workspaceId: string; keyId: string; settlements: Settlement[] }> {
    const ids = await this.workspaceWithKey(10_000_000);
    const holds = this.get(HoldRepository);
    const settlements: Settlement[] = [];
    for (let i = 0; i < count; i++) {
      const id = requestId(label);
      const placed = await holds.placeHold(id, ids.workspaceId, ids.keyId, 'deepseek-v4-flash', amount, 900);
      if (placed.outcome !== 'held') throw new Error(`hold ${id} not placed: ${placed.outcome}`);
      settlements.push(settlement(ids, id, cost));
    }
    return { workspaceId: ids.workspaceId, keyId: ids.keyId, settlements };
  }

  /** Balance and holds of a workspace, spending and holds of one of its keys. */
  async money(workspaceId: string, keyId: string): Promise<{ balance: number; wsHeld: number; spent: number; keyHeld: number }> {
    const [ws] = await this.db.query('SELECT balance_micros, held_micros FROM workspaces WHERE id = $1', [workspaceId]);
    const [k] = await this.db.query('SELECT spent_micros, held_micros FROM api_keys WHERE id = $1', [keyId]);
    return {
      balance: Number(ws.balance_micros),
      wsHeld: Number(ws.held_micros),
      spent: Number(k.spent_micros),
      keyHeld: Number(k.held_micros),
    };
  }

  async close(): Promise<void> {
    await this.app.close();
    if (this.ownsDatabase) await removeDeployment(this);
  }
}

/** A request id of the gateway's shape, unique per call. */
export function requestId(label = 'int'): string {
  return `req_${label}_${randomBytes(8).toString('hex')}`;
}

/** A settlement of `requestId` at `costMicros` (capped at its hold by nexo_settle). */
export function settlement(
  ids: { workspaceId: string; keyId: string },
  id: string,
  costMicros: number,
  extra: Partial<Settlement> = {},
): Settlement {
  return {
    requestId: id,
    workspaceId: ids.workspaceId,
    keyId: ids.keyId,
    model: 'deepseek-v4-flash',
    provider: 'deepseek',
    promptTokens: 10,
    completionTokens: 20,
    costMicros,
    usageSource: 'provider',
    status: 200,
    errorCode: null,
    latencyMs: 5,
    stream: false,
    createdAt: Date.now(),
    ...extra,
  };
}
