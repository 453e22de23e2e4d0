import { connect, createServer, Server, Socket } from 'node:net';
import type { AddressInfo } from 'node:net';
import zlib from 'node:zlib';
import type { Response } from 'supertest';
import { generateApiKey } from '../../src/keys/api-key-format';
import type { AuthenticatedKey } from '../../src/keys/key-cache';
import { RateLimiter } from '../../src/ratelimit/rate-limiter.service';
import { RedisService } from '../../src/redis/redis.service';
import { REDIS_URL } from '../helpers/databases';
import { FakeProvider, sleep } from '../helpers/fake-provider';
import { TestGateway } from '../helpers/gateway';
import { closeAll, startWithFakeProvider } from '../helpers/setup';

/**
 * Hostile or malformed input: message shapes per role, deep JSON, NUL characters, bodies read
 * only after authentication, forged keys, key changes across processes, a frozen Redis.
 */

const CHAT = 'deepseek-v4-flash';
type Body = Record<string, unknown>;

const chatBody = (extra: Body = {}): Body => ({ model: CHAT, messages: [{ role: 'user', content: 'hello' }], ...extra });
const nested = (depth: number) => '['.repeat(depth) + ']'.repeat(depth);

function expectError(res: Response, status: number, code: string, param?: string | null): void {
  if (res.status !== status) throw new Error(`expected HTTP ${status}, got ${res.status}: ${res.text.slice(0, 300)}`);
  expect(res.headers['content-type']).toMatch(/application\/json/);
  expect(Object.keys(res.body)).toEqual(['error']);
  expect(Object.keys(res.body.error).sort()).toEqual(['code', 'message', 'param', 'type']);
  expect(res.body.error.code).toBe(code);
  if (param !== undefined) expect(res.body.error.param).toBe(param);
}

/** Polls until `check` holds; returns the milliseconds it took, or throws after `timeoutMs`. */
async function within(timeoutMs: number, check: () => Promise<boolean>): Promise<number> {
  const started = Date.now();
  for (;;) {
    if (await check()) return Date.now() - started;
    if (Date.now() - started > timeoutMs) throw new Error(`condition not met within ${timeoutMs} ms`);
    await sleep(10);
  }
}

/** A TCP proxy to Redis that can be frozen (connections stay open, nothing passes) or cut. */
class RedisProxy {
  port = 0;
  private server: Server | null = null;
  private readonly pairs = new Set<[Socket, Socket]>();
  private frozen = false;

  async start(): Promise<void> {
    const target = new URL(REDIS_URL);
    const server = createServer((client) => {
      const upstream = connect(Number(target.port || 6379), target.hostname);
      const pair: [Socket, Socket] = [client, upstream];
      this.pairs.add(pair);
      for (const [a, b] of [pair, [upstream, client]]) {
        a.on('error', () => b.destroy());
        a.on('close', () => {
          this.pairs.delete(pair);
          b.destroy();
        });
      }
      if (!this.frozen) this.flow(pair);
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.port, '127.0.0.1', () => resolve());
    });
    this.server = server;
    this.port = (server.address() as AddressInfo).port;
  }

  /** Nothing passes any more, in either direction; the connections stay open. */
  freeze(): void {
    this.frozen = true;
    for (const [a, b] of this.pairs) {
      a.unpipe(b);
      b.unpipe(a);
      a.pause();
      b.pause();
    }
  }

  thaw(): void {
    this.frozen = false;
    for (const pair of this.pairs) this.flow(pair);
  }

  /** Every connection destroyed, nothing listening. */
  async stop(): Promise<void> {
    const server = this.server;
    this.server = null;
    if (!server) return;
    const closed = new Promise<void>((resolve) => server.close(() => resolve()));
    for (const [a, b] of this.pairs) {
      a.destroy();
      b.destroy();
    }
    await closed;
  }

  private flow([a, b]: [Socket, Socket]): void {
    a.pipe(b);
    b.pipe(a);
  }
}

