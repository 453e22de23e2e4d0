import { FakeProvider } from '../helpers/fake-provider';
import { ADMIN_TOKEN, TestGateway } from '../helpers/gateway';
import { closeAll, startWithFakeProvider } from '../helpers/setup';

/** The value of one Prometheus sample line, e.g. `name{a="b"} 3`. */
function sample(metrics: string, name: string, labels: Record<string, string>): number | undefined {
  const wanted = Object.entries(labels).map(([k, v]) => `${k}="${v}"`);
  for (const line of metrics.split('\n')) {
    if (!line.startsWith(`${name}{`)) continue;
    const labelText = line.slice(name.length + 1, line.indexOf('}'));
    if (wanted.every((w) => labelText.split(',').includes(w))) return Number(line.slice(line.lastIndexOf(' ') + 1));
  }
  return undefined;
}

const METRICS_TOKEN = 'test-metrics-token-0123456789';

describe('operations endpoints', () => {
  let gw: TestGateway;
  let provider: FakeProvider;

  beforeAll(async () => {
    // no worker here, so settlements stay queued and holds stay open for the gauges to show
    ({ gw, provider } = await startWithFakeProvider({ providers: 'deepseek', gateway: { env: { NEXO_ROLE: 'api', METRICS_TOKEN } } }));
  });
  afterAll(() => closeAll(gw, provider));

  it('GET /health/live and /health/ready answer without credentials', async () => {
    expect((await gw.http().get('/health/live').expect(200)).body).toEqual({ status: 'ok' });
    expect((await gw.http().get('/health/ready').expect(200)).body).toMatchObject({
      status: 'ok',
      checks: { postgres: 'up', redis: 'up' },
    });
  });

  it('GET /metrics counts requests by status, and shows queued settlements and open holds', async () => {
    const { key } = await gw.workspaceWithKey();
    const chat = (model: string) =>
      gw
        .http()
        .post('/v1/chat/completions')
        .set('authorization', `Bearer ${key}`)
        .send({ model, messages: [{ role: 'user', content: 'hi' }] });
    await chat('deepseek-v4-flash').expect(200);
    await chat('deepseek-v4-flash').expect(200);
    await chat('no-such-model').expect(404);

    const res = await gw.http().get('/metrics').set('authorization', `Bearer ${ADMIN_TOKEN}`).expect(200);
    expect(res.headers['content-type']).toMatch(/^text\/plain/);
    const text = res.text;
    expect(sample(text, 'nexo_gateway_requests_total', { endpoint: '/chat/completions', status: '200' })).toBe(2);
    expect(sample(text, 'nexo_gateway_requests_total', { endpoint: '/chat/completions', status: '404' })).toBe(1);
    expect(sample(text, 'nexo_billing_holds_total', { outcome: 'held' })).toBe(2);
    expect(sample(text, 'nexo_queue_jobs', { queue: 'usage', state: 'waiting' })).toBeGreaterThanOrEqual(2);
    expect(sample(text, 'nexo_billing_open_holds', { measure: 'count', expired: 'false' })).toBe(2);
    expect(sample(text, 'nexo_billing_open_holds', { measure: 'micros', expired: 'false' })).toBeGreaterThan(0);
    expect(text).toContain('nexo_process_cpu_user_seconds_total');
    // nothing secret in what operators scrape
    expect(text).not.toContain(key);
    expect(text).not.toContain('sk-provider-secret-key');
  });

  it('GET /metrics shows revenue only to the scraper token or the admin token', async () => {
    const res = await gw.http().get('/metrics');
    expect(res.status).toBe(401);
    expect(res.body.error).toMatchObject({ type: 'invalid_request_error' });
    expect(res.text).not.toContain('nexo_billing');
    await gw.http().get('/metrics').set('authorization', 'Bearer wrong-token-0123456789abcdef').expect(401);
    await gw.http().get('/metrics').set('authorization', `Bearer ${METRICS_TOKEN}`).expect(200);
    await gw.http().get('/metrics').set('authorization', `Bearer ${ADMIN_TOKEN}`).expect(200);
  });
});
