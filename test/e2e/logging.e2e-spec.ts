import { Logger } from '@nestjs/common';
import OpenAI from 'openai';
import { appLogger } from '../../src/app.factory';
import { requestScope, tagOf } from '../../src/common/http/request-scope';
import { loadConfig } from '../../src/config/app-config';
import { ChildGateway, killChildGateways, startChildGateway } from '../helpers/child-gateway';
import { completion, FakeProvider } from '../helpers/fake-provider';
import { ADMIN_TOKEN, TestGateway } from '../helpers/gateway';
import { closeAll, startWithFakeProvider } from '../helpers/setup';

const MODEL = 'deepseek-v4-flash';
const PROVIDER_KEY = 'sk-live-provider-secret-4f9a2b7c1d';
const METRICS_TOKEN = 'metrics-scraper-secret-8e1d5c3a';
const PROMPT = 'my confidential prompt 93b1e7';

type Line = Record<string, unknown>;

describe('logs (a real gateway process, LOG_LEVEL=debug)', () => {
  let gw: TestGateway;
  let provider: FakeProvider;
  let child: ChildGateway;
  let key: string;
  let keyId: string;
  let workspaceId: string;
  const requestIds: string[] = [];
  let refusedId: string;
  let lines: Line[];
  let raw: string;

  beforeAll(async () => {
    ({ gw, provider } = await startWithFakeProvider({ providers: 'deepseek', gateway: { env: { NEXO_ROLE: 'api' } } }));
    ({ key, keyId, workspaceId } = await gw.workspaceWithKey());
    // the provider key and base URL from the environment, as an operator sets them
    child = await startChildGateway(
      gw.env({
        LOG_LEVEL: 'debug',
        NEXO_ROLE: 'all',
        METRICS_TOKEN,
        PROVIDER_DEEPSEEK_BASE_URL: provider.url,
        PROVIDER_DEEPSEEK_API_KEY: PROVIDER_KEY,
      }),
    );
    const client = new OpenAI({ apiKey: key, baseURL: `${child.url}/v1`, maxRetries: 0 });
    const messages = [{ role: 'user' as const, content: PROMPT }];

    const json = await client.chat.completions.create({ model: MODEL, messages }).withResponse();
    requestIds.push(json.response.headers.get('x-request-id')!);
    const { data: stream, response } = await client.chat.completions.create({ model: MODEL, messages, stream: true }).withResponse();
    for await (const _ of stream);
    requestIds.push(response.headers.get('x-request-id')!);

    // the provider refuses our key, echoing it: the gateway logs why, with the request's id
    provider.respond(() => ({ status: 401, json: { error: { message: `Incorrect API key provided: ${PROVIDER_KEY}` } } }));
    const refused = await fetch(`${child.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
      body: JSON.stringify({ model: MODEL, messages }),
    });
    expect(refused.status).toBe(502);
    refusedId = refused.headers.get('x-request-id')!;
    provider.respond((req) => ({ json: completion(req.body.model) }));

    // operators' and strangers' calls
    const admin = await fetch(`${child.url}/admin/workspaces/${workspaceId}`, { headers: { authorization: `Bearer ${ADMIN_TOKEN}` } });
    expect(admin.status).toBe(200);
    expect((await fetch(`${child.url}/metrics`, { headers: { authorization: `Bearer ${METRICS_TOKEN}` } })).status).toBe(200);
    const wrongKey = `${key.slice(0, -6)}AAAAAA`;
    expect((await fetch(`${child.url}/v1/models`, { headers: { authorization: `Bearer ${wrongKey}` } })).status).toBe(401);

    // SIGTERM: the process flushes its log before it exits
    const exit = new Promise((resolve) => child.proc.once('exit', resolve));
    child.proc.kill('SIGTERM');
    await exit;
    raw = child.output();
    lines = raw
      .split('\n')
      .filter((l) => l.trim() !== '')
      .map((l) => JSON.parse(l) as Line);
  }, 90_000);

  afterAll(async () => {
    await killChildGateways();
    await closeAll(gw, provider);
  });

  it('writes one JSON object per line, at the level asked for', () => {
    expect(lines.length).toBeGreaterThan(10);
    for (const line of lines) expect(line).toMatchObject({ level: expect.any(String), time: expect.any(String), msg: expect.any(String) });
    expect(lines.some((l) => l.level === 'debug' || l.context === 'RoutesResolver')).toBe(true);
  });

  it('never writes an API key, the admin token, the metrics token, a provider key or a prompt', () => {
    for (const secret of [key, key.slice(4), ADMIN_TOKEN, METRICS_TOKEN, PROVIDER_KEY, PROMPT]) expect(raw).not.toContain(secret);
  });

  it('writes one access line per request: method, route template, status, latency, request id, key id and model', () => {
    for (const id of requestIds) {
      const access = lines.filter((l) => l.msg === 'request' && l.request_id === id);
      expect(access).toEqual([
        expect.objectContaining({
          level: 'info',
          method: 'POST',
          route: '/v1/chat/completions',
          status: 200,
          latency_ms: expect.any(Number),
          request_id: id,
          key_id: keyId,
          workspace_id: workspaceId,
          model: MODEL,
        }),
      ]);
    }
    const admin = lines.find((l) => l.msg === 'request' && l.route === '/admin/workspaces/:id');
    expect(admin).toMatchObject({ method: 'GET', status: 200 });
    expect(admin).not.toHaveProperty('key_id');
    expect(lines.find((l) => l.msg === 'request' && l.route === '/v1/models')).toMatchObject({ status: 401 });
  });

  it('puts the request id on every line a request causes', () => {
    const caused = lines.filter((l) => l.request_id === refusedId);
    expect(caused.map((l) => l.msg)).toEqual(expect.arrayContaining(['request', expect.stringContaining('refused our credentials')]));
    expect(caused.find((l) => l.msg === 'request')).toMatchObject({ status: 502, route: '/v1/chat/completions' });
    // lines of no request carry no id
    expect(lines.find((l) => l.context === 'NestApplication')).not.toHaveProperty('request_id');
  });
});

describe('the logger behind Nest', () => {
  it('scrubs API keys, bearer tokens and the configured secrets from whatever a module logs, and tags the request', async () => {
    const written: string[] = [];
    const config = loadConfig({
      NODE_ENV: 'production',
      ADMIN_TOKEN,
      JWT_SECRET: 'j'.repeat(40),
      NEXO_ENCRYPTION_KEY: Buffer.alloc(32, 1).toString('base64'),
      METRICS_TOKEN,
      PROVIDER_OPENAI_API_KEY: PROVIDER_KEY,
      LOG_LEVEL: 'log',
    });
    const logger = appLogger(config, { write: (line: string) => written.push(line) });
    const apiKey = `nxr_${'A1b2C3d4'.repeat(6)}x`;
    const careless = new Logger('Careless');
    Logger.overrideLogger(logger);
    try {
      requestScope.run({ id: 'req_test_1', upstreamSeconds: 0, provider: null }, () => {
        careless.warn(`key ${apiKey}, header Bearer ${ADMIN_TOKEN}, provider ${PROVIDER_KEY}, scraper ${METRICS_TOKEN}`);
        careless.error(new Error(`failed with ${PROVIDER_KEY}`));
        careless.debug('below LOG_LEVEL');
      });
      // outside any scope, as the proxy routes log: the request's id is passed along
      careless.warn('provider trouble', tagOf('req_test_2'));
    } finally {
      Logger.overrideLogger(false);
    }
    await logger.flush();
    const lines = written.map((l) => JSON.parse(l) as Line);
    expect(lines).toHaveLength(3);
    for (const secret of [apiKey, ADMIN_TOKEN, PROVIDER_KEY, METRICS_TOKEN]) expect(written.join('')).not.toContain(secret);
    expect(lines[0]).toMatchObject({ level: 'warn', context: 'Careless', request_id: 'req_test_1' });
    expect(lines[0].msg).toBe('key nxr_[redacted], header Bearer [redacted], provider [redacted], scraper [redacted]');
    expect(lines[1]).toMatchObject({ level: 'error', msg: 'failed with [redacted]', stack: expect.stringContaining('[redacted]') });
    expect(lines[2]).toMatchObject({ level: 'warn', context: 'Careless', msg: 'provider trouble', request_id: 'req_test_2' });
  });
});
