import { getQueueToken } from '@nestjs/bullmq';
import type { INestApplication } from '@nestjs/common';
import type { Queue } from 'bullmq';
import type { AddressInfo } from 'node:net';
import OpenAI from 'openai';
import request from 'supertest';
import { DataSource } from 'typeorm';
import { createHttpApp } from '../../src/app.factory';
import { QueueName } from '../../src/billing/settlement/settlement.constants';
import { CatalogService } from '../../src/catalog/catalog.service';
import { AppConfig, loadConfig } from '../../src/config/app-config';
import { REDIS_URL } from './databases';
import { deployment, removeDeployment } from './deployment';

export const ADMIN_TOKEN = 'test-admin-token-0123456789abcdef';

export interface GatewayOptions {
  /** Extra environment (e.g. PROVIDER_DEEPSEEK_BASE_URL). */
  env?: Record<string, string>;
  /** Share a database (and Redis prefix) with another gateway instead of creating one. */
  shareWith?: TestGateway;
  /** Listen on this port instead of a random one (e.g. to name it in PUBLIC_URL). */
  port?: number;
}

/**
 * One gateway on a random local port, with its own migrated database and Redis prefix, the
 * real AppModule, and the admin token ADMIN_TOKEN.
 */
export class TestGateway {
  app: INestApplication;
  config: AppConfig;
  url: string;
  baseURL: string;
  db: DataSource;
  databaseName: string;
  databaseUrl: string;
  redisPrefix: string;
  private ownsDatabase = true;

  static async start(options: GatewayOptions = {}): Promise<TestGateway> {
    const gw = new TestGateway();
    const d = await deployment(options.shareWith);
    gw.databaseName = d.databaseName;
    gw.databaseUrl = d.databaseUrl;
    gw.redisPrefix = d.redisPrefix;
    gw.ownsDatabase = d.owned;
    gw.config = loadConfig(gw.env(options.env));
    gw.app = await createHttpApp(gw.config);
    await gw.app.listen(options.port ?? 0, '127.0.0.1');
    const { port } = gw.app.getHttpServer().address() as AddressInfo;
    gw.url = `http://127.0.0.1:${port}`;
    gw.baseURL = `${gw.url}/v1`;
    await gw.app.get(CatalogService).seed();
    gw.db = gw.app.get(DataSource);
    return gw;
  }

  /** The environment this gateway runs with (also usable to start a child process). */
  env(extra: Record<string, string> = {}): Record<string, string> {
    return {
      NODE_ENV: 'test',
      DATABASE_URL: this.databaseUrl,
      REDIS_URL,
      REDIS_PREFIX: this.redisPrefix,
      ADMIN_TOKEN,
      // the processes of one deployment share a session secret, as an operator would set it
      JWT_SECRET: `test-session-secret-${this.databaseName}`,
      NEXO_SEED_DEMO: 'false',
      LOG_LEVEL: 'error',
      // per-request holds, which most specs watch in held_micros; the escrow lease and overdraw
      // specs (and production, by default) hold requests against leases
      ESCROW_LEASES: 'false',
      ...extra,
    };
  }

  /** supertest against the running server. */
  http() {
    return request(this.url);
  }

  /** An official OpenAI SDK client pointed at this gateway. */
  openai(apiKey: string, options: { maxRetries?: number } = {}): OpenAI {
    return new OpenAI({ apiKey, baseURL: this.baseURL, maxRetries: options.maxRetries ?? 0 });
  }

  /** Creates a workspace, credits it, and creates a key (body as POST /admin/workspaces/:id/keys). */
  async workspaceWithKey(
    creditMicros = 10_000_000,
    key: Record<string, unknown> = {},
  ): Promise<{ workspaceId: string; key: string; keyId: string }> {
    const ws = await this.http().post('/admin/workspaces').set('authorization', `Bearer ${ADMIN_TOKEN}`).send({ name: 'test' }).expect(201);
    if (creditMicros !== 0) {
      await this.http()
        .post(`/admin/workspaces/${ws.body.id}/credits`)
        .set('authorization', `Bearer ${ADMIN_TOKEN}`)
        .send({ amount_micros: creditMicros, reason: 'test credit' })
        .expect(201);
    }
    const created = await this.http()
      .post(`/admin/workspaces/${ws.body.id}/keys`)
      .set('authorization', `Bearer ${ADMIN_TOKEN}`)
      .send({ name: 'test key', ...key })
      .expect(201);
    return { workspaceId: ws.body.id, key: created.body.key, keyId: created.body.id };
  }

  admin() {
    const agent = this.http();
    const auth = (r: request.Test) => r.set('authorization', `Bearer ${ADMIN_TOKEN}`);
    return {
      get: (path: string) => auth(agent.get(path)),
      post: (path: string) => auth(agent.post(path)),
      put: (path: string) => auth(agent.put(path)),
      patch: (path: string) => auth(agent.patch(path)),
    };
  }

  /**
   * A chat request the test can abandon: `abort()` closes the client's connection and
   * resolves to what fetch then threw (an AbortError).
   */
  abandonableChat(key: string, body: Record<string, unknown>): { abort: () => Promise<unknown> } {
    const controller = new AbortController();
    const request = fetch(`${this.baseURL}/chat/completions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
      body: JSON.stringify(body),
      signal: controller.signal,
    }).catch((err: Error) => err);
    return {
      abort: () => {
        controller.abort();
        return request;
      },
    };
  }

  /** Points a seeded provider at a local fake, with a provider key. */
  async useProvider(providerId: string, baseUrl: string, apiKey = 'sk-provider-secret-key'): Promise<void> {
    await this.admin().put('/admin/providers').send({ id: providerId, base_url: baseUrl, api_key: apiKey }).expect(200);
  }

  /**
   * Waits until every settlement of this deployment's answered requests has been applied: no
   * hold open and no settlement job waiting or running (requests held against escrow leases
   * leave no hold row: their settlement job is what is left).
   */
  async settled(timeoutMs = 10_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    const queue = this.app.get<Queue>(getQueueToken(QueueName.Usage));
    for (;;) {
      const [{ holds }] = await this.db.query('SELECT count(*)::int AS holds FROM holds');
      const counts = await queue.getJobCounts('waiting', 'prioritized', 'active');
      const jobs = (counts.waiting ?? 0) + (counts.prioritized ?? 0) + (counts.active ?? 0);
      if (holds === 0 && jobs === 0) return;
      if (Date.now() > deadline) throw new Error(`${holds} holds and ${jobs} settlement jobs still open after ${timeoutMs} ms`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  async close(): Promise<void> {
    await this.app.close();
    if (this.ownsDatabase) await removeDeployment(this);
  }
}
