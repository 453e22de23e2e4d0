import { request } from 'undici';
import { FakeProvider } from '../helpers/fake-provider';
import { TestGateway } from '../helpers/gateway';
import { closeAll, startWithFakeProvider } from '../helpers/setup';

const PAGE = 'https://app.example.com';
/** What the openai SDK sends from a browser, besides its body. */
const SDK_HEADERS = 'authorization,content-type,x-stainless-os,x-stainless-lang,x-stainless-retry-count';

/**
 * Web pages of any origin may call the public API, as OpenAI's allows: it is authenticated by a
 * bearer key, never by cookies. The dashboard and admin APIs stay same-origin.
 */
describe('public API from a web page of another origin (CORS)', () => {
  let gw: TestGateway;
  let provider: FakeProvider;
  let key: string;

  beforeAll(async () => {
    ({ gw, provider } = await startWithFakeProvider({ providers: 'deepseek' }));
    ({ key } = await gw.workspaceWithKey());
  });
  afterAll(() => closeAll(gw, provider));

  function preflight(path: string, method = 'POST') {
    return request(`${gw.url}${path}`, {
      method: 'OPTIONS',
      headers: { origin: PAGE, 'access-control-request-method': method, 'access-control-request-headers': SDK_HEADERS },
    });
  }

  function chat(headers: Record<string, string>, body: Record<string, unknown> = {}) {
    return request(`${gw.baseURL}/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...headers },
      body: JSON.stringify({ model: 'deepseek-v4-flash', messages: [{ role: 'user', content: 'hi' }], ...body }),
    });
  }

  it.each([
    ['/v1/chat/completions', 'POST'],
    ['/v1/embeddings', 'POST'],
    ['/v1/models', 'GET'],
    ['/v1/key', 'GET'],
  ])('answers the preflight of %s', async (path, method) => {
    const res = await preflight(path, method);
    await res.body.text();
    expect(res.statusCode).toBe(204);
    expect(res.headers['access-control-allow-origin']).toBe('*');
    expect(String(res.headers['access-control-allow-methods'])).toContain('POST');
    expect(String(res.headers['access-control-allow-methods'])).toContain('GET');
    expect(res.headers['access-control-allow-headers']).toBe(SDK_HEADERS);
    expect(Number(res.headers['access-control-max-age'])).toBeGreaterThan(0);
  });

  it('lets the page read a completion, its cost and its request id', async () => {
    const res = await chat({ origin: PAGE, authorization: `Bearer ${key}` });
    const body = (await res.body.json()) as { choices: unknown[] };
    expect(res.statusCode).toBe(200);
    expect(body.choices).toHaveLength(1);
    expect(res.headers['access-control-allow-origin']).toBe('*');
    expect(res.headers['access-control-expose-headers']).toBe('*');
    expect(res.headers['x-nexo-cost-micros']).toBeDefined();
  });

  it('lets the page read a stream', async () => {
    const res = await chat({ origin: PAGE, authorization: `Bearer ${key}` }, { stream: true });
    const text = await res.body.text();
    expect(res.statusCode).toBe(200);
    expect(text).toContain('data: [DONE]');
    expect(res.headers['access-control-allow-origin']).toBe('*');
  });

  it('lets the page read an error: a wrong key is 401 in the OpenAI shape', async () => {
    const res = await chat({ origin: PAGE, authorization: 'Bearer nxr_wrong' });
    const body = (await res.body.json()) as { error: { code: string } };
    expect(res.statusCode).toBe(401);
    expect(body.error.code).toBe('invalid_api_key');
    expect(res.headers['access-control-allow-origin']).toBe('*');
  });

  it('sends no CORS headers to a client that is not a web page', async () => {
    const res = await chat({ authorization: `Bearer ${key}` });
    await res.body.text();
    expect(res.statusCode).toBe(200);
    expect(res.headers['access-control-allow-origin']).toBeUndefined();
  });

  it.each(['/dashboard/keys', '/admin/workspaces', '/auth/login'])('keeps %s same-origin', async (path) => {
    const res = await preflight(path);
    await res.body.text();
    expect(res.statusCode).not.toBe(204);
    expect(res.headers['access-control-allow-origin']).toBeUndefined();
    const get = await request(`${gw.url}${path}`, { headers: { origin: PAGE } });
    await get.body.text();
    expect(get.headers['access-control-allow-origin']).toBeUndefined();
  });
});
