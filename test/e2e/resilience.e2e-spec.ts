import { getQueueToken } from '@nestjs/bullmq';
import { Queue, UnrecoverableError, Worker } from 'bullmq';
import Redis from 'ioredis';
import { createServer, connect, Server, Socket } from 'node:net';
import type { AddressInfo } from 'node:net';
import { HoldSweeper } from '../../src/billing/settlement/hold-sweeper.service';
import { QueueName } from '../../src/billing/settlement/settlement.constants';
import { ChildGateway, expectNoDrift, killChild, killChildGateways, startChildGateway } from '../helpers/child-gateway';
import { REDIS_URL, withAdminClient } from '../helpers/databases';
import { completion, FakeProvider, streamEvents } from '../helpers/fake-provider';
import { GatewayOptions, TestGateway } from '../helpers/gateway';
import { chargesOf, costAt, money, usageLogsOf } from '../helpers/ledger';
import { startGatewayUsing } from '../helpers/setup';
import { waitFor } from '../helpers/wait';

const MODEL = 'deepseek-v4-flash';

const cost = costAt(270_000, 1_100_000);

/** A TCP proxy that can be cut: every socket destroyed, nothing listening. */
class TcpProxy {
  port = 0;
  private server: Server | null = null;
  private readonly sockets = new Set<Socket>();

  constructor(private readonly target: { host: string; port: number }) {}

  async start(port = this.port): Promise<void> {
    const server = createServer((client) => {
      const upstream = connect(this.target.port, this.target.host);
      for (const [a, b] of [
        [client, upstream],
        [upstream, client],
      ]) {
        this.sockets.add(a);
        a.on('error', () => b.destroy());
        a.on('close', () => {
          this.sockets.delete(a);
          b.destroy();
        });
        a.pipe(b);
      }
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, '127.0.0.1', () => resolve());
    });
    this.server = server;
    this.port = (server.address() as AddressInfo).port;
  }

  async stop(): Promise<void> {
    const server = this.server;
    this.server = null;
    if (!server) return;
    const closed = new Promise<void>((resolve) => server.close(() => resolve()));
    for (const socket of this.sockets) socket.destroy();
    await closed;
  }
}

const chat = (gw: TestGateway, key: string, body: Record<string, unknown> = {}) =>
  gw
    .http()
    .post('/v1/chat/completions')
    .set('authorization', `Bearer ${key}`)
    .send({ model: MODEL, messages: [{ role: 'user', content: 'hello' }], max_tokens: 100, ...body });

// Sweeps in these tests are run by the test itself, never by the schedule.
const NO_SCHEDULED_SWEEP = { SWEEP_INTERVAL_MS: '3600000' };

