import { Logger } from '@nestjs/common';
import { Queue } from 'bullmq';
import Redis from 'ioredis';
import { randomUUID } from 'node:crypto';
import type { Response } from 'supertest';
import { CatalogService } from '../../src/catalog/catalog.service';
import { STARTER_PROVIDERS } from '../../src/catalog/starter-catalog';
import { UpstreamClient } from '../../src/chat/upstream/upstream.client';
import { REDIS_URL } from '../helpers/databases';
import { completion, FakeProvider, FakeReply, ReceivedRequest, sleep, streamEvents } from '../helpers/fake-provider';
import { ADMIN_TOKEN, TestGateway } from '../helpers/gateway';
import { closeAll, startWithFakeProvider } from '../helpers/setup';
import { waitFor } from '../helpers/wait';

/**
 * Issue 6: what providers and operators could do wrong through the gateway. Provider errors
 * never show our provider key or URL; a key never follows a changed base URL; the queue
 * dashboard refuses cross-site changes; a provider's pool is bounded and says so with 503;
 * provider settings; money stays within the exact JSON integers.
 */

const PROVIDER_KEY = 'sk-provider-secret-issue6-0123456789';
const MAX_SAFE = Number.MAX_SAFE_INTEGER;
const MAX_CREDIT = 1_000_000_000_000;

function expectErrorShape(res: Response, status: number, code?: string, param?: string | null): void {
  if (res.status !== status) throw new Error(`expected HTTP ${status}, got ${res.status}: ${res.text.slice(0, 500)}`);
  expect(res.headers['x-request-id']).toMatch(/\S/);
  expect(Object.keys(res.body)).toEqual(['error']);
  expect(Object.keys(res.body.error).sort()).toEqual(['code', 'message', 'param', 'type']);
  expect(typeof res.body.error.message).toBe('string');
  if (code !== undefined) expect(res.body.error.code).toBe(code);
  if (param !== undefined) expect(res.body.error.param).toBe(param);
}

function defaultReply(req: ReceivedRequest): FakeReply {
  return req.body.stream ? { events: streamEvents(req.body.model, ['Hello', ' world']) } : { json: completion(req.body.model) };
}

