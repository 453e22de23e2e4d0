import type { Express } from 'express';
import type { Response } from 'supertest';
import { requestScope } from '../../src/common/http/request-scope';
import { FakeProvider } from '../helpers/fake-provider';
import { TestGateway } from '../helpers/gateway';
import { closeAll, startWithFakeProvider } from '../helpers/setup';

/**
 * The proxy lane (src/chat/proxy-lane.ts) serves POST /v1/chat/completions and /v1/embeddings
 * without Express's router; the same routes asked with a trailing slash still go through Express
 * and Nest. Whatever a client sends, both must answer alike.
 */

const CHAT = 'deepseek-v4-flash';
const EMBED = 'text-embedding-3-small';
type Body = Record<string, unknown>;

/** Headers whose values differ from one request to the next. */
const VARYING = new Set(['date', 'x-request-id', 'x-ratelimit-reset-requests', 'x-ratelimit-reset-tokens', 'etag']);

function shape(res: Response) {
  const headers = Object.fromEntries(
    Object.entries(res.headers)
      .filter(([name]) => name !== 'date' && name !== 'connection' && name !== 'keep-alive')
      .map(([name, value]) => [name, VARYING.has(name) ? '*' : name.startsWith('x-ratelimit-remaining') ? '#' : value]),
  );
  const body = { ...(res.body as Body) };
  delete body.id;
  delete body.created;
  return { status: res.status, headers, body: res.headers['content-type']?.includes('json') ? body : res.text };
}

describe('the proxy lane', () => {
  let gw: TestGateway;
  let provider: FakeProvider;
  let key: string;
  let scoped: string;
  let express: Express;

  beforeAll(async () => {
    ({ gw, provider } = await startWithFakeProvider({ providers: ['deepseek', 'openai'] }));
    ({ key } = await gw.workspaceWithKey(1_000_000_000, { rpm_limit: 100_000, tpm_limit: 100_000_000 }));
    ({ key: scoped } = await gw.workspaceWithKey(1_000_000_000, { models: [EMBED] }));
    express = gw.app.getHttpAdapter().getInstance() as Express;
  });
  afterAll(() => closeAll(gw, provider));

  const post = (path: string, apiKey: string | null, body: Body | string) => {
    const req = gw.http().post(path).set('content-type', 'application/json');
    if (apiKey !== null) req.set('authorization', `Bearer ${apiKey}`);
    return req.send(typeof body === 'string' ? body : JSON.stringify(body));
  };

  it("takes the two proxy routes away from Express's router, and leaves it every other request", async () => {
    const handle = jest.spyOn(express as unknown as { handle: (...args: unknown[]) => void }, 'handle');
    try {
      const chat = await post('/v1/chat/completions', key, { model: CHAT, messages: [{ role: 'user', content: 'hi' }] });
      expect(chat.status).toBe(200);
      const embed = await post('/v1/embeddings?trace=1', key, { model: EMBED, input: 'hi' });
      expect(embed.status).toBe(200);
      expect(handle).not.toHaveBeenCalled();
      expect((await gw.http().get('/v1/models').set('authorization', `Bearer ${key}`)).status).toBe(200);
      expect((await post('/v1/chat/completions/', key, { model: CHAT, messages: [{ role: 'user', content: 'hi' }] })).status).toBe(200);
      expect((await gw.http().get('/v1/chat/completions').set('authorization', `Bearer ${key}`)).status).toBe(404);
      expect(handle).toHaveBeenCalledTimes(3);
    } finally {
      handle.mockRestore();
    }
    await gw.settled();
  });

  it('runs its requests outside the AsyncLocalStorage scope that Express routes get (its promise hook costs every request)', async () => {
    const run = jest.spyOn(requestScope, 'run');
    try {
      expect((await post('/v1/chat/completions', key, { model: CHAT, messages: [{ role: 'user', content: 'hi' }] })).status).toBe(200);
      expect((await post('/v1/embeddings', key, { model: EMBED, input: 'hi' })).status).toBe(200);
      expect(run).not.toHaveBeenCalled();
      const nest = await post('/v1/chat/completions/', key, { model: CHAT, messages: [{ role: 'user', content: 'hi' }] });
      expect(nest.status).toBe(200);
      expect(run).toHaveBeenCalledTimes(1);
      expect(run.mock.calls[0][0]).toMatchObject({ id: nest.headers['x-request-id'] });
    } finally {
      run.mockRestore();
    }
    await gw.settled();
  });

  const cases: Array<[string, 'chat/completions' | 'embeddings', () => string | null, Body | string]> = [
    ['an answer', 'chat/completions', () => key, { model: CHAT, messages: [{ role: 'user', content: 'hi' }], max_tokens: 5 }],
    ['an embedding', 'embeddings', () => key, { model: EMBED, input: ['a', 'b'] }],
    ['no key', 'chat/completions', () => null, { model: CHAT, messages: [] }],
    ['a forged key', 'chat/completions', () => `nxr_${'x'.repeat(49)}`, { model: CHAT, messages: [] }],
    ['broken JSON', 'chat/completions', () => key, '{"model": '],
    ['a JSON array', 'chat/completions', () => key, '[1, 2]'],
    ['an empty body', 'chat/completions', () => key, ''],
    ['a bad message', 'chat/completions', () => key, { model: CHAT, messages: [{ role: 'wizard', content: 'hi' }] }],
    ['a bad stop', 'chat/completions', () => key, { model: CHAT, messages: [{ role: 'user', content: 'hi' }], stop: [1] }],
    ['an unknown model', 'chat/completions', () => key, { model: 'no-such-model', messages: [{ role: 'user', content: 'hi' }] }],
    ['a model out of scope', 'chat/completions', () => scoped, { model: CHAT, messages: [{ role: 'user', content: 'hi' }] }],
    ['a chat model for embeddings', 'embeddings', () => key, { model: CHAT, input: 'hi' }],
    ['an empty input', 'embeddings', () => key, { model: EMBED, input: '' }],
    [
      'a __proto__ field',
      'chat/completions',
      () => key,
      '{"model":"deepseek-v4-flash","messages":[{"role":"user","content":"hi"}],"__proto__":{"x":1}}',
    ],
  ];

  it.each(cases)('answers %s as the Nest route does', async (_name, route, apiKey, body) => {
    const lane = await post(`/v1/${route}`, apiKey(), body);
    const nest = await post(`/v1/${route}/`, apiKey(), body);
    expect(lane.status).toBeGreaterThanOrEqual(200);
    expect(shape(lane)).toEqual(shape(nest));
  });

  it('charges what it answers, once, and logs the route template', async () => {
    await gw.settled();
    const logs: Array<{ n: string }> = await gw.db.query(
      `SELECT count(*)::text AS n FROM usage_logs l JOIN api_keys k ON k.id = l.key_id WHERE l.status = 200`,
    );
    const metrics = await gw.admin().get('/metrics');
    expect(metrics.text).toMatch(/http_request_duration_seconds_count\{method="POST",route="\/v1\/chat\/completions",status="200"\} \d+/);
    expect(metrics.text).not.toMatch(/route="\/v1\/chat\/completions\/"/);
    // the 200s of this file: 3 in each of the first two tests, then a lane and a Nest answer for each of the three 200 cases
    expect(Number(logs[0].n)).toBe(3 + 3 + 3 * 2);
  });
});
