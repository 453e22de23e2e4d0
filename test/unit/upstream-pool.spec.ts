import { Logger } from '@nestjs/common';
import type { Request } from 'express';
import { createServer, Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { isSameOrigin } from '../../src/auth/queue-dashboard.middleware';
import type { ResolvedProvider } from '../../src/catalog/catalog.service';
import { ClientAbort } from '../../src/chat/client-abort';
import { scrubProviderSecrets, UpstreamClient, UpstreamResponse } from '../../src/chat/upstream/upstream.client';
import { ApiError } from '../../src/common/errors/api-error';
import { safeMicros } from '../../src/common/money';
import { loadConfig } from '../../src/config/app-config';

describe('scrubProviderSecrets', () => {
  const provider = { baseUrl: 'https://user:pa55@api.example.com:8443/v1', apiKey: 'sk-secret/+key' };

  it('replaces the key (raw, URL- or JSON-encoded), the base URL, its host and credentials', () => {
    const message = [
      'Bearer sk-secret/+key',
      `key=${encodeURIComponent('sk-secret/+key')}`,
      'POST https://user:pa55@api.example.com:8443/v1/chat/completions',
      'host API.EXAMPLE.COM:8443',
      'resolved api.example.com',
      'pass pa55',
    ].join('; ');
    const scrubbed = scrubProviderSecrets(message, provider);
    expect(scrubbed).not.toMatch(/sk-secret|api\.example\.com|pa55|sk-secret%2F/i);
    expect(scrubbed).toContain('[redacted]');
    expect(scrubbed.startsWith('Bearer [redacted]')).toBe(true);
  });

  it('leaves a message without secrets alone, and copes with a provider without a key', () => {
    expect(scrubProviderSecrets("'messages' is required", provider)).toBe("'messages' is required");
    expect(scrubProviderSecrets('see http://127.0.0.1:9/v1', { baseUrl: 'http://127.0.0.1:9/v1', apiKey: null })).toBe('see [redacted]');
  });
});

describe('isSameOrigin', () => {
  const req = (headers: Record<string, string>) => ({ headers }) as unknown as Request;
  it.each([
    [{ 'sec-fetch-site': 'same-origin' }, true],
    [{ 'sec-fetch-site': 'cross-site', origin: 'http://gw.local:3001', host: 'gw.local:3001' }, false],
    [{ 'sec-fetch-site': 'same-site' }, false],
    [{ origin: 'http://gw.local:3001', host: 'gw.local:3001' }, true],
    [{ origin: 'http://GW.local:3001', host: 'gw.local:3001' }, true],
    [{ origin: 'http://gw.local:3002', host: 'gw.local:3001' }, false],
    [{ origin: 'https://evil.example', host: 'gw.local:3001' }, false],
    [{ origin: 'null', host: 'gw.local:3001' }, false],
    [{ host: 'gw.local:3001' }, false],
  ])('%j → %s', (headers, expected) => {
    expect(isSameOrigin(req(headers))).toBe(expected);
  });
});

describe('safeMicros', () => {
  it('is exact within ±(2^53-1) and clamps outside, never throwing', () => {
    expect(safeMicros('9007199254740991')).toBe(Number.MAX_SAFE_INTEGER);
    expect(safeMicros('-42')).toBe(-42);
    expect(safeMicros('9007199254740993')).toBe(Number.MAX_SAFE_INTEGER);
    expect(safeMicros('-99999999999999999999')).toBe(-Number.MAX_SAFE_INTEGER);
    expect(safeMicros(2n ** 62n)).toBe(Number.MAX_SAFE_INTEGER);
  });
});

describe('UpstreamClient pool', () => {
  let server: Server;
  let baseUrl: string;
  /** Responses the server holds open until the test ends them. */
  const open = new Set<() => void>();
  /** Requests to /silent: each resolves once the gateway closed its connection. */
  const silent: Promise<boolean>[] = [];
  let client: UpstreamClient;

  beforeAll(async () => {
    Logger.overrideLogger(['error']);
    server = createServer((req, res) => {
      req.resume();
      req.on('end', () => {
        if (req.url?.endsWith('/silent')) {
          // answers nothing: the test looks at when the gateway closes the connection
          silent.push(new Promise((resolve) => req.socket.once('close', () => resolve(true))));
          return;
        }
        if (req.url?.endsWith('/hold')) {
          res.writeHead(200, { 'content-type': 'text/event-stream' });
          res.write('data: {}\n\n');
          open.add(() => res.end('data: [DONE]\n\n'));
          return;
        }
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end('{"ok":true}');
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    baseUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}/v1`;
    client = new UpstreamClient(loadConfig({ NODE_ENV: 'test', UPSTREAM_TIMEOUT_MS: '400', UPSTREAM_CONNECT_WAIT_MS: '150' }));
  });
  afterAll(async () => {
    for (const end of open) end();
    await client.onApplicationShutdown();
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });

  const provider = (id: string, maxConnections: number): ResolvedProvider => ({
    id,
    baseUrl,
    apiKey: 'sk-test',
    maxConnections,
    maxTokensField: 'both',
  });
  const post = (p: ResolvedProvider, path = '/ok', signal = new ClientAbort()) => client.post(p, path, {}, signal, 'req_test');
  const read = async (r: UpstreamResponse) => {
    for await (const _ of r.body);
  };
  const refused = async (promise: Promise<unknown>) => {
    const err = await promise.then(
      () => null,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(ApiError);
    return err as ApiError;
  };

  it('refuses with 503 gateway_error and Retry-After after the bounded wait, and frees the slot when the body is read', async () => {
    const p = provider('read', 1);
    const first = await post(p);
    const started = Date.now();
    const err = await refused(post(p));
    expect(Date.now() - started).toBeGreaterThanOrEqual(140);
    expect(err).toMatchObject({ status: 503, code: 'gateway_error' });
    expect(err.headers['retry-after']).toBe('1');
    expect(client.inFlight('read')).toBe(1);
    await read(first);
    expect(client.inFlight('read')).toBe(0);
    await read(await post(p));
  });

  it('hands a freed slot to the request waiting for it', async () => {
    const p = provider('handover', 1);
    const first = await post(p);
    const waiting = post(p);
    setTimeout(() => void read(first), 50);
    await read(await waiting);
    expect(client.inFlight('handover')).toBe(0);
  });

  it('frees the slot when the body is destroyed, when the client aborts, and when it waited and left', async () => {
    const p = provider('destroyed', 1);
    const held = await post(p, '/hold');
    held.body.destroy?.();
    await new Promise((r) => setImmediate(r));
    expect(client.inFlight('destroyed')).toBe(0);

    const controller = new ClientAbort();
    const stream = await post(p, '/hold', controller);
    const waiter = new ClientAbort();
    const waiting = post(p, '/ok', waiter);
    waiter.abort();
    expect(await refused(waiting)).toMatchObject({ status: 499 });
    controller.abort();
    await read(stream).catch(() => undefined);
    expect(client.inFlight('destroyed')).toBe(0);
    await read(await post(p));
  });

  it('a client that leaves before the provider answered aborts the provider request (499, slot freed)', async () => {
    const p = provider('left', 1);
    const left = new ClientAbort();
    const pending = post(p, '/silent', left);
    while (silent.length === 0) await new Promise((r) => setTimeout(r, 5));
    left.abort();
    expect(await refused(pending)).toMatchObject({ status: 499 });
    // the provider sees its connection closed long before the 400 ms upstream timeout
    await expect(Promise.race([silent[0], new Promise((r) => setTimeout(() => r(false), 300))])).resolves.toBe(true);
    expect(client.inFlight('left')).toBe(0);
    expect(left.listenerCount('abort')).toBe(0);
  });

  it('frees the slot of a body that is never read', async () => {
    const p = provider('unread', 1);
    await post(p); // never read
    expect(client.inFlight('unread')).toBe(1);
    await new Promise((r) => setTimeout(r, 600));
    expect(client.inFlight('unread')).toBe(0);
    await read(await post(p));
  });

  it('frees the slot when the provider cannot be reached', async () => {
    const p = { ...provider('unreachable', 1), baseUrl: 'http://127.0.0.1:9/v1' };
    expect(await refused(post(p))).toMatchObject({ status: 502 });
    expect(client.inFlight('unreachable')).toBe(0);
  });
});