describe('providers and operators (issue 6)', () => {
  let gw: TestGateway;
  let provider: FakeProvider;

  const chat = (key: string, model = 'deepseek-v4-flash', extra: Record<string, unknown> = {}) =>
    gw
      .http()
      .post('/v1/chat/completions')
      .set('authorization', `Bearer ${key}`)
      .send({ model, messages: [{ role: 'user', content: 'hi' }], ...extra });
  const providerInfo = async (id: string) => {
    const list = await gw.admin().get('/admin/providers').expect(200);
    return list.body.data.find((p: { id: string }) => p.id === id);
  };

  beforeAll(async () => {
    ({ gw, provider } = await startWithFakeProvider({
      providers: ['deepseek', 'openai', 'dashscope'],
      providerKey: PROVIDER_KEY,
      // the pool tests make a provider fail on purpose, many times: its circuit must stay closed
      gateway: { env: { CIRCUIT_BREAKER_FAILURES: '1000' } },
    }));
  });
  afterAll(() => closeAll(gw, provider));
  beforeEach(() => {
    provider.received.length = 0;
    provider.respond(defaultReply);
  });

  describe('provider error messages', () => {
    it.each([400, 404, 422])('a provider %i echoing its Authorization header and URL reaches the customer scrubbed', async (status) => {
      const { key } = await gw.workspaceWithKey();
      provider.respond((req) => ({
        status,
        json: {
          error: {
            message:
              `Invalid request to http://${req.headers.host}${req.path} (host ${req.headers.host}) ` +
              `with headers {"authorization":"${req.headers.authorization}"}; see ${provider.url}/docs`,
            type: 'invalid_request_error',
          },
        },
      }));
      const res = await chat(key);
      expectErrorShape(res, status, 'invalid_request_error');
      const { message } = res.body.error;
      expect(provider.last().headers.authorization).toBe(`Bearer ${PROVIDER_KEY}`); // the echo did carry them
      expect(res.text).not.toContain(PROVIDER_KEY);
      expect(res.text).not.toContain(provider.url);
      expect(res.text).not.toContain(new URL(provider.url).host);
      expect(res.text).not.toContain(new URL(provider.url).hostname);
      expect(message).toContain('[redacted]');
      expect(message).toMatch(/^Invalid request to \[redacted\]/); // the rest of the message survives
    });
  });

  describe('a provider key never follows a changed base URL', () => {
    let other: FakeProvider;
    beforeAll(async () => {
      other = await FakeProvider.start();
    });
    afterAll(() => closeAll(other));

    it('PUT /admin/providers with a new base_url and no api_key clears the key; the same base_url keeps it', async () => {
      const id = `moving-${randomUUID().slice(0, 8)}`;
      const secret = `sk-moving-${randomUUID()}`;
      await gw.admin().put('/admin/providers').send({ id, base_url: provider.url, api_key: secret }).expect(200);
      await gw
        .admin()
        .put('/admin/models')
        .send({
          id: `${id}/m`,
          provider: id,
          upstream_model: 'm',
          type: 'chat',
          input_price_micros: 1,
          output_price_micros: 1,
          sellable: true,
        })
        .expect(200);
      const { key } = await gw.workspaceWithKey();

      // same base URL (a trailing slash is the same URL): the key stays
      const same = await gw
        .admin()
        .put('/admin/providers')
        .send({ id, base_url: `${provider.url}/` })
        .expect(200);
      expect(same.body.has_api_key).toBe(true);

      // another host, no key: cleared, and nothing reaches the new host with the old key
      const moved = await gw.admin().put('/admin/providers').send({ id, base_url: other.url }).expect(200);
      expect(moved.body).toMatchObject({ id, base_url: other.url, has_api_key: false });
      expect(await providerInfo(id)).toMatchObject({ base_url: other.url, has_api_key: false });
      const [row] = await gw.db.query('SELECT api_key_encrypted FROM providers WHERE id = $1', [id]);
      expect(row.api_key_encrypted).toBeNull();
      await chat(key, `${id}/m`); // development: answered by the simulator, not the new host
      expect(other.received.filter((r) => String(r.headers.authorization ?? '').includes(secret))).toHaveLength(0);

      // another host with its own key in the same request: that key is used
      const otherSecret = `sk-other-${randomUUID()}`;
      await gw.admin().put('/admin/providers').send({ id, base_url: provider.url }).expect(200);
      const rekeyed = await gw.admin().put('/admin/providers').send({ id, base_url: other.url, api_key: otherSecret }).expect(200);
      expect(rekeyed.body.has_api_key).toBe(true);
      await chat(key, `${id}/m`).expect(200);
      expect(other.last().headers.authorization).toBe(`Bearer ${otherSecret}`);
    });

    it('PROVIDER_<ID>_BASE_URL changing the base URL without PROVIDER_<ID>_API_KEY clears the stored key at start, with a warning naming no secret', async () => {
      const warn = jest.spyOn(Logger.prototype, 'warn');
      let second: TestGateway | undefined;
      try {
        // openai and dashscope point at `provider` with PROVIDER_KEY (beforeAll)
        second = await TestGateway.start({
          shareWith: gw,
          env: {
            PROVIDER_OPENAI_BASE_URL: other.url, // moved, no key: cleared
            PROVIDER_DASHSCOPE_BASE_URL: `${provider.url}/`, // unchanged: kept
          },
        });
        expect(await providerInfo('openai')).toMatchObject({ base_url: other.url, has_api_key: false });
        expect(await providerInfo('dashscope')).toMatchObject({ base_url: provider.url, has_api_key: true });
        const warnings = warn.mock.calls.map((c) => String(c[0]));
        const cleared = warnings.filter((w) => w.includes('PROVIDER_OPENAI_BASE_URL'));
        expect(cleared).toHaveLength(1);
        expect(cleared[0]).toMatch(/clear/);
        for (const w of warnings) {
          expect(w).not.toContain(PROVIDER_KEY);
        }
        await second.close();
        second = undefined;

        // moved with its key: the new key is kept
        const envKey = `sk-env-${randomUUID()}`;
        second = await TestGateway.start({
          shareWith: gw,
          env: { PROVIDER_OPENAI_BASE_URL: provider.url, PROVIDER_OPENAI_API_KEY: envKey },
        });
        expect(await providerInfo('openai')).toMatchObject({ base_url: provider.url, has_api_key: true });
        const { key } = await gw.workspaceWithKey();
        await chat(key, 'gpt-4o-mini').expect(200);
        expect(provider.last().headers.authorization).toBe(`Bearer ${envKey}`);
      } finally {
        warn.mockRestore();
        await second?.close();
        await gw.useProvider('openai', provider.url, PROVIDER_KEY);
      }
    });
  });

  describe('queue dashboard', () => {
    let queue: Queue;
    let redis: Redis;
    const basic = `Basic ${Buffer.from(`admin:${ADMIN_TOKEN}`).toString('base64')}`;
    const addJob = (_name: string) => gw.http().post('/admin/queues/api/queues/usage/add');
    const jobNames = async () =>
      (await queue.getJobs(['wait', 'waiting', 'active', 'completed', 'failed', 'delayed', 'prioritized'])).map((j) => j?.name);

    beforeAll(() => {
      redis = new Redis(REDIS_URL, { maxRetriesPerRequest: null });
      queue = new Queue('usage', { connection: redis, prefix: `${gw.redisPrefix}:bull` });
    });
    afterAll(async () => {
      await queue.close();
      redis.disconnect();
    });

    it('refuses a cross-site text/plain POST authenticated by basic auth (403, no job added)', async () => {
      const forged = `forged-${randomUUID()}`;
      const attempts = [
        // a form on another site, enctype text/plain, the browser adding cached credentials
        addJob(forged)
          .set('authorization', basic)
          .set('origin', 'https://evil.example')
          .set('content-type', 'text/plain')
          .send(JSON.stringify({ name: forged, data: {} })),
        addJob(forged)
          .set('authorization', basic)
          .set('sec-fetch-site', 'cross-site')
          .set('origin', 'https://evil.example')
          .send({ name: forged, data: {} }),
        // Sec-Fetch-Site wins over an Origin that merely looks right
        addJob(forged)
          .set('authorization', basic)
          .set('sec-fetch-site', 'same-site')
          .set('origin', gw.url)
          .send({ name: forged, data: {} }),
        // nothing proves the origin
        addJob(forged)
          .set('authorization', basic)
          .set('content-type', 'text/plain')
          .send(JSON.stringify({ name: forged, data: {} })),
        addJob(forged).set('authorization', basic).set('origin', 'null').send({ name: forged, data: {} }),
      ];
      for (const attempt of attempts) expectErrorShape(await attempt, 403);
      for (const method of ['put', 'patch', 'delete'] as const) {
        const res = await gw
          .http()
          [method]('/admin/queues/api/queues/usage/pause')
          .set('authorization', basic)
          .set('origin', 'https://evil.example');
        expectErrorShape(res, 403);
      }
      await sleep(200);
      expect(await jobNames()).not.toContain(forged);
      expect(await queue.isPaused()).toBe(false);
    });

    it('the bearer token still opens every method; basic auth opens GET, and changes from the same origin', async () => {
      const byBearer = `bearer-${randomUUID()}`;
      const res = await addJob(byBearer)
        .set('authorization', `Bearer ${ADMIN_TOKEN}`)
        .set('origin', 'https://elsewhere.example')
        .send({ name: byBearer, data: {} });
      expect(res.status).toBe(200);
      expect(await jobNames()).toContain(byBearer);

      expect((await gw.http().get('/admin/queues').set('authorization', basic)).status).toBe(200);
      expect(
        (await gw.http().get('/admin/queues/api/queues').set('authorization', basic).set('origin', 'https://evil.example')).status,
      ).toBe(200);

      const sameOrigin = `same-origin-${randomUUID()}`;
      expect((await addJob(sameOrigin).set('authorization', basic).set('origin', gw.url).send({ name: sameOrigin, data: {} })).status).toBe(
        200,
      );
      const fetchMeta = `fetch-metadata-${randomUUID()}`;
      expect(
        (await addJob(fetchMeta).set('authorization', basic).set('sec-fetch-site', 'same-origin').send({ name: fetchMeta, data: {} }))
          .status,
      ).toBe(200);
      expect(await jobNames()).toEqual(expect.arrayContaining([sameOrigin, fetchMeta]));

      // a wrong password stays 401 with the basic challenge
      const wrong = await gw
        .http()
        .get('/admin/queues')
        .set('authorization', `Basic ${Buffer.from('admin:nope').toString('base64')}`);
      expectErrorShape(wrong, 401);
      expect(wrong.headers['www-authenticate']).toMatch(/^Basic /);
    });
  });

  describe('provider connection pool', () => {
    const id = 'pooled';
    const model = 'pooled/m';
    const upstream = () => gw.app.get(UpstreamClient, { strict: false });

    beforeAll(async () => {
      await gw.admin().put('/admin/providers').send({ id, base_url: provider.url, api_key: PROVIDER_KEY, max_connections: 2 }).expect(200);
      await gw
        .admin()
        .put('/admin/models')
        .send({
          id: model,
          provider: id,
          upstream_model: 'pooled-upstream',
          type: 'chat',
          input_price_micros: 1,
          output_price_micros: 1,
          sellable: true,
        })
        .expect(200);
    });

    /** A stream of `events` events `gapMs` apart, read to its end (or abandoned with `abort`). */
    function openStream(key: string) {
      const controller = new AbortController();
      const done = fetch(`${gw.baseURL}/chat/completions`, {
        method: 'POST',
        headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
        body: JSON.stringify({ model, stream: true, messages: [{ role: 'user', content: 'long story' }] }),
        signal: controller.signal,
      })
        .then(async (res) => ({ status: res.status, text: await res.text() }))
        .catch((err: Error) => ({ status: 0, text: err.name }));
      return { done, abort: () => controller.abort() };
    }
    const longStreams = (events: number, gapMs: number) =>
      provider.respond((req) =>
        req.body.stream
          ? {
              events: streamEvents(
                req.body.model,
                Array.from({ length: events }, (_, i) => ` w${i}`),
              ),
              eventGapMs: gapMs,
            }
          : { json: completion(req.body.model) },
      );

    it('max_connections is a provider setting (default 256, 1..10000)', async () => {
      expect(await providerInfo(id)).toMatchObject({ max_connections: 2, max_tokens_field: 'both' });
      expect(await providerInfo('deepseek')).toMatchObject({ max_connections: 256 });
      for (const bad of [0, 10_001, 1.5, '4', null]) {
        expectErrorShape(
          await gw.admin().put('/admin/providers').send({ id, base_url: provider.url, max_connections: bad }),
          400,
          'invalid_request_error',
          'max_connections',
        );
      }
      // omitted: unchanged
      await gw.admin().put('/admin/providers').send({ id, base_url: provider.url }).expect(200);
      expect(await providerInfo(id)).toMatchObject({ max_connections: 2, has_api_key: true });
    });

    it('with every connection held by long streams, a new request answers 503 with Retry-After within ~2 s, and works again once they end', async () => {
      const { key } = await gw.workspaceWithKey(50_000_000);
      longStreams(12, 250);
      const streams = [openStream(key), openStream(key)];
      await waitFor('both streams to reach the provider', async () => (provider.received.length >= 2 ? true : undefined), 5_000);
      expect(upstream().inFlight(id)).toBe(2);

      const started = Date.now();
      const refused = await chat(key, model);
      const waited = Date.now() - started;
      expectErrorShape(refused, 503, 'gateway_error');
      expect(refused.body.error.type).toBe('api_error');
      expect(Number(refused.headers['retry-after'])).toBeGreaterThanOrEqual(1);
      expect(refused.body.error.message).not.toContain(provider.url);
      expect(waited).toBeLessThan(2_000);
      expect(provider.received).toHaveLength(2); // never forwarded

      // other providers are not affected
      await chat(key).expect(200);

      const results = await Promise.all(streams.map((s) => s.done));
      for (const r of results) {
        expect(r.status).toBe(200);
        expect(r.text).toContain('data: [DONE]');
      }
      expect(upstream().inFlight(id)).toBe(0);
      await chat(key, model).expect(200);
      await gw.settled();
    });

    it('a waiting request gets the slot a finishing request frees', async () => {
      const { key } = await gw.workspaceWithKey(50_000_000);
      longStreams(3, 150); // ~0.5 s, well within the 1 s wait
      const streams = [openStream(key), openStream(key)];
      await waitFor('both streams to reach the provider', async () => (provider.received.length >= 2 ? true : undefined), 5_000);
      await chat(key, model).expect(200);
      await Promise.all(streams.map((s) => s.done));
      await gw.settled();
    });

    it('slots come back when clients abort, the provider errors, or cuts its stream', async () => {
      const { key } = await gw.workspaceWithKey(50_000_000);
      longStreams(200, 100);
      const streams = [openStream(key), openStream(key)];
      await waitFor('both streams to reach the provider', async () => (provider.received.length >= 2 ? true : undefined), 5_000);
      expect(upstream().inFlight(id)).toBe(2);
      for (const s of streams) s.abort();
      await Promise.all(streams.map((s) => s.done));
      await waitFor('the aborted streams to free their slots', async () => (upstream().inFlight(id) === 0 ? true : undefined), 5_000);

      provider.respond(() => ({ status: 400, json: { error: { message: 'bad' } } }));
      for (let i = 0; i < 4; i++) expectErrorShape(await chat(key, model), 400, 'invalid_request_error');
      provider.respond(() => ({ status: 500, json: { error: { message: 'down' } } }));
      for (let i = 0; i < 4; i++) expectErrorShape(await chat(key, model), 502, 'gateway_error');
      provider.respond((req) => ({ events: streamEvents(req.body.model, ['a', 'b']), cut: true }));
      for (let i = 0; i < 4; i++) await chat(key, model, { stream: true });
      await waitFor('every slot to be free', async () => (upstream().inFlight(id) === 0 ? true : undefined), 5_000);

      provider.respond(defaultReply);
      await chat(key, model).expect(200);
      expect(upstream().inFlight(id)).toBe(0);
      await gw.settled();
    });

    it('a raised max_connections takes effect at once', async () => {
      const { key } = await gw.workspaceWithKey(50_000_000);
      longStreams(12, 250);
      const streams = [openStream(key), openStream(key)];
      await waitFor('both streams to reach the provider', async () => (provider.received.length >= 2 ? true : undefined), 5_000);
      await gw.admin().put('/admin/providers').send({ id, base_url: provider.url, max_connections: 3 }).expect(200);
      await chat(key, model).expect(200);
      await Promise.all(streams.map((s) => s.done));
      await gw.admin().put('/admin/providers').send({ id, base_url: provider.url, max_connections: 2 }).expect(200);
      await gw.settled();
    });
  });

  describe('max_tokens_field', () => {
    it('is a provider setting: the starter catalog sets it per provider, PUT changes it, omitting it keeps it', async () => {
      expect(await providerInfo('deepseek')).toMatchObject({ max_tokens_field: 'max_tokens', max_connections: 256 });
      expect(await providerInfo('dashscope')).toMatchObject({ max_tokens_field: 'max_tokens' });
      for (const starter of STARTER_PROVIDERS)
        expect(await providerInfo(starter.id)).toMatchObject({ max_tokens_field: starter.maxTokensField });

      const id = `fields-${randomUUID().slice(0, 8)}`;
      const created = await gw.admin().put('/admin/providers').send({ id, base_url: provider.url }).expect(200);
      expect(created.body).toEqual({ id, base_url: provider.url, has_api_key: false, max_connections: 256, max_tokens_field: 'both' });
      for (const field of ['max_completion_tokens', 'max_tokens', 'both'] as const) {
        const res = await gw.admin().put('/admin/providers').send({ id, base_url: provider.url, max_tokens_field: field }).expect(200);
        expect(res.body.max_tokens_field).toBe(field);
      }
      await gw
        .admin()
        .put('/admin/providers')
        .send({ id, base_url: provider.url, max_tokens_field: 'max_completion_tokens', max_connections: 9 })
        .expect(200);
      await gw.admin().put('/admin/providers').send({ id, base_url: provider.url }).expect(200);
      expect(await providerInfo(id)).toMatchObject({ max_tokens_field: 'max_completion_tokens', max_connections: 9 });
      for (const bad of ['max_output_tokens', '', null, 1]) {
        expectErrorShape(
          await gw.admin().put('/admin/providers').send({ id, base_url: provider.url, max_tokens_field: bad }),
          400,
          'invalid_request_error',
          'max_tokens_field',
        );
      }
    });

    it('the hot path sees it as ResolvedProvider.maxTokensField and maxConnections', async () => {
      const { provider: resolved } = await gw.app.get(CatalogService).sellable('deepseek-v4-flash', 'chat');
      expect(resolved).toMatchObject({ id: 'deepseek', maxTokensField: 'max_tokens', maxConnections: 256 });
    });
  });

  describe('money bounds (CONTRACT §2)', () => {
    const createWorkspace = async (): Promise<string> =>
      (await gw.admin().post('/admin/workspaces').send({ name: 'bounds' }).expect(201)).body.id;
    const credit = (workspaceId: string, amount: number) =>
      gw.admin().post(`/admin/workspaces/${workspaceId}/credits`).send({ amount_micros: amount, reason: 'bounds' });

    it('one credit or correction is at most 10^12 micro-USD', async () => {
      const id = await createWorkspace();
      for (const bad of [MAX_CREDIT + 1, -MAX_CREDIT - 1, 1e15, MAX_SAFE]) {
        expectErrorShape(await credit(id, bad), 400, 'invalid_request_error', 'amount_micros');
      }
      expect((await credit(id, MAX_CREDIT).expect(201)).body.balance_after_micros).toBe(MAX_CREDIT);
      expect((await credit(id, -MAX_CREDIT).expect(201)).body.balance_after_micros).toBe(0);
      expect((await gw.admin().get(`/admin/workspaces/${id}`).expect(200)).body.balance_micros).toBe(0);
    });

    it('max-size credits that would pass 2^53 end in a clean 400, even concurrently; workspace and ledger stay exact', async () => {
      const id = await createWorkspace();
      // stands in for ~9,000 earlier max-size credits: 3.5 credits below the bound
      const start = MAX_SAFE - 3.5 * MAX_CREDIT;
      await gw.db.query('UPDATE workspaces SET balance_micros = $2 WHERE id = $1', [id, String(start)]);

      const results = await Promise.all(Array.from({ length: 12 }, () => credit(id, MAX_CREDIT)));
      const accepted = results.filter((r) => r.status === 201);
      const refused = results.filter((r) => r.status !== 201);
      expect(accepted).toHaveLength(3);
      for (const r of refused) expectErrorShape(r, 400, 'invalid_request_error', 'amount_micros');
      expect(accepted.map((r) => r.body.balance_after_micros).sort((a, b) => a - b)).toEqual([1, 2, 3].map((n) => start + n * MAX_CREDIT));

      const end = start + 3 * MAX_CREDIT;
      const ws = await gw.admin().get(`/admin/workspaces/${id}`).expect(200);
      expect(ws.body.balance_micros).toBe(end);
      expect(ws.body.available_micros).toBe(end);
      const [row] = await gw.db.query('SELECT balance_micros::text AS b FROM workspaces WHERE id = $1', [id]);
      expect(row.b).toBe(String(end)); // nothing past the bound was written
      const ledger = await gw.admin().get(`/admin/workspaces/${id}/ledger`).expect(200);
      expect(ledger.body.data).toHaveLength(3);
      expect(ledger.body.data[0].balance_after_micros).toBe(end);
      for (const e of ledger.body.data) expect(Number.isSafeInteger(e.balance_after_micros)).toBe(true);

      // one more credit is refused; a smaller one that fits and a correction still work
      expectErrorShape(await credit(id, MAX_CREDIT), 400, 'invalid_request_error', 'amount_micros');
      expect((await credit(id, MAX_SAFE - end).expect(201)).body.balance_after_micros).toBe(MAX_SAFE);
      expectErrorShape(await credit(id, 1), 400, 'invalid_request_error', 'amount_micros');
      expect((await credit(id, -MAX_CREDIT).expect(201)).body.balance_after_micros).toBe(MAX_SAFE - MAX_CREDIT);
    });

    it('a correction may not take the balance below -(2^53-1)', async () => {
      const id = await createWorkspace();
      const start = -MAX_SAFE + MAX_CREDIT / 2;
      await gw.db.query('UPDATE workspaces SET balance_micros = $2 WHERE id = $1', [id, String(start)]);
      expectErrorShape(await credit(id, -MAX_CREDIT), 400, 'invalid_request_error', 'amount_micros');
      expect((await gw.admin().get(`/admin/workspaces/${id}`).expect(200)).body.balance_micros).toBe(start);
      expect((await gw.admin().get(`/admin/workspaces/${id}/ledger`).expect(200)).body.data).toHaveLength(0);
    });

    it('an unknown workspace is still 404, not 400', async () => {
      expectErrorShape(await credit(randomUUID(), MAX_CREDIT), 404, 'not_found');
    });

    it('key budget_micros stays within 2^53-1', async () => {
      const id = await createWorkspace();
      expectErrorShape(
        await gw
          .admin()
          .post(`/admin/workspaces/${id}/keys`)
          .send({ name: 'k', budget_micros: MAX_SAFE + 1 }),
        400,
        'invalid_request_error',
        'budget_micros',
      );
      const created = await gw.admin().post(`/admin/workspaces/${id}/keys`).send({ name: 'k', budget_micros: MAX_SAFE }).expect(201);
      expect(created.body.budget_micros).toBe(MAX_SAFE);
    });

    it('values past 2^53 written by hand never turn reads into 500s', async () => {
      const { workspaceId, keyId, key } = await gw.workspaceWithKey(1_000_000);
      const huge = (2n ** 60n).toString();
      await gw.db.query('UPDATE workspaces SET balance_micros = $2 WHERE id = $1', [workspaceId, huge]);
      await gw.db.query('UPDATE api_keys SET spent_micros = $2 WHERE id = $1', [keyId, huge]);
      await gw.db.query(
        `INSERT INTO ledger_entries (workspace_id, kind, amount_micros, balance_after_micros, reference, reason) VALUES ($1, 'credit', $2, $2, $3, 'by hand')`,
        [workspaceId, huge, `test:${randomUUID()}`],
      );
      const ws = await gw.admin().get(`/admin/workspaces/${workspaceId}`).expect(200);
      expect(Number.isSafeInteger(ws.body.balance_micros)).toBe(true);
      expect(Number.isSafeInteger(ws.body.available_micros)).toBe(true);
      const ledger = await gw.admin().get(`/admin/workspaces/${workspaceId}/ledger`).expect(200);
      for (const e of ledger.body.data) {
        expect(Number.isSafeInteger(e.amount_micros)).toBe(true);
        expect(Number.isSafeInteger(e.balance_after_micros)).toBe(true);
      }
      const keys = await gw.admin().get(`/admin/workspaces/${workspaceId}/keys`).expect(200);
      expect(Number.isSafeInteger(keys.body.data[0].spent_micros)).toBe(true);
      await gw.admin().patch(`/admin/keys/${keyId}`).send({ name: 'renamed' }).expect(200);
      expect((await gw.http().get('/v1/key').set('authorization', `Bearer ${key}`)).status).toBe(200);
    });
  });
});
