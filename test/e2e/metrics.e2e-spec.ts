import { completion, FakeProvider } from '../helpers/fake-provider';
import { TestGateway } from '../helpers/gateway';
import { closeAll, startWithFakeProvider } from '../helpers/setup';

const METRICS_TOKEN = 'test-metrics-token-metrics-spec-0123';
const MODEL = 'deepseek-v4-flash';

interface Family {
  name: string;
  type: string;
  metrics: Array<{ value?: string; labels?: Record<string, string> }>;
}

// the parser ships no type declarations
// eslint-disable-next-line @typescript-eslint/no-require-imports
const parsePrometheusTextFormat = require('parse-prometheus-text-format') as (text: string) => Family[];

/** /metrics, scraped as Prometheus does, and parsed with a real Prometheus text parser. */
async function scrape(gw: TestGateway): Promise<{ text: string; families: Family[] }> {
  const res = await gw.http().get('/metrics').set('authorization', `Bearer ${METRICS_TOKEN}`).expect(200);
  expect(res.headers['content-type']).toMatch(/^text\/plain; version=0\.0\.4/);
  return { text: res.text, families: parsePrometheusTextFormat(res.text) };
}

/**
 * The series of a labelled histogram. The parser folds a histogram's series into one when they
 * carry labels, so its `_count`, `_sum` and `_bucket` samples are read from the same text with
 * the TYPE line left out (each line is still parsed by the parser).
 */
function histogramSeries(text: string, name: string): Array<{ labels: Record<string, string>; count: number; sum: number }> {
  const untyped = parsePrometheusTextFormat(text.replace(new RegExp(`^# TYPE ${name} histogram$`, 'm'), ''));
  const samples = (suffix: string) => untyped.filter((f) => f.name === `${name}${suffix}`).flatMap((f) => f.metrics);
  const sums = samples('_sum');
  return samples('_count').map((c) => ({
    labels: c.labels ?? {},
    count: Number(c.value),
    sum: Number(sums.find((s) => JSON.stringify(s.labels) === JSON.stringify(c.labels))?.value),
  }));
}

function counterValue(families: Family[], name: string, labels: Record<string, string>): number | undefined {
  const family = families.find((f) => f.name === name);
  const sample = family?.metrics.find((m) => Object.entries(labels).every(([k, v]) => m.labels?.[k] === v));
  return sample ? Number(sample.value) : undefined;
}

describe('Prometheus metrics', () => {
  let gw: TestGateway;
  let provider: FakeProvider;
  let key: string;

  beforeAll(async () => {
    ({ gw, provider } = await startWithFakeProvider({ providers: 'deepseek', gateway: { env: { METRICS_TOKEN } } }));
    ({ key } = await gw.workspaceWithKey());
  });
  afterAll(() => closeAll(gw, provider));

  const chat = (body: Record<string, unknown>) =>
    gw
      .http()
      .post('/v1/chat/completions')
      .set('authorization', `Bearer ${key}`)
      .send({ messages: [{ role: 'user', content: 'hi' }], ...body });

  it('parse as Prometheus text, with request durations by route template, method and status, never raw paths', async () => {
    const madeUpModel = 'client-made-model-7f3a9c';
    const someId = '5b0c2a1e-3f4d-4e5a-9b6c-7d8e9f0a1b2c';
    await chat({ model: MODEL }).expect(200);
    await chat({ model: MODEL }).expect(200);
    await chat({ model: MODEL, stream: true }).expect(200);
    await chat({ model: madeUpModel }).expect(404);
    await gw.http().get(`/dashboard/keys/${someId}`).expect(401);
    await gw.http().get(`/no/such/route/${someId}`).expect(404);
    await gw.http().get(`/v1/models/${madeUpModel}`).set('authorization', `Bearer ${key}`).expect(404);
    await gw.http().get('/health/live').expect(200);

    const { text, families } = await scrape(gw);
    const family = families.find((f) => f.name === 'http_request_duration_seconds');
    expect(family?.type).toBe('HISTOGRAM');
    const series = histogramSeries(text, 'http_request_duration_seconds');
    const count = (labels: Record<string, string>) => series.find((s) => JSON.stringify(s.labels) === JSON.stringify(labels))?.count;

    expect(count({ method: 'POST', route: '/v1/chat/completions', status: '200' })).toBe(3);
    expect(count({ method: 'POST', route: '/v1/chat/completions', status: '404' })).toBe(1);
    expect(count({ method: 'GET', route: '/dashboard/keys/:id', status: '401' })).toBe(1);
    expect(count({ method: 'GET', route: '/v1/models/*id', status: '404' })).toBe(1);
    expect(count({ method: 'GET', route: 'unmatched', status: '404' })).toBe(1);
    expect(count({ method: 'GET', route: '/health/live', status: '200' })).toBe(1);
    for (const s of series) expect(s.sum).toBeGreaterThan(0);

    // bounded labels: no id, key or client-made model id anywhere in what is scraped
    for (const secretish of [someId, madeUpModel, key, '/no/such/route']) expect(text).not.toContain(secretish);
  });

  it("has the gateway's own overhead, provider latency, tokens and cost by catalogued model", async () => {
    provider.respond((req) => ({ json: completion(req.body.model), delayMs: 200 }));
    await chat({ model: MODEL }).expect(200);
    provider.respond((req) => ({ json: completion(req.body.model) }));
    const { text, families } = await scrape(gw);

    // the provider took 200 ms of this request: the overhead excludes it
    const overhead = histogramSeries(text, 'nexo_gateway_overhead_seconds').find((s) => s.labels.route === '/v1/chat/completions');
    const total = histogramSeries(text, 'http_request_duration_seconds').find(
      (s) => s.labels.route === '/v1/chat/completions' && s.labels.status === '200',
    );
    expect(overhead!.count).toBe(3); // the non-streamed answers
    expect(overhead!.sum).toBeLessThan(total!.sum - 0.2);
    const upstream = histogramSeries(text, 'nexo_upstream_latency_seconds').find((s) => s.labels.provider === 'deepseek');
    expect(upstream!.count).toBe(4);
    expect(upstream!.sum).toBeGreaterThanOrEqual(0.2);

    // DEFAULT_USAGE of the fake provider: 12 prompt and 34 completion tokens per answer
    expect(counterValue(families, 'nexo_tokens_total', { model: MODEL, kind: 'prompt' })).toBe(4 * 12);
    expect(counterValue(families, 'nexo_tokens_total', { model: MODEL, kind: 'completion' })).toBe(4 * 34);
    expect(counterValue(families, 'nexo_billing_cost_micros_total', { model: MODEL })).toBeGreaterThan(0);
  });

  it('counts gateway errors by the provider that caused them', async () => {
    provider.respond(() => ({ status: 401, json: { error: { message: 'bad provider key' } } }));
    await chat({ model: MODEL }).expect(502);
    provider.respond((req) => ({ json: completion(req.body.model) }));
    const { families } = await scrape(gw);
    expect(counterValue(families, 'nexo_upstream_errors_total', { provider: 'deepseek', status: '502' })).toBe(1);
  });

  it('has the settlement queue by state (failed jobs among them) and open holds, read at most every few seconds', async () => {
    const { families } = await scrape(gw);
    const states = families.find((f) => f.name === 'nexo_queue_jobs')!.metrics.map((m) => m.labels?.state);
    expect(states).toEqual(expect.arrayContaining(['waiting', 'active', 'failed']));
    expect(families.find((f) => f.name === 'nexo_billing_open_holds')?.type).toBe('GAUGE');
  });
});
