import { createServer } from 'node:net';
import type { AddressInfo } from 'node:net';
import type { Response } from 'supertest';
import { generateApiKey } from '../../src/keys/api-key-format';
import { completion, FakeProvider, FakeReply, ReceivedRequest } from '../helpers/fake-provider';
import { TestGateway } from '../helpers/gateway';
import { closeAll, startWithFakeProvider } from '../helpers/setup';

/**
 * Every error row of CONTRACT §3: status, code, the OpenAI error shape, and the order in which
 * the checks run. Requests refused by the gateway never reach the provider.
 */

const PROVIDER_KEY = 'sk-provider-secret';
const CHAT = 'deepseek-v4-flash';
const QWEN = 'Qwen/Qwen-Plus';
const EMBEDDING = 'text-embedding-3-small';

type Body = Record<string, unknown>;

function chatBody(extra: Body = {}): Body {
  return { model: CHAT, messages: [{ role: 'user', content: 'hello' }], ...extra };
}

function defaultReply(req: ReceivedRequest): FakeReply {
  return req.path.endsWith('/embeddings')
    ? {
        json: {
          object: 'list',
          data: [{ object: 'embedding', index: 0, embedding: [0.1] }],
          model: req.body.model,
          usage: { prompt_tokens: 1, total_tokens: 1 },
        },
      }
    : { json: completion(req.body.model) };
}

/** Asserts the full OpenAI error shape, the status, the code and the request id header. */
function expectError(res: Response, status: number, code: unknown, param?: string | null): void {
  if (res.status !== status) throw new Error(`expected HTTP ${status}, got ${res.status}: ${res.text.slice(0, 500)}`);
  expect(res.headers['content-type']).toMatch(/application\/json/);
  expect(res.headers['x-request-id']).toMatch(/\S/);
  expect(Object.keys(res.body)).toEqual(['error']);
  expect(Object.keys(res.body.error).sort()).toEqual(['code', 'message', 'param', 'type']);
  const { message, type, param: actualParam, code: actualCode } = res.body.error;
  expect(typeof message).toBe('string');
  expect(message.length).toBeGreaterThan(0);
  expect(typeof type).toBe('string');
  expect(actualParam === null || typeof actualParam === 'string').toBe(true);
  expect(typeof actualCode).toBe('string');
  expect(actualCode).toEqual(code);
  if (param !== undefined) expect(actualParam).toBe(param);
}

/**
 * Rate limits count in fixed one-minute windows: tests that need two requests in one window
 * start well away from a minute boundary, so the window cannot roll over between them.
 */
async function awayFromMinuteBoundary(marginMs = 5_000): Promise<void> {
  const left = 60_000 - (Date.now() % 60_000);
  if (left < marginMs) await new Promise((r) => setTimeout(r, left + 50));
}

/** A port nothing listens on. */
async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

