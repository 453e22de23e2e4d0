import { Logger } from '@nestjs/common';
import { createServer, Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { ResolvedProvider } from '../../src/catalog/catalog.service';
import { ClientAbort } from '../../src/chat/client-abort';
import { UpstreamClient, UpstreamError } from '../../src/chat/upstream/upstream.client';
import { ApiError } from '../../src/common/errors/api-error';
import { loadConfig } from '../../src/config/app-config';

/** How a failed send is classified decides whether it is retried, sent elsewhere, and counted by the circuit. */
describe('UpstreamClient failures', () => {
  let server: Server;
  let baseUrl: string;
  let client: UpstreamClient;
  const provider = (overrides: Partial<ResolvedProvider> = {}): ResolvedProvider => ({
    id: 'p',
    baseUrl,
    apiKey: 'sk-test',
    maxConnections: 8,
    maxTokensField: 'both',
    ...overrides,
  });
  const failure = async (c: UpstreamClient, p: ResolvedProvider, path: string) =>
    c.post(p, path, {}, new ClientAbort(), 'req_test').then(
      () => null,
      (err: unknown) => err,
    );

  beforeAll(async () => {
    jest.spyOn(Logger.prototype, 'warn').mockImplementation(() => undefined);
    jest.spyOn(Logger.prototype, 'error').mockImplementation(() => undefined);
    server = createServer((req, res) => {
      const status = Number(req.url!.split('/').pop());
      res.writeHead(status, { 'content-type': 'application/json', ...(status === 429 ? { 'retry-after': '1' } : {}) });
      res.end(JSON.stringify({ error: { message: `status ${status}` } }));
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
    baseUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    client = new UpstreamClient(loadConfig({ NODE_ENV: 'test' }));
  });
  afterAll(async () => {
    await client.onApplicationShutdown();
    await new Promise<void>((resolve) => server.close(() => resolve()));
    jest.restoreAllMocks();
  });

  it.each([
    [500, 502, 'server_error', true],
    [503, 502, 'server_error', true],
    [429, 503, 'rate_limited', true],
    [401, 502, 'credentials', false],
    [403, 502, 'credentials', false],
    [408, 504, 'timeout', false],
  ])('a provider %i is %i, %s (retried: %s)', async (upstream, answered, reason, retryable) => {
    const err = await failure(client, provider(), `/${upstream}`);
    expect(err).toBeInstanceOf(UpstreamError);
    expect(err).toMatchObject({ status: answered, code: 'gateway_error', reason, retryable });
    if (upstream === 429) expect((err as UpstreamError).retryAfterMs).toBe(1_000);
  });

  it.each([400, 404, 422])("a provider %i is the caller's: neither retried nor sent elsewhere", async (upstream) => {
    const err = await failure(client, provider(), `/${upstream}`);
    expect(err).toBeInstanceOf(ApiError);
    expect(err).not.toBeInstanceOf(UpstreamError);
    expect(err).toMatchObject({ status: upstream, code: 'invalid_request_error' });
  });

  it('a refused connection is unreachable (retried)', async () => {
    const closed = createServer();
    await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', () => resolve()));
    const port = (closed.address() as AddressInfo).port;
    await new Promise<void>((resolve) => closed.close(() => resolve()));
    const err = await failure(client, provider({ id: 'dead', baseUrl: `http://127.0.0.1:${port}` }), '/x');
    expect(err).toMatchObject({ status: 502, reason: 'unreachable', retryable: true });
  });

  it('in production, a provider without a key is a failure its fallbacks can stand in for', async () => {
    const production = new UpstreamClient(
      loadConfig({
        NODE_ENV: 'production',
        ADMIN_TOKEN: 'a'.repeat(32),
        JWT_SECRET: 'j'.repeat(32),
        NEXO_ENCRYPTION_KEY: Buffer.alloc(32, 1).toString('base64'),
      }),
    );
    const err = await failure(production, provider({ apiKey: null }), '/200');
    expect(err).toMatchObject({ status: 502, reason: 'credentials', retryable: false });
    expect((err as Error).message).not.toContain(baseUrl);
  });
});