describe('resilience (end to end)', () => {
  let provider: FakeProvider;

  beforeAll(async () => {
    provider = await FakeProvider.start();
  });
  beforeEach(() => {
    provider.received.length = 0;
    provider.respond((req) => ({ json: completion(req.body.model) }));
  });
  afterAll(async () => {
    await killChildGateways();
    await provider?.close();
  });

  /** A gateway (its own database) whose deepseek provider is the fake one. */
  const gatewayOnFake = (gateway: GatewayOptions) => startGatewayUsing(provider, { providers: 'deepseek', gateway });

  it('settles synchronously in PostgreSQL when Redis cannot take the settlement job', async () => {
    const redis = new URL(REDIS_URL);
    const proxy = new TcpProxy({ host: redis.hostname, port: Number(redis.port || 6379) });
    await proxy.start();
    let gw: TestGateway | undefined;
    let quiet: jest.SpyInstance | undefined;
    try {
      gw = await gatewayOnFake({ env: { REDIS_URL: `redis://127.0.0.1:${proxy.port}`, ...NO_SCHEDULED_SWEEP } });
      const credit = 1_000_000;
      const { workspaceId, key, keyId } = await gw.workspaceWithKey(credit);
      const perRequest = cost(12, 34);

      // through the queue while Redis is there
      await chat(gw, key).expect(200);
      await gw.settled();

      // BullMQ reports every failed reconnect on the console while Redis is away
      quiet = jest.spyOn(console, 'error').mockImplementation(() => undefined);
      await proxy.stop();
      const res = await chat(gw, key).expect(200);
      const requestId = res.headers['x-request-id'];
      expect(res.headers['x-nexo-cost-micros']).toBe(String(perRequest));
      // already in PostgreSQL when the client has its answer: no waiting
      expect(await chargesOf(gw, requestId)).toEqual([perRequest]);
      const logs = await usageLogsOf(gw, requestId);
      expect(logs).toHaveLength(1);
      expect(logs[0]).toMatchObject({ status: 200, usage_source: 'provider', prompt_tokens: 12, completion_tokens: 34 });
      expect(Number(logs[0].cost_micros)).toBe(perRequest);
      expect(await gw.db.query('SELECT 1 FROM holds WHERE request_id = $1', [requestId])).toEqual([]);
      expect(await money(gw, workspaceId, keyId)).toEqual({
        balance: credit - 2 * perRequest,
        wsHeld: 0,
        spent: 2 * perRequest,
        keyHeld: 0,
      });
      await expectNoDrift(gw);

      // Redis comes back: a settlement job that reaches it late changes nothing
      await proxy.start();
      const live = gw;
      await waitFor('the gateway to see Redis again', async () => {
        const ready = await live.http().get('/health/ready');
        return ready.status === 200 ? true : undefined;
      });
      const queue = gw.app.get<Queue>(getQueueToken(QueueName.Usage));
      await waitFor('any late settlement job to finish', async () => {
        const job = await queue.getJob(requestId);
        if (!job) return true;
        const state = await job.getState();
        return state === 'completed' || state === 'failed' ? true : undefined;
      });
      const after = await chat(gw, key).expect(200);
      await gw.settled();
      expect(await chargesOf(gw, requestId)).toEqual([perRequest]);
      expect(await chargesOf(gw, after.headers['x-request-id'])).toEqual([perRequest]);
      expect(await money(gw, workspaceId, keyId)).toEqual({
        balance: credit - 3 * perRequest,
        wsHeld: 0,
        spent: 3 * perRequest,
        keyHeld: 0,
      });
      await expectNoDrift(gw);
    } finally {
      await proxy.start().catch(() => undefined); // let the gateway shut down cleanly
      await gw?.close();
      await proxy.stop();
      quiet?.mockRestore();
    }
  });

  it('releases the hold of a gateway process killed between placing it and settling', async () => {
    const gw = await gatewayOnFake({ env: { NEXO_ROLE: 'api', ...NO_SCHEDULED_SWEEP } });
    let child: ChildGateway | undefined;
    try {
      const credit = 1_000_000;
      const { workspaceId, key, keyId } = await gw.workspaceWithKey(credit);
      provider.respond((req) => ({ json: completion(req.body.model), delayMs: 5_000 }));

      child = await startChildGateway(gw.env({ NEXO_ROLE: 'api', HOLD_TTL_SECONDS: '1' }));
      const pending = fetch(`${child.url}/v1/chat/completions`, {
        method: 'POST',
        headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
        body: JSON.stringify({ model: MODEL, messages: [{ role: 'user', content: 'slow' }], max_tokens: 100 }),
      }).then(
        (r) => r.status,
        () => 'connection lost',
      );
      const hold = await waitFor('the hold to be placed', async () => {
        const rows = await gw.db.query('SELECT request_id, amount_micros FROM holds WHERE workspace_id = $1', [workspaceId]);
        return rows.length === 1 ? rows[0] : undefined;
      });
      await waitFor('the provider to receive the request', async () => (provider.received.length === 1 ? true : undefined));
      const held = await money(gw, workspaceId, keyId);
      expect(held.wsHeld).toBe(Number(hold.amount_micros));
      expect(held.keyHeld).toBe(Number(hold.amount_micros));

      await killChild(child.proc);
      expect(await pending).toBe('connection lost');

      await waitFor('the hold to expire', async () => {
        const [row] = await gw.db.query('SELECT count(*)::int AS n FROM holds WHERE request_id = $1 AND expires_at < now()', [
          hold.request_id,
        ]);
        return row.n === 1 ? true : undefined;
      });
      const result = await gw.app.get(HoldSweeper).sweep();
      expect(result).toEqual({ released: 1, settledFromFailedJobs: 0, leasesClosed: 0, skipped: 0, errors: 0 });

      expect(await gw.db.query('SELECT 1 FROM holds')).toEqual([]);
      expect(await money(gw, workspaceId, keyId)).toEqual({ balance: credit, wsHeld: 0, spent: 0, keyHeld: 0 });
      const logs = await usageLogsOf(gw, hold.request_id);
      expect(logs).toHaveLength(1);
      // the sweeper cannot know what the client got: no status is invented
      expect(logs[0]).toMatchObject({ status: null, error_code: 'outcome_unknown', key_id: keyId, model: MODEL });
      expect(Number(logs[0].cost_micros)).toBe(0);
      expect(await chargesOf(gw, hold.request_id)).toEqual([]);
      await expectNoDrift(gw);
    } finally {
      if (child) await killChild(child.proc);
      await gw.close();
    }
  });

  it('leaves an expired hold whose settlement job is still queued to that job, which charges once', async () => {
    // an API-only gateway: settlement jobs wait in Redis, no worker takes them
    const api = await gatewayOnFake({ env: { NEXO_ROLE: 'api', ...NO_SCHEDULED_SWEEP } });
    let worker: TestGateway | undefined;
    try {
      const credit = 1_000_000;
      const { workspaceId, key, keyId } = await api.workspaceWithKey(credit);
      const res = await chat(api, key).expect(200);
      const requestId = res.headers['x-request-id'];
      const perRequest = cost(12, 34);

      const queue = api.app.get<Queue>(getQueueToken(QueueName.Usage));
      const job = await queue.getJob(requestId);
      expect(job?.data).toMatchObject({ requestId, costMicros: perRequest });
      expect(await job!.getState()).toBe('waiting');
      const [hold] = await api.db.query('SELECT amount_micros FROM holds WHERE request_id = $1', [requestId]);
      expect(hold).toBeDefined();

      await api.db.query(`UPDATE holds SET expires_at = now() - interval '1 minute' WHERE request_id = $1`, [requestId]);
      expect(await api.app.get(HoldSweeper).sweep()).toEqual({
        released: 0,
        settledFromFailedJobs: 0,
        leasesClosed: 0,
        skipped: 1,
        errors: 0,
      });
      expect(await api.db.query('SELECT 1 FROM holds WHERE request_id = $1', [requestId])).toHaveLength(1);
      expect(await usageLogsOf(api, requestId)).toEqual([]);
      expect(await money(api, workspaceId, keyId)).toEqual({
        balance: credit,
        wsHeld: Number(hold.amount_micros),
        spent: 0,
        keyHeld: Number(hold.amount_micros),
      });

      // a worker comes up and settles it
      worker = await TestGateway.start({ shareWith: api, env: NO_SCHEDULED_SWEEP });
      await api.settled();
      expect(await chargesOf(api, requestId)).toEqual([perRequest]);
      const logs = await usageLogsOf(api, requestId);
      expect(logs).toHaveLength(1);
      expect(logs[0]).toMatchObject({ status: 200, error_code: null, usage_source: 'provider' });
      expect(Number(logs[0].cost_micros)).toBe(perRequest);
      expect(await money(api, workspaceId, keyId)).toEqual({ balance: credit - perRequest, wsHeld: 0, spent: perRequest, keyHeld: 0 });
      expect(await api.app.get(HoldSweeper).sweep()).toEqual({
        released: 0,
        settledFromFailedJobs: 0,
        leasesClosed: 0,
        skipped: 0,
        errors: 0,
      });
      expect(await chargesOf(api, requestId)).toEqual([perRequest]);
      await expectNoDrift(api);
    } finally {
      await worker?.close();
      await api.close();
    }
  });

  it('settles an expired hold whose settlement job failed for good from the job data, once', async () => {
    const api = await gatewayOnFake({ env: { NEXO_ROLE: 'api', ...NO_SCHEDULED_SWEEP } });
    const connection = new Redis(REDIS_URL, { maxRetriesPerRequest: null });
    // stands in for a worker that gave up on the job (its retries exhausted)
    const giveUp = new Worker(QueueName.Usage, null, { connection, prefix: `${api.redisPrefix}:bull`, autorun: false });
    try {
      const credit = 1_000_000;
      const { workspaceId, key, keyId } = await api.workspaceWithKey(credit);
      const res = await chat(api, key).expect(200);
      const requestId = res.headers['x-request-id'];
      const perRequest = cost(12, 34);

      const token = 'resilience-test';
      const job = await giveUp.getNextJob(token, { block: false });
      expect(job?.id).toBe(requestId);
      await job.moveToFailed(new UnrecoverableError('settlement kept failing'), token, false);
      const queue = api.app.get<Queue>(getQueueToken(QueueName.Usage));
      expect(await (await queue.getJob(requestId))!.getState()).toBe('failed');
      expect(await chargesOf(api, requestId)).toEqual([]);

      await api.db.query(`UPDATE holds SET expires_at = now() - interval '1 minute' WHERE request_id = $1`, [requestId]);
      const sweeper = api.app.get(HoldSweeper);
      expect(await sweeper.sweep()).toEqual({ released: 0, settledFromFailedJobs: 1, leasesClosed: 0, skipped: 0, errors: 0 });
      expect(await sweeper.sweep()).toEqual({ released: 0, settledFromFailedJobs: 0, leasesClosed: 0, skipped: 0, errors: 0 });

      expect(await chargesOf(api, requestId)).toEqual([perRequest]);
      const logs = await usageLogsOf(api, requestId);
      expect(logs).toHaveLength(1);
      expect(logs[0]).toMatchObject({ status: 200, usage_source: 'provider', prompt_tokens: 12, completion_tokens: 34 });
      expect(await money(api, workspaceId, keyId)).toEqual({ balance: credit - perRequest, wsHeld: 0, spent: perRequest, keyHeld: 0 });
      await expectNoDrift(api);
    } finally {
      await giveUp.close();
      connection.disconnect();
      await api.close();
    }
  });

  it('keeps the hold of a request that is still streaming past the hold TTL, and charges it', async () => {
    const gw = await gatewayOnFake({ env: { HOLD_TTL_SECONDS: '1', ...NO_SCHEDULED_SWEEP } });
    try {
      const credit = 1_000_000;
      const { workspaceId, key, keyId } = await gw.workspaceWithKey(credit);
      const words = Array.from({ length: 12 }, (_, i) => ` word${i}`);
      const usage = { prompt_tokens: 9, completion_tokens: 24, total_tokens: 33 };
      provider.respond((req) => ({ events: streamEvents(req.body.model, words, usage), eventGapMs: 250 }));

      const { data: stream, response } = await gw
        .openai(key)
        .chat.completions.create({ model: MODEL, messages: [{ role: 'user', content: 'a slow story' }], max_tokens: 100, stream: true })
        .withResponse();
      const requestId = response.headers.get('x-request-id')!;
      const iterator = stream[Symbol.asyncIterator]();
      let text = '';
      const first = await iterator.next();
      text += first.value?.choices[0]?.delta?.content ?? '';

      // the stream outlives the TTL its hold was placed with: a sweep must not take its money away
      await waitFor('the hold TTL to pass while the stream is running', async () => {
        const [row] = await gw.db.query(`SELECT now() > created_at + interval '1.5 seconds' AS past FROM holds WHERE request_id = $1`, [
          requestId,
        ]);
        return row?.past === true ? true : undefined;
      });
      const swept = await gw.app.get(HoldSweeper).sweep();
      expect(swept).toEqual({ released: 0, settledFromFailedJobs: 0, leasesClosed: 0, skipped: 0, errors: 0 });
      expect(await gw.db.query('SELECT 1 FROM holds WHERE request_id = $1', [requestId])).toHaveLength(1);

      for (let next = await iterator.next(); !next.done; next = await iterator.next()) text += next.value.choices[0]?.delta?.content ?? '';
      expect(text).toBe(words.join(''));
      await gw.settled();
      const expected = cost(9, 24);
      expect(await chargesOf(gw, requestId)).toEqual([expected]);
      const logs = await usageLogsOf(gw, requestId);
      expect(logs).toHaveLength(1);
      expect(logs[0]).toMatchObject({ status: 200, error_code: null, usage_source: 'provider' });
      expect(await money(gw, workspaceId, keyId)).toEqual({ balance: credit - expected, wsHeld: 0, spent: expected, keyHeld: 0 });
      await expectNoDrift(gw);
    } finally {
      await gw.close();
    }
  });

  it('fails closed when the hold store is unreachable: 503, nothing sent to the provider', async () => {
    const gw = await gatewayOnFake({ env: NO_SCHEDULED_SWEEP });
    let blocked = false;
    const allowConnections = (allow: boolean) =>
      withAdminClient(async (c) => {
        await c.query(`ALTER DATABASE "${gw.databaseName}" ALLOW_CONNECTIONS ${allow}`);
        if (!allow) await c.query('SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1', [gw.databaseName]);
      });
    try {
      const credit = 1_000_000;
      const { workspaceId, key, keyId } = await gw.workspaceWithKey(credit);
      await chat(gw, key).expect(200); // key and catalog are now cached in the process
      await gw.settled();
      provider.received.length = 0;

      blocked = true;
      await allowConnections(false);
      const res = await chat(gw, key);
      expect(res.status).toBe(503);
      expect(res.body.error.code).toBe('gateway_error');
      expect(res.body.error.message).not.toMatch(/postgres|127\.0\.0\.1|password/i);
      expect(provider.received).toHaveLength(0);
      const refusedId = res.headers['x-request-id'];

      await allowConnections(true);
      blocked = false;
      const live = gw;
      await waitFor('the gateway to reach PostgreSQL again', async () => {
        const r = await chat(live, key);
        return r.status === 200 ? true : undefined;
      });
      await gw.settled();
      expect(provider.received).toHaveLength(1);
      expect(await chargesOf(gw, refusedId)).toEqual([]);
      const m = await money(gw, workspaceId, keyId);
      expect(m).toEqual({ balance: credit - 2 * cost(12, 34), wsHeld: 0, spent: 2 * cost(12, 34), keyHeld: 0 });
      await expectNoDrift(gw);
    } finally {
      if (blocked) await allowConnections(true).catch(() => undefined);
      await gw.close();
    }
  });
});