describe('input hardening', () => {
  let gw: TestGateway;
  let provider: FakeProvider;
  let key: string;
  let workspaceId: string;

  const chat = (apiKey: string | null, body: Body | string | Buffer, target = gw) => {
    const req = target.http().post('/v1/chat/completions').set('content-type', 'application/json');
    if (apiKey !== null) req.set('authorization', `Bearer ${apiKey}`);
    return req.send(typeof body === 'string' || Buffer.isBuffer(body) ? body : JSON.stringify(body));
  };

  beforeAll(async () => {
    ({ gw, provider } = await startWithFakeProvider({ providers: ['deepseek', 'openai'] }));
    ({ key, workspaceId } = await gw.workspaceWithKey());
  });
  afterAll(() => closeAll(gw, provider));
  beforeEach(() => {
    provider.received.length = 0;
  });

  describe('messages are checked per role, as OpenAI does', () => {
    it.each([
      ['object content', 'messages[0].content', [{ role: 'user', content: { text: 'hi' } }]],
      ['a user message without content', 'messages[0].content', [{ role: 'user' }]],
      [
        'an assistant message without content or tool calls',
        'messages[1].content',
        [{ role: 'user', content: 'hi' }, { role: 'assistant' }],
      ],
      ['a tool message without tool_call_id', 'messages[0].tool_call_id', [{ role: 'tool', content: 'sunny' }]],
      [
        'an image part without a url',
        'messages[0].content',
        [{ role: 'user', content: [{ type: 'image_url', image_url: { detail: 'low' } }] }],
      ],
      [
        'an image part in a system message',
        'messages[0].content',
        [{ role: 'system', content: [{ type: 'image_url', image_url: { url: 'https://x/y.png' } }] }],
      ],
    ])('%s is 400 naming %s, and never reaches the provider', async (_, param, messages) => {
      expectError(await chat(key, chatBody({ messages })), 400, 'invalid_request_error', param);
      expect(provider.received).toHaveLength(0);
    });

    it('a tool-calling conversation with images goes through the SDK, forwarded untouched', async () => {
      const messages = [
        { role: 'system', content: 'be brief' },
        {
          role: 'user',
          content: [
            { type: 'text', text: 'weather here?' },
            { type: 'image_url', image_url: { url: 'https://example.com/sky.png' } },
          ],
        },
        {
          role: 'assistant',
          content: null,
          tool_calls: [{ id: 'call_1', type: 'function', function: { name: 'weather', arguments: '{"city":"Oslo"}' } }],
        },
        { role: 'tool', tool_call_id: 'call_1', content: 'sunny' },
      ];
      const res = await gw.openai(key).chat.completions.create({
        model: 'gpt-4o-mini',
        messages: messages as never,
        tools: [{ type: 'function', function: { name: 'weather', parameters: { type: 'object', properties: {} } } }],
        // an unmodelled field, nested deep but within bounds
        metadata: { note: 'x' },
        ...({ extra_field: JSON.parse(nested(100)) } as object),
      });
      expect(res.model).toBe('gpt-4o-mini');
      const sent = provider.last().body;
      expect(sent.messages).toEqual(messages);
      expect(sent.extra_field).toEqual(JSON.parse(nested(100)));
    });
  });

  describe('JSON nested deeper than 128 levels', () => {
    it('is 400 on /v1/chat/completions, not 500', async () => {
      expectError(await chat(key, `{"model":"${CHAT}","messages":${nested(10_000)}}`), 400, 'invalid_request_error');
      expectError(await chat(key, JSON.stringify(chatBody({ extra: JSON.parse(nested(128)) }))), 400, 'invalid_request_error');
      expect(provider.received).toHaveLength(0);
    });

    it('is 400 on an admin route', async () => {
      const res = await gw
        .admin()
        .post('/admin/workspaces')
        .set('content-type', 'application/json')
        .send(`{"name":${nested(10_000)}}`);
      expectError(res, 400, 'invalid_request_error');
    });

    it('is 401 without a key: the key is checked first', async () => {
      expectError(await chat(null, nested(10_000)), 401, 'invalid_api_key');
      const res = await gw.http().post('/admin/workspaces').set('content-type', 'application/json').send(nested(10_000));
      expectError(res, 401, 'invalid_admin_token');
    });
  });

  describe('a NUL character where the gateway stores a string', () => {
    const nul = 'bad\u0000name';

    it.each([
      ['a workspace name', () => gw.admin().post('/admin/workspaces').send({ name: nul }), 'name'],
      ['a key name', () => gw.admin().post(`/admin/workspaces/${workspaceId}/keys`).send({ name: nul }), 'name'],
      [
        'a key model scope',
        () =>
          gw
            .admin()
            .post(`/admin/workspaces/${workspaceId}/keys`)
            .send({ name: 'k', models: ['ok', nul] }),
        'models[1]',
      ],
      [
        'a credit reason',
        () => gw.admin().post(`/admin/workspaces/${workspaceId}/credits`).send({ amount_micros: 1, reason: nul }),
        'reason',
      ],
      ['a workspace renamed', () => gw.admin().patch(`/admin/workspaces/${workspaceId}`).send({ name: nul }), 'name'],
      [
        'an upstream model in PUT /admin/models',
        () =>
          gw.admin().put('/admin/models').send({
            id: 'nul/model',
            provider: 'deepseek',
            upstream_model: nul,
            type: 'chat',
            input_price_micros: 1,
            output_price_micros: 1,
            sellable: true,
          }),
        'upstream_model',
      ],
      ['a provider id', () => gw.admin().put('/admin/providers').send({ id: nul, base_url: 'https://example.com/v1' }), 'id'],
      ['the model filter of the usage logs', () => gw.admin().get(`/admin/workspaces/${workspaceId}/usage-logs?model=gpt%00x`), 'model'],
    ])('in %s is 400 naming it', async (_, send, param) => {
      expectError(await send(), 400, 'invalid_request_error', param);
    });

    it('leaves nothing behind', async () => {
      const [{ n }] = await gw.db.query(`SELECT count(*)::int AS n FROM models WHERE id = 'nul/model'`);
      expect(n).toBe(0);
    });
  });

  describe('the body is read only after the key check', () => {
    // 30 MB of "[" gzip to about 30 KB
    const bomb = zlib.gzipSync(Buffer.alloc(30 * 1024 * 1024, '['));

    const sendBomb = (path: string, token: string | null) =>
      fetch(`${gw.url}${path}`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'content-encoding': 'gzip', ...(token ? { authorization: `Bearer ${token}` } : {}) },
        body: bomb,
      });

    /** Sends the headers and the first bytes of a body that never ends; resolves to what the gateway answered. */
    async function answerBeforeBody(headers: string): Promise<string> {
      const socket = connect(Number(new URL(gw.url).port), '127.0.0.1');
      try {
        await new Promise<void>((resolve) => socket.once('connect', () => resolve()));
        socket.write(`POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\n${headers}Content-Length: 1000000\r\n\r\n`);
        socket.write(bomb.subarray(0, 1_000));
        return await new Promise<string>((resolve, reject) => {
          const timer = setTimeout(() => reject(new Error('no answer before the body ended')), 2_000);
          socket.once('data', (data) => {
            clearTimeout(timer);
            resolve(data.toString('latin1'));
          });
        });
      } finally {
        socket.destroy();
      }
    }

    it('a request without a valid key is answered before its body is read', async () => {
      const anonymous = await answerBeforeBody('Content-Encoding: gzip\r\n');
      expect(anonymous).toMatch(/^HTTP\/1\.1 401/);
      expect(anonymous).toContain('invalid_api_key');
      const forged = await answerBeforeBody(`Authorization: Bearer ${generateApiKey().key}\r\nContent-Encoding: gzip\r\n`);
      expect(forged).toMatch(/^HTTP\/1\.1 401/);
    });

    it('an anonymous gzip bomb is 401 at once and stalls nobody', async () => {
      expect(bomb.length).toBeLessThan(64 * 1024);
      {
        const started = Date.now();
        const bombs = Array.from({ length: 10 }, (_, i) =>
          sendBomb(i % 2 ? '/v1/chat/completions' : '/admin/workspaces', i % 3 ? null : 'nxr_forged'),
        );
        const honest = (async () => {
          const t = Date.now();
          const res = await chat(key, chatBody());
          return { status: res.status, ms: Date.now() - t };
        })();
        const answers = await Promise.all(bombs);
        for (const answer of answers) {
          expect(answer.status).toBe(401);
          const body = (await answer.json()) as { error: { code: string } };
          expect(['invalid_api_key', 'invalid_admin_token']).toContain(body.error.code);
        }
        const { status, ms } = await honest;
        expect(status).toBe(200);
        expect(ms).toBeLessThan(2_000);
        expect(Date.now() - started).toBeLessThan(3_000);
      }
    });

    it('an authenticated gzip bomb is inflated, and refused as too deep', async () => {
      const res = await sendBomb('/v1/chat/completions', key);
      expect(res.status).toBe(400);
      expect(((await res.json()) as { error: { code: string } }).error.code).toBe('invalid_request_error');
      expect(provider.received).toHaveLength(0);
    });

    it('a gzip body is still accepted from an authenticated client', async () => {
      const res = await fetch(`${gw.baseURL}/chat/completions`, {
        method: 'POST',
        headers: { authorization: `Bearer ${key}`, 'content-encoding': 'gzip' }, // no content-type: parsed as JSON anyway
        body: zlib.gzipSync(JSON.stringify(chatBody())),
      });
      expect(res.status).toBe(200);
    });

    it('a body in another charset than UTF-8 is 400 (its byte count would undercount the prompt)', async () => {
      const text = JSON.stringify(chatBody({ messages: [{ role: 'user', content: '你好世界' }] }));
      const utf16 = gw
        .http()
        .post('/v1/chat/completions')
        .set('authorization', `Bearer ${key}`)
        .set('content-type', 'application/json; charset=utf-16le')
        .send(Buffer.from(text, 'utf16le'));
      expectError(await utf16, 400, 'invalid_request_error');
      const latin1 = gw
        .http()
        .post('/v1/chat/completions')
        .set('authorization', `Bearer ${key}`)
        .set('content-type', 'application/json; charset=latin1')
        .send(text);
      expectError(await latin1, 400, 'invalid_request_error');
      // not UTF-8 at all, whatever it claims
      expectError(
        await chat(key, Buffer.from(`{"model":"${CHAT}","messages":[{"role":"user","content":"\xe9"}]}`, 'latin1')),
        400,
        'invalid_request_error',
      );
      // declared UTF-8 is fine
      const utf8 = gw
        .http()
        .post('/v1/chat/completions')
        .set('authorization', `Bearer ${key}`)
        .set('content-type', 'application/json; charset=UTF-8')
        .send(text);
      expect((await utf8).status).toBe(200);
      // and the key check still comes first
      const anonymous = gw
        .http()
        .post('/v1/chat/completions')
        .set('content-type', 'application/json; charset=utf-16le')
        .send(Buffer.from(text, 'utf16le'));
      expectError(await anonymous, 401, 'invalid_api_key');
      expect(provider.received).toHaveLength(1);
    });

    it('a client that leaves half way through its body harms nobody', async () => {
      const { port } = new URL(gw.url);
      const socket = connect(Number(port), '127.0.0.1');
      await new Promise<void>((resolve) => socket.once('connect', () => resolve()));
      socket.write(
        `POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${key}\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n\r\n{"model":"${CHAT}",`,
      );
      await sleep(100);
      socket.destroy();
      await sleep(100);
      expect((await chat(key, chatBody())).status).toBe(200);
      expect(provider.received).toHaveLength(1);
    });
  });

  describe('unknown models and keys born expired', () => {
    it('a 100 KB unknown model id is not echoed whole', async () => {
      const model = 'x'.repeat(100_000);
      const res = await chat(key, chatBody({ model }));
      expectError(res, 404, 'model_not_found', 'model');
      expect(res.body.error.message.length).toBeLessThan(300);
      expect(res.body.error.message).toContain(`${'x'.repeat(100)}…`);
    });

    it('POST a key with expires_at in the past is 400; PATCH may still expire a key', async () => {
      const past = new Date(Date.now() - 60_000).toISOString();
      expectError(
        await gw.admin().post(`/admin/workspaces/${workspaceId}/keys`).send({ name: 'late', expires_at: past }),
        400,
        'invalid_request_error',
        'expires_at',
      );
      const k = await gw.workspaceWithKey(1_000_000, { expires_at: new Date(Date.now() + 3_600_000).toISOString() });
      await chat(k.key, chatBody()).expect(200);
      await gw.admin().patch(`/admin/keys/${k.keyId}`).send({ expires_at: past }).expect(200);
      expectError(await chat(k.key, chatBody()), 401, 'invalid_api_key');
    });
  });

  describe('with a second gateway process on the same database', () => {
    let gw2: TestGateway;
    beforeAll(async () => {
      gw2 = await TestGateway.start({ shareWith: gw, env: { UNKNOWN_KEY_LOOKUPS_PER_MINUTE: '20' } });
    });
    afterAll(async () => {
      await gw2?.close();
    });

    const keyInfo = (target: TestGateway, apiKey: string) => target.http().get('/v1/key').set('authorization', `Bearer ${apiKey}`);

    it('a key disabled and enabled again on one gateway follows on the other within 1 s, both ways', async () => {
      const k = await gw.workspaceWithKey();
      await keyInfo(gw2, k.key).expect(200);
      for (const [disabled, status] of [
        [true, 401],
        [false, 200],
        [true, 401],
        [false, 200],
      ] as const) {
        const started = Date.now();
        await gw.admin().patch(`/admin/keys/${k.keyId}`).send({ disabled }).expect(200);
        await within(3_000, async () => (await keyInfo(gw2, k.key)).status === status);
        expect(Date.now() - started).toBeLessThan(1_000);
      }
    });

    it('a burst of forged keys costs a bounded number of lookups, then 429, and spares live keys', async () => {
      const live = await gw.workspaceWithKey();
      await keyInfo(gw2, live.key).expect(200); // cached on gw2
      const query = jest.spyOn(gw2.db, 'query');
      try {
        const statuses: number[] = [];
        let throttled: Response | undefined;
        for (let round = 0; round < 5; round++) {
          const answers = await Promise.all(Array.from({ length: 40 }, () => chat(generateApiKey().key, chatBody(), gw2)));
          for (const answer of answers) {
            statuses.push(answer.status);
            if (answer.status === 429) throttled = answer;
          }
        }
        const lookups = query.mock.calls.filter(([sql]) => String(sql).includes('key_hash')).length;
        expect(lookups).toBeGreaterThanOrEqual(20);
        expect(lookups).toBeLessThanOrEqual(25); // 20 at once, and what refills meanwhile
        expect(statuses.filter((s) => s === 401).length).toBe(lookups);
        expect(statuses.filter((s) => s === 429).length).toBe(200 - lookups);
        expectError(throttled!, 429, 'rate_limit_exceeded');
        expect(Number(throttled!.headers['retry-after'])).toBeGreaterThan(0);
        // the live key is still served from the cache, without a lookup
        const before = query.mock.calls.length;
        expect((await chat(live.key, chatBody(), gw2)).status).toBe(200);
        expect(query.mock.calls.slice(before).filter(([sql]) => String(sql).includes('key_hash'))).toHaveLength(0);
      } finally {
        query.mockRestore();
      }
    });
  });

  describe('with a gateway whose Redis can freeze or go away', () => {
    let proxy: RedisProxy;
    let gw3: TestGateway;
    let quiet: jest.SpyInstance;
    beforeAll(async () => {
      proxy = new RedisProxy();
      await proxy.start();
      gw3 = await TestGateway.start({ shareWith: gw, env: { REDIS_URL: `redis://127.0.0.1:${proxy.port}` } });
      // BullMQ reports every failed reconnect on the console while Redis is away
      quiet = jest.spyOn(console, 'error').mockImplementation(() => undefined);
    });
    afterAll(async () => {
      proxy.thaw();
      await proxy.start().catch(() => undefined); // let the gateway shut down cleanly
      // closing while BullMQ still reconnects can hang: wait until the gateway sees Redis again
      if (gw3) await within(15_000, async () => (await gw3.http().get('/health/ready')).status === 200).catch(() => undefined);
      await gw3?.close();
      await proxy.stop();
      quiet?.mockRestore();
    });

    it('a frozen Redis delays a rate-limited request by about 50 ms, not seconds', async () => {
      const k = await gw.workspaceWithKey(10_000_000, { rpm_limit: 1_000 });
      await chat(k.key, chatBody(), gw3).expect(200);
      proxy.freeze();
      try {
        const limiter = gw3.app.get(RateLimiter);
        const limited: AuthenticatedKey = {
          id: k.keyId,
          workspaceId: 'w',
          name: 'k',
          prefix: 'nxr_',
          models: null,
          budgetMicros: null,
          expiresAt: null,
          rpmLimit: 10,
          tpmLimit: null,
        };
        let started = performance.now();
        await limiter.check(limited, 10);
        expect(performance.now() - started).toBeLessThan(300);
        // the whole request goes through (settlement falls back to PostgreSQL on its own timeout)
        started = performance.now();
        const res = await chat(k.key, chatBody(), gw3);
        expect(res.status).toBe(200);
        expect(performance.now() - started).toBeLessThan(4_000);
      } finally {
        proxy.thaw();
      }
    });

    it('while invalidations cannot arrive, a key disabled elsewhere is refused within about 1 s', async () => {
      const k = await gw.workspaceWithKey();
      await gw3.http().get('/v1/key').set('authorization', `Bearer ${k.key}`).expect(200); // cached on gw3
      await proxy.stop();
      const redis = gw3.app.get(RedisService);
      await within(5_000, async () => !redis.invalidationHealthy);
      const started = Date.now();
      await gw.admin().patch(`/admin/keys/${k.keyId}`).send({ disabled: true }).expect(200); // gw3 misses the message
      await within(3_000, async () => (await gw3.http().get('/v1/key').set('authorization', `Bearer ${k.key}`)).status === 401);
      expect(Date.now() - started).toBeLessThan(1_500);
      const enabled = Date.now();
      await gw.admin().patch(`/admin/keys/${k.keyId}`).send({ disabled: false }).expect(200);
      await within(3_000, async () => (await gw3.http().get('/v1/key').set('authorization', `Bearer ${k.key}`)).status === 200);
      expect(Date.now() - enabled).toBeLessThan(1_500);
    });
  });
});
