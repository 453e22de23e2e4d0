import { execFile, spawn } from 'node:child_process';
import { connect } from 'node:net';
import { join } from 'node:path';
import { SIMULATOR_FINGERPRINT } from '../../src/chat/upstream/simulator';
import { DEMO_CREDIT_MICROS, DEMO_REFERENCE } from '../../src/setup/demo-workspace.service';
import { killChild, killChildGateways, startChildGateway } from '../helpers/child-gateway';
import { FakeProvider } from '../helpers/fake-provider';
import { TestGateway } from '../helpers/gateway';
import { closeAll, startGatewayUsing } from '../helpers/setup';
import { waitFor } from '../helpers/wait';

const DIST = join(__dirname, '..', '..', 'dist', 'src');
const MODEL = 'deepseek-v4-flash';
const chatBody = { model: MODEL, messages: [{ role: 'user' as const, content: 'Explain NexoRouter in Spanish.' }] };

function portIsClosed(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1');
    socket.once('connect', () => {
      socket.destroy();
      resolve(false);
    });
    socket.once('error', () => resolve(true));
  });
}

afterAll(() => killChildGateways());

describe('NEXO_ROLE: HTTP and workers scale apart', () => {
  let provider: FakeProvider;
  let api: TestGateway;

  beforeAll(async () => {
    provider = await FakeProvider.start();
    api = await startGatewayUsing(provider, {
      providers: 'deepseek',
      gateway: { env: { NEXO_ROLE: 'api', SWEEP_INTERVAL_MS: '3600000' } },
    });
  });
  afterAll(() => closeAll(api, provider));

  it('an api-only gateway queues settlements that a separate worker-only process applies', async () => {
    const { workspaceId, key } = await api.workspaceWithKey(1_000_000);
    const res = await api.http().post('/v1/chat/completions').set('authorization', `Bearer ${key}`).send(chatBody).expect(200);
    const requestId = res.headers['x-request-id'];
    // no worker in the api process: the hold stays until one runs
    await new Promise((r) => setTimeout(r, 300));
    expect(await api.db.query('SELECT 1 FROM holds WHERE request_id = $1', [requestId])).toHaveLength(1);

    const workerPort = 20_000 + Math.floor(Math.random() * 20_000);
    const worker = spawn(process.execPath, [join(DIST, 'main.js')], {
      env: { ...process.env, ...api.env({ NEXO_ROLE: 'worker', PORT: String(workerPort) }) },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    worker.stdout.on('data', (d) => (output += d));
    worker.stderr.on('data', (d) => (output += d));
    try {
      await waitFor(
        'the worker process to settle the request',
        async () =>
          (await api.db.query('SELECT 1 FROM ledger_entries WHERE reference = $1', [`req:${requestId}`])).length ? true : undefined,
        20_000,
      ).catch((err: Error) => {
        throw new Error(`${err.message}\n--- worker output ---\n${output}`);
      });
      expect(await api.db.query('SELECT 1 FROM holds WHERE request_id = $1', [requestId])).toHaveLength(0);
      const [log] = await api.db.query('SELECT status, cost_micros FROM usage_logs WHERE request_id = $1', [requestId]);
      expect(log.status).toBe(200);
      expect(Number(log.cost_micros)).toBe(Number(res.headers['x-nexo-cost-micros']));
      const [ws] = await api.db.query('SELECT balance_micros FROM workspaces WHERE id = $1', [workspaceId]);
      expect(Number(ws.balance_micros)).toBe(1_000_000 - Number(log.cost_micros));
      // a worker serves no HTTP
      expect(await portIsClosed(workerPort)).toBe(true);
    } finally {
      await killChild(worker);
    }
  });
});

describe('the development simulator', () => {
  let dev: TestGateway;
  let prod: TestGateway;

  beforeAll(async () => {
    // the seeded providers have no API key in either gateway
    dev = await TestGateway.start();
    prod = await TestGateway.start({
      env: { NODE_ENV: 'production', JWT_SECRET: 'j'.repeat(40), NEXO_ENCRYPTION_KEY: Buffer.alloc(32, 3).toString('base64') },
    });
  });
  afterAll(() => closeAll(dev, prod));

  it('answers for a provider without a key outside production, clearly labelled, and bills it', async () => {
    const { key, workspaceId } = await dev.workspaceWithKey();
    const { data, response } = await dev.openai(key).chat.completions.create(chatBody).withResponse();
    expect(response.headers.get('x-nexo-simulated')).toBe('true');
    expect(data.system_fingerprint).toBe(SIMULATOR_FINGERPRINT);
    expect(data.model).toBe(MODEL);
    expect(data.choices[0].message.content).toContain('[NexoRouter development simulator]');
    expect(data.usage!.completion_tokens).toBeGreaterThan(0);

    const stream = await dev.openai(key).chat.completions.create({ ...chatBody, stream: true });
    let text = '';
    for await (const chunk of stream) text += chunk.choices[0]?.delta?.content ?? '';
    expect(text).toContain('[NexoRouter development simulator]');

    await dev.settled();
    const logs = await dev.db.query('SELECT cost_micros FROM usage_logs WHERE workspace_id = $1 AND status = 200', [workspaceId]);
    expect(logs).toHaveLength(2);
  });

  it('is never used in production: a provider without a key is a gateway error', async () => {
    const { key } = await prod.workspaceWithKey();
    const res = await prod.http().post('/v1/chat/completions').set('authorization', `Bearer ${key}`).send(chatBody);
    expect(res.status).toBe(502);
    expect(res.body.error.code).toBe('gateway_error');
    expect(res.headers['x-nexo-simulated']).toBeUndefined();
    expect(res.body.error.message).not.toMatch(/https?:\/\//);
  });
});

describe('first start in development: the demo workspace', () => {
  let gw: TestGateway;

  beforeAll(async () => {
    gw = await TestGateway.start();
  });
  afterAll(() => closeAll(gw));

  it('is created and funded on the first start only, with its key printed once, and key:create makes more', async () => {
    const env = gw.env({ NODE_ENV: 'development', NEXO_SEED_DEMO: 'true' });
    const first = await startChildGateway(env);
    const printed = /shown this once:\s+(nxr_[0-9A-Za-z]+)/.exec(first.output());
    expect(printed).not.toBeNull();
    const demoKey = printed![1];
    await killChild(first.proc);

    const second = await startChildGateway(env);
    expect(second.output()).not.toContain('shown this once');
    await killChild(second.proc);

    const [entry] = await gw.db.query('SELECT workspace_id, amount_micros FROM ledger_entries WHERE reference = $1', [DEMO_REFERENCE]);
    expect(Number(entry.amount_micros)).toBe(DEMO_CREDIT_MICROS);
    const info = await gw.http().get('/v1/key').set('authorization', `Bearer ${demoKey}`).expect(200);
    expect(info.body.workspace).toMatchObject({ id: entry.workspace_id, balance_micros: DEMO_CREDIT_MICROS });

    const stdout = await new Promise<string>((resolve, reject) =>
      execFile(
        process.execPath,
        [join(DIST, 'cli', 'create-key.js'), '--name', 'second key'],
        { env: { ...process.env, ...env }, timeout: 30_000 },
        (err, out, errOut) => (err ? reject(new Error(`${err.message}\n${out}${errOut}`)) : resolve(out)),
      ),
    );
    const created = /(nxr_[0-9A-Za-z]+)/.exec(stdout);
    expect(created).not.toBeNull();
    expect(created![1]).not.toBe(demoKey);
    const again = await gw.http().get('/v1/key').set('authorization', `Bearer ${created![1]}`).expect(200);
    expect(again.body).toMatchObject({ name: 'second key', workspace: { id: entry.workspace_id } });
  });
});