describe('errors (CONTRACT §3)', () => {
  let gw: TestGateway;
  let provider: FakeProvider;
  let key: string;
  let workspaceId: string;

  const post = (path: string, apiKey: string | null, body: Body | string) => {
    const req = gw.http().post(path).set('content-type', 'application/json');
    if (apiKey !== null) req.set('authorization', `Bearer ${apiKey}`);
    return req.send(typeof body === 'string' ? body : JSON.stringify(body));
  };
  const chat = (apiKey: string | null, body: Body | string) => post('/v1/chat/completions', apiKey, body);

  async function usageLog(requestId: string): Promise<Record<string, any> | undefined> {
    await gw.settled();
    const [row] = await gw.db.query('SELECT * FROM usage_logs WHERE request_id = $1', [requestId]);
    return row;
  }

  /** A request that reached the provider is logged under its x-request-id, with the status answered, at no cost. */
  async function expectLoggedFree(res: Response): Promise<void> {
    const log = await usageLog(res.headers['x-request-id']);
    expect(log).toBeDefined();
    expect(log!.status).toBe(res.status);
    expect(log!.error_code).toBe(res.body.error.code);
    expect(Number(log!.cost_micros)).toBe(0);
  }

  beforeAll(async () => {
    ({ gw, provider } = await startWithFakeProvider({ providers: ['deepseek', 'openai', 'dashscope'], providerKey: PROVIDER_KEY }));
    ({ key, workspaceId } = await gw.workspaceWithKey());
  });
  afterAll(() => closeAll(gw, provider));
  beforeEach(() => {
    provider.received.length = 0;
    provider.respond(defaultReply);
  });

  it('a valid request succeeds (the baseline the error tests vary)', async () => {
    const res = await chat(key, chatBody()).expect(200);
    expect(res.body.model).toBe(CHAT);
    expect(provider.received).toHaveLength(1);
  });

  describe('1. 401 invalid_api_key', () => {
    afterEach(() => expect(provider.received).toHaveLength(0));

    it('when the key is missing', async () => {
      expectError(await chat(null, chatBody()), 401, 'invalid_api_key');
    });

    it.each([
      ['not a bearer token', (k: string) => k],
      ['a bearer token without a value', () => 'Bearer '],
      ['a token of the wrong shape', () => 'Bearer sk-not-a-nexo-key'],
      ['basic auth', (k: string) => `Basic ${Buffer.from(`user:${k}`).toString('base64')}`],
    ])('when the authorization header is malformed: %s', async (_, header) => {
      const res = await gw.http().post('/v1/chat/completions').set('authorization', header(key)).send(chatBody());
      expectError(res, 401, 'invalid_api_key');
    });

    it('when the checksum does not match', async () => {
      const last = key[key.length - 1];
      const tampered = key.slice(0, -1) + (last === 'A' ? 'B' : 'A');
      expectError(await chat(tampered, chatBody()), 401, 'invalid_api_key');
    });

    it('when the key is well formed but unknown', async () => {
      expectError(await chat(generateApiKey().key, chatBody()), 401, 'invalid_api_key');
    });

    it('when the key was disabled with PATCH /admin/keys/:id', async () => {
      const k = await gw.workspaceWithKey();
      await chat(k.key, chatBody()).expect(200); // cached as valid
      provider.received.length = 0;
      await gw.admin().patch(`/admin/keys/${k.keyId}`).send({ disabled: true }).expect(200);
      expectError(await chat(k.key, chatBody()), 401, 'invalid_api_key');
      expectError(await gw.http().get('/v1/models').set('authorization', `Bearer ${k.key}`), 401, 'invalid_api_key');
    });

    it('when the key has expired', async () => {
      // a key cannot be created expired (400): it expires by PATCH
      const k = await gw.workspaceWithKey(10_000_000);
      await gw
        .admin()
        .patch(`/admin/keys/${k.keyId}`)
        .send({ expires_at: new Date(Date.now() - 60_000).toISOString() })
        .expect(200);
      expectError(await chat(k.key, chatBody()), 401, 'invalid_api_key');
      expectError(await gw.http().get('/v1/key').set('authorization', `Bearer ${k.key}`), 401, 'invalid_api_key');
    });

    it('on every public endpoint', async () => {
      expectError(await gw.http().get('/v1/models'), 401, 'invalid_api_key');
      expectError(await gw.http().get('/v1/models/Qwen/Qwen-Plus'), 401, 'invalid_api_key');
      expectError(await gw.http().get('/v1/key'), 401, 'invalid_api_key');
      expectError(await post('/v1/embeddings', null, { model: EMBEDDING, input: 'x' }), 401, 'invalid_api_key');
    });
  });

  describe('2. 400 invalid_request_error', () => {
    afterEach(() => expect(provider.received).toHaveLength(0));

    it('when the body is not JSON', async () => {
      expectError(await chat(key, '{"model": "deepseek-v4-flash", "messages": ['), 400, 'invalid_request_error');
    });

    it('when the body is JSON but not an object', async () => {
      expectError(await chat(key, '[1, 2, 3]'), 400, 'invalid_request_error');
    });

    it('when messages is missing', async () => {
      expectError(await chat(key, { model: CHAT }), 400, 'invalid_request_error', 'messages');
    });

    it('when model is missing', async () => {
      expectError(await chat(key, { messages: [{ role: 'user', content: 'hi' }] }), 400, 'invalid_request_error', 'model');
    });

    it('when a value has the wrong type', async () => {
      expectError(await chat(key, chatBody({ temperature: 'hot' })), 400, 'invalid_request_error', 'temperature');
    });

    it('when a value is out of range', async () => {
      expectError(await chat(key, chatBody({ temperature: 5 })), 400, 'invalid_request_error', 'temperature');
    });

    it('when messages has the wrong type', async () => {
      expectError(await chat(key, { model: CHAT, messages: 'hello' }), 400, 'invalid_request_error', 'messages');
    });

    it('when a message has an unknown role', async () => {
      const res = await chat(key, chatBody({ messages: [{ role: 'wizard', content: 'x' }] }));
      expectError(res, 400, 'invalid_request_error', 'messages[0].role');
    });

    it('when stop has more than 4 sequences', async () => {
      expectError(await chat(key, chatBody({ stop: ['a', 'b', 'c', 'd', 'e'] })), 400, 'invalid_request_error', 'stop');
    });

    it('when model is not a string', async () => {
      expectError(await chat(key, chatBody({ model: 42 })), 400, 'invalid_request_error', 'model');
    });

    it('when max_tokens is not an integer', async () => {
      expectError(await chat(key, chatBody({ max_tokens: '100' })), 400, 'invalid_request_error', 'max_tokens');
    });

    it('when the embeddings input is empty', async () => {
      expectError(await post('/v1/embeddings', key, { model: EMBEDDING, input: '' }), 400, 'invalid_request_error', 'input');
    });

    it('when the embeddings input is missing', async () => {
      expectError(await post('/v1/embeddings', key, { model: EMBEDDING }), 400, 'invalid_request_error', 'input');
    });
  });

  describe('3. 404 model_not_found', () => {
    afterEach(() => expect(provider.received).toHaveLength(0));

    it('when the model is unknown', async () => {
      expectError(await chat(key, chatBody({ model: 'no-such-model' })), 404, 'model_not_found');
    });

    it('when an embedding model is used for chat', async () => {
      expectError(await chat(key, chatBody({ model: EMBEDDING })), 404, 'model_not_found');
    });

    it('when a chat model is used for embeddings', async () => {
      expectError(await post('/v1/embeddings', key, { model: CHAT, input: 'x' }), 404, 'model_not_found');
    });

    it('when the model is not sellable', async () => {
      await gw
        .admin()
        .put('/admin/models')
        .send({
          id: 'errors/unsellable',
          provider: 'deepseek',
          upstream_model: 'x',
          type: 'chat',
          input_price_micros: 1,
          output_price_micros: 1,
          sellable: false,
        })
        .expect(200);
      expectError(await chat(key, chatBody({ model: 'errors/unsellable' })), 404, 'model_not_found');
    });
  });

  describe('3b. 400 max_tokens above the model maximum', () => {
    afterEach(() => expect(provider.received).toHaveLength(0));

    async function maxOutput(model: string): Promise<number> {
      const [row] = await gw.db.query('SELECT max_output_tokens FROM models WHERE id = $1', [model]);
      return row.max_output_tokens;
    }

    it('names max_tokens', async () => {
      const max = await maxOutput(CHAT);
      expectError(await chat(key, chatBody({ max_tokens: max + 1 })), 400, 'invalid_request_error', 'max_tokens');
    });

    it('also for max_completion_tokens', async () => {
      const max = await maxOutput(CHAT);
      const res = await chat(key, chatBody({ max_completion_tokens: max + 1 }));
      expectError(res, 400, 'invalid_request_error');
    });

    it('accepts exactly the maximum', async () => {
      const max = await maxOutput(CHAT);
      await chat(key, chatBody({ max_tokens: max })).expect(200);
      expect(provider.last().body.max_tokens).toBe(max);
      provider.received.length = 0;
    });
  });

  describe('4. 403 model_not_allowed', () => {
    it("when the key's scope excludes the model", async () => {
      const k = await gw.workspaceWithKey(10_000_000, { models: [QWEN] });
      expectError(await chat(k.key, chatBody({ model: CHAT })), 403, 'model_not_allowed');
      expectError(await post('/v1/embeddings', k.key, { model: EMBEDDING, input: 'x' }), 403, 'model_not_allowed');
      expect(provider.received).toHaveLength(0);
      await chat(k.key, chatBody({ model: QWEN })).expect(200);
    });
  });

  describe('5. 429 rate_limit_exceeded', () => {
    it('type requests: the second request of a key with rpm_limit 1', async () => {
      await awayFromMinuteBoundary();
      const k = await gw.workspaceWithKey(10_000_000, { rpm_limit: 1 });
      await chat(k.key, chatBody()).expect(200);
      provider.received.length = 0;
      const res = await chat(k.key, chatBody());
      expectError(res, 429, 'rate_limit_exceeded');
      expect(res.body.error.type).toBe('requests');
      expect(Number(res.headers['retry-after'])).toBeGreaterThan(0);
      expect(provider.received).toHaveLength(0);
    });

    it('type tokens: a key with a tiny tpm_limit', async () => {
      const k = await gw.workspaceWithKey(10_000_000, { tpm_limit: 5 });
      const res = await chat(k.key, chatBody({ max_tokens: 10 }));
      expectError(res, 429, 'rate_limit_exceeded');
      expect(res.body.error.type).toBe('tokens');
      expect(provider.received).toHaveLength(0);
    });

    it("a key without a limit of its own has the workspace's", async () => {
      await awayFromMinuteBoundary();
      const ws = await gw.admin().post('/admin/workspaces').send({ name: 'limited', rpm_limit: 1 }).expect(201);
      await gw.admin().post(`/admin/workspaces/${ws.body.id}/credits`).send({ amount_micros: 10_000_000 }).expect(201);
      const created = await gw.admin().post(`/admin/workspaces/${ws.body.id}/keys`).send({ name: 'k' }).expect(201);
      await chat(created.body.key, chatBody()).expect(200);
      const res = await chat(created.body.key, chatBody());
      expectError(res, 429, 'rate_limit_exceeded');
      expect(res.body.error.type).toBe('requests');
    });
  });

  describe('6. 403 insufficient_quota', () => {
    afterEach(() => expect(provider.received).toHaveLength(0));

    it('when the workspace balance cannot cover the request', async () => {
      const k = await gw.workspaceWithKey(0);
      const res = await chat(k.key, chatBody());
      expectError(res, 403, 'insufficient_quota');
      expect(res.body.error.message.startsWith('Insufficient prepaid balance. Current balance: $')).toBe(true);
      expect(res.body.error.message).toMatch(/^Insufficient prepaid balance\. Current balance: \$0\.000000\./);
    });

    it('when the balance is positive but too small', async () => {
      const k = await gw.workspaceWithKey(3);
      const res = await chat(k.key, chatBody());
      expectError(res, 403, 'insufficient_quota');
      expect(res.body.error.message).toMatch(/^Insufficient prepaid balance\. Current balance: \$0\.000003\./);
    });

    it("when the key's budget cannot cover the request", async () => {
      const k = await gw.workspaceWithKey(10_000_000, { budget_micros: 1 });
      const res = await chat(k.key, chatBody());
      expectError(res, 403, 'insufficient_quota');
      expect(res.body.error.message.startsWith('Insufficient key budget. Remaining key budget: $')).toBe(true);
      expect(res.body.error.message).toMatch(/^Insufficient key budget\. Remaining key budget: \$0\.000001\./);
    });

    it('for embeddings too', async () => {
      const k = await gw.workspaceWithKey(0);
      expectError(await post('/v1/embeddings', k.key, { model: EMBEDDING, input: 'x' }), 403, 'insufficient_quota');
    });

    it('leaves the balance untouched', async () => {
      const k = await gw.workspaceWithKey(0);
      await chat(k.key, chatBody()).expect(403);
      await gw.settled();
      const ws = await gw.admin().get(`/admin/workspaces/${k.workspaceId}`).expect(200);
      expect(ws.body.balance_micros).toBe(0);
    });
  });

  describe('gateway_error: the provider failed', () => {
    function expectNoSecrets(res: Response): void {
      const text = res.text;
      expect(text).not.toContain(PROVIDER_KEY);
      expect(text).not.toContain(provider.url);
      expect(text).not.toContain('127.0.0.1');
      expect(text).not.toContain(key);
    }

    it('provider 500 is 502, recorded in the usage log at no cost', async () => {
      provider.respond(() => ({ status: 500, json: { error: { message: `internal failure at ${provider.url}` } } }));
      const before = (await gw.admin().get(`/admin/workspaces/${workspaceId}`)).body.balance_micros;
      const res = await chat(key, chatBody());
      expectError(res, 502, 'gateway_error');
      expectNoSecrets(res);
      expect(provider.received).toHaveLength(3); // retried: UPSTREAM_MAX_ATTEMPTS (3) sends, nothing reached the client

      await expectLoggedFree(res);
      const after = (await gw.admin().get(`/admin/workspaces/${workspaceId}`)).body;
      expect(after.balance_micros).toBe(before);
      expect(after.available_micros).toBe(before);
    });

    it.each([401, 403])('provider %i (our provider key is wrong) is 502 without the provider URL or key', async (status) => {
      provider.respond(() => ({
        status,
        json: {
          error: {
            message: `Incorrect API key provided: ${PROVIDER_KEY} for ${provider.url}`,
            type: 'invalid_request_error',
            code: 'invalid_api_key',
          },
        },
      }));
      const res = await chat(key, chatBody());
      expectError(res, 502, 'gateway_error');
      expectNoSecrets(res);
      await expectLoggedFree(res);
    });

    it('provider 429 is 503 with Retry-After passed on', async () => {
      provider.respond(() => ({ status: 429, headers: { 'retry-after': '17' }, json: { error: { message: 'slow down' } } }));
      const res = await chat(key, chatBody());
      expectError(res, 503, 'gateway_error');
      expect(res.headers['retry-after']).toBe('17');
      expectNoSecrets(res);
      await expectLoggedFree(res);
    });

    it.each([400, 404, 422])("provider %i comes back with the same status and the provider's message", async (status) => {
      const message = `Invalid value for 'messages[0].content': provider says no (${status}).`;
      provider.respond(() => ({ status, json: { error: { message, type: 'invalid_request_error', param: 'messages', code: null } } }));
      const res = await chat(key, chatBody());
      expectError(res, status, 'invalid_request_error');
      expect(res.body.error.message).toBe(message);
      await expectLoggedFree(res);
    });

    it('a provider answer that is not JSON is 502', async () => {
      provider.respond(() => ({ raw: '<html>oops</html>' }));
      const res = await chat(key, chatBody());
      expectError(res, 502, 'gateway_error');
      await expectLoggedFree(res);
    });

    it('an unreachable provider is 502', async () => {
      const port = await closedPort();
      await gw
        .admin()
        .put('/admin/providers')
        .send({ id: 'unreachable', base_url: `http://127.0.0.1:${port}/v1`, api_key: PROVIDER_KEY })
        .expect(200);
      await gw
        .admin()
        .put('/admin/models')
        .send({
          id: 'errors/unreachable',
          provider: 'unreachable',
          upstream_model: 'u',
          type: 'chat',
          input_price_micros: 1,
          output_price_micros: 1,
          sellable: true,
        })
        .expect(200);
      const res = await chat(key, chatBody({ model: 'errors/unreachable' }));
      expectError(res, 502, 'gateway_error');
      expect(res.text).not.toContain(String(port));
      expect(res.text).not.toContain(PROVIDER_KEY);
    });

    describe('with UPSTREAM_TIMEOUT_MS=300', () => {
      let fast: TestGateway;
      beforeAll(async () => {
        fast = await TestGateway.start({ shareWith: gw, env: { UPSTREAM_TIMEOUT_MS: '300' } });
      });
      afterAll(async () => {
        await fast?.close();
      });

      it('a provider that does not answer in time is 504', async () => {
        provider.respond((req) => ({ ...defaultReply(req), delayMs: 2_000 }));
        const res = await fast.http().post('/v1/chat/completions').set('authorization', `Bearer ${key}`).send(chatBody());
        expectError(res, 504, 'gateway_error');
        expect(res.text).not.toContain(provider.url);
        expect(provider.received).toHaveLength(1);
        await expectLoggedFree(res);
      });
    });
  });

  describe('check order', () => {
    afterEach(() => expect(provider.received).toHaveLength(0));

    it('bad key + bad body → 401', async () => {
      expectError(await chat('nxr_bad', '{not json'), 401, 'invalid_api_key');
      expectError(await chat(null, { model: CHAT }), 401, 'invalid_api_key');
    });

    it('bad body + unknown model → 400', async () => {
      expectError(await chat(key, { model: 'no-such-model' }), 400, 'invalid_request_error', 'messages');
      expectError(await chat(key, chatBody({ model: 'no-such-model', temperature: 'hot' })), 400, 'invalid_request_error', 'temperature');
    });

    it('bad stop + unknown model → 400', async () => {
      expectError(await chat(key, chatBody({ model: 'no-such-model', stop: [1, 2] })), 400, 'invalid_request_error', 'stop');
    });

    it('bad embeddings input + unknown model → 400', async () => {
      expectError(await post('/v1/embeddings', key, { model: 'no-such-model', input: [] }), 400, 'invalid_request_error', 'input');
    });

    it('bad embeddings input + chat model on /v1/embeddings → 400', async () => {
      expectError(await post('/v1/embeddings', key, { model: CHAT, input: '' }), 400, 'invalid_request_error', 'input');
    });

    it('unknown model + too large max_tokens → 404', async () => {
      expectError(await chat(key, chatBody({ model: 'no-such-model', max_tokens: 100_000_000 })), 404, 'model_not_found');
    });

    it('unknown model + key scope → 404', async () => {
      const k = await gw.workspaceWithKey(10_000_000, { models: [QWEN] });
      expectError(await chat(k.key, chatBody({ model: 'no-such-model' })), 404, 'model_not_found');
    });

    it('too large max_tokens + key scope → 400', async () => {
      const k = await gw.workspaceWithKey(10_000_000, { models: [QWEN] });
      expectError(await chat(k.key, chatBody({ model: CHAT, max_tokens: 100_000_000 })), 400, 'invalid_request_error', 'max_tokens');
    });

    it('key scope + rate limit → 403 model_not_allowed', async () => {
      await awayFromMinuteBoundary();
      const k = await gw.workspaceWithKey(10_000_000, { models: [QWEN], rpm_limit: 1 });
      await chat(k.key, chatBody({ model: QWEN })).expect(200);
      provider.received.length = 0;
      expectError(await chat(k.key, chatBody({ model: CHAT })), 403, 'model_not_allowed');
    });

    it('key scope + insufficient quota → 403 model_not_allowed', async () => {
      const k = await gw.workspaceWithKey(0, { models: [QWEN] });
      expectError(await chat(k.key, chatBody({ model: CHAT })), 403, 'model_not_allowed');
    });

    it('rate limit + insufficient quota → 429', async () => {
      await awayFromMinuteBoundary();
      const k = await gw.workspaceWithKey(10_000_000, { rpm_limit: 1 });
      await chat(k.key, chatBody()).expect(200);
      await gw.settled();
      const ws = await gw.admin().get(`/admin/workspaces/${k.workspaceId}`).expect(200);
      await gw
        .admin()
        .post(`/admin/workspaces/${k.workspaceId}/credits`)
        .send({ amount_micros: -ws.body.balance_micros, reason: 'drain' })
        .expect(201);
      provider.received.length = 0;
      expectError(await chat(k.key, chatBody()), 429, 'rate_limit_exceeded');
    });

    it('disabled key + insufficient quota → 401', async () => {
      const k = await gw.workspaceWithKey(0);
      await gw.admin().patch(`/admin/keys/${k.keyId}`).send({ disabled: true }).expect(200);
      expectError(await chat(k.key, chatBody()), 401, 'invalid_api_key');
    });
  });

  describe('transport', () => {
    it('a body over 32 MB is 413 in the OpenAI shape', async () => {
      const huge = JSON.stringify(chatBody({ messages: [{ role: 'user', content: 'x'.repeat(33 * 1024 * 1024) }] }));
      const res = await chat(key, huge);
      // CONTRACT §3 fixes the status and the shape, not the code
      expectError(res, 413, expect.stringMatching(/\S/));
      expect(provider.received).toHaveLength(0);
    });

    it('a body over 32 MB without a key is refused in the OpenAI shape (413, or 401 if the key is checked first)', async () => {
      const res = await chat(null, 'x'.repeat(33 * 1024 * 1024));
      expect([401, 413]).toContain(res.status);
      expectError(res, res.status, expect.stringMatching(/\S/));
    });

    it('a body just under 32 MB is accepted', async () => {
      const k = await gw.workspaceWithKey(100_000_000);
      const content = 'x'.repeat(31 * 1024 * 1024);
      const res = await chat(k.key, JSON.stringify(chatBody({ messages: [{ role: 'user', content }] })));
      expect(res.status).toBe(200);
      expect(provider.last().body.messages[0].content).toHaveLength(content.length);
    });

    it.each([
      ['GET', '/v1/nope'],
      ['POST', '/v1/completions/unknown'],
      ['GET', '/totally/unknown'],
      ['DELETE', '/v1/models'],
    ])('an unknown route (%s %s) is 404 not_found, with or without a key', async (method, path) => {
      const http = gw.http();
      const without = await (method === 'GET' ? http.get(path) : method === 'POST' ? http.post(path) : http.delete(path));
      expectError(without, 404, 'not_found');
      const withKey = await (method === 'GET' ? http.get(path) : method === 'POST' ? http.post(path) : http.delete(path)).set(
        'authorization',
        `Bearer ${key}`,
      );
      expectError(withKey, 404, 'not_found');
      const badKey = await (method === 'GET' ? http.get(path) : method === 'POST' ? http.post(path) : http.delete(path)).set(
        'authorization',
        'Bearer nxr_wrong',
      );
      expectError(badKey, 404, 'not_found');
    });

    it('an unknown route is 404 even with a body that is not JSON', async () => {
      expectError(await post('/v1/nope', key, '{not json'), 404, 'not_found');
    });

    it('every response carries a distinct x-request-id', async () => {
      const responses = await Promise.all([
        gw.http().get('/v1/models').set('authorization', `Bearer ${key}`),
        gw.http().get('/v1/models'),
        chat(key, chatBody()),
        chat(key, '{broken'),
        gw.http().get('/health/live'),
        gw.http().get('/admin/workspaces/x'),
        gw.http().get('/nowhere'),
      ]);
      const ids = responses.map((r) => r.headers['x-request-id']);
      for (const id of ids) expect(id).toMatch(/\S/);
      expect(new Set(ids).size).toBe(ids.length);
    });
  });
});
