import { createServer } from 'node:net';
import type { AddressInfo } from 'node:net';
import { ADMIN_TOKEN, TestGateway } from '../helpers/gateway';
import { completion, DEFAULT_USAGE, FakeProvider, streamEvents } from '../helpers/fake-provider';
import { chargesOf, costAt, usageLog } from '../helpers/ledger';
import { closeAll } from '../helpers/setup';
import { waitFor } from '../helpers/wait';

// the public model's prices: whatever provider answers, this is what is charged
const PRICES = { input_price_micros: 270_000, output_price_micros: 1_100_000 };
const cost = costAt(PRICES.input_price_micros, PRICES.output_price_micros);
// long enough for the requests made while a circuit is open, even on a busy machine
const COOLDOWN_MS = 4_000;

/** A local port with nothing listening: connections to it are refused. */
async function deadUrl(): Promise<string> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return `http://127.0.0.1:${port}/v1`;
}

describe('provider failover (end to end)', () => {
  let gw: TestGateway;
  let primary: FakeProvider;
  let backup: FakeProvider;
  let key: string;
  let workspaceId: string;
  let n = 0;

  beforeAll(async () => {
    [primary, backup] = await Promise.all([FakeProvider.start(), FakeProvider.start()]);
    gw = await TestGateway.start({
      env: {
        UPSTREAM_MAX_ATTEMPTS: '3',
        UPSTREAM_RETRY_BASE_MS: '5',
        CIRCUIT_BREAKER_FAILURES: '2',
        CIRCUIT_BREAKER_COOLDOWN_MS: String(COOLDOWN_MS),
      },
    });
    ({ key, workspaceId } = await gw.workspaceWithKey(100_000_000));
  });
  afterAll(() => closeAll(gw, primary, backup));
  beforeEach(() => {
    for (const fake of [primary, backup]) {
      fake.received.length = 0;
      fake.respond((req) =>
        req.body.stream ? { events: streamEvents(req.body.model, ['Hello', ' world']) } : { json: completion(req.body.model) },
      );
    }
  });

  /**
   * A model of its own (circuits are per provider, so each test gets fresh providers): its
   * primary provider at `primaryUrl`, and a fallback provider at the backup fake.
   */
  async function modelWithFallback(primaryUrl: string, withFallback = true): Promise<{ model: string; main: string; spare: string }> {
    n++;
    const main = `main-${n}`;
    const spare = `spare-${n}`;
    await gw
      .admin()
      .put('/admin/providers')
      .send({ id: main, base_url: primaryUrl, api_key: 'sk-main-secret', max_tokens_field: 'max_tokens' })
      .expect(200);
    await gw
      .admin()
      .put('/admin/providers')
      .send({ id: spare, base_url: backup.url, api_key: 'sk-spare-secret', max_tokens_field: 'max_completion_tokens' })
      .expect(200);
    const model = `acme/failover-${n}`;
    await gw
      .admin()
      .put('/admin/models')
      .send({
        id: model,
        provider: main,
        upstream_model: 'primary-model',
        type: 'chat',
        ...PRICES,
        sellable: true,
        fallbacks: withFallback ? [{ provider: spare, upstream_model: 'spare-model' }] : [],
      })
      .expect(200);
    return { model, main, spare };
  }

  const ask = (model: string) =>
    gw
      .openai(key)
      .chat.completions.create({ model, messages: [{ role: 'user', content: 'hi' }], max_tokens: 50 })
      .withResponse();

  it('a provider failing twice and then answering costs one charge, and its log shows 3 attempts', async () => {
    const { model, main } = await modelWithFallback(primary.url);
    let calls = 0;
    primary.respond((req) =>
      ++calls <= 2 ? { status: calls === 1 ? 503 : 500, json: { error: { message: 'overloaded' } } } : { json: completion(req.body.model) },
    );

    const { data, response } = await ask(model);
    expect(data.model).toBe(model);
    expect(primary.received).toHaveLength(3);
    expect(backup.received).toHaveLength(0);

    const requestId = response.headers.get('x-request-id')!;
    const log = await usageLog(gw, requestId);
    expect(log).toMatchObject({ status: 200, provider: main, attempts: 3, model });
    expect(await chargesOf(gw, requestId)).toEqual([cost(DEFAULT_USAGE.prompt_tokens, DEFAULT_USAGE.completion_tokens)]);
    expect(Number(response.headers.get('x-nexo-cost-micros'))).toBe(cost(DEFAULT_USAGE.prompt_tokens, DEFAULT_USAGE.completion_tokens));
  });

  it('a dead primary falls back to the next provider, which gets its own model name and bound field; charged once at the public price', async () => {
    const { model, spare } = await modelWithFallback(await deadUrl());
    const usage = { prompt_tokens: 20, completion_tokens: 7, total_tokens: 27 };
    backup.respond((req) => ({ json: completion(req.body.model, 'from the spare', usage) }));

    const { data, response } = await ask(model);
    expect(data.model).toBe(model);
    expect(data.choices[0].message.content).toBe('from the spare');
    expect(backup.received).toHaveLength(1);
    expect(backup.last().body.model).toBe('spare-model');
    expect(backup.last().body.max_completion_tokens).toBe(50);
    expect(backup.last().body.max_tokens).toBeUndefined();
    expect(backup.last().headers.authorization).toBe('Bearer sk-spare-secret');

    const requestId = response.headers.get('x-request-id')!;
    const log = await usageLog(gw, requestId);
    // three refused connections to the primary, then the spare
    expect(log).toMatchObject({ status: 200, provider: spare, attempts: 4 });
    expect(await chargesOf(gw, requestId)).toEqual([cost(20, 7)]);
    const listed = await gw.admin().get(`/admin/workspaces/${workspaceId}/usage-logs`).expect(200);
    expect(listed.body.data.find((l: { request_id: string }) => l.request_id === requestId)).toMatchObject({
      provider: spare,
      attempts: 4,
      cost_micros: cost(20, 7),
    });
  });

  it('an open circuit sends nothing to the dead provider until its probe; a good probe closes it', async () => {
    const { model, main, spare } = await modelWithFallback(primary.url);
    let healthy = false;
    primary.respond((req) => (healthy ? { json: completion(req.body.model) } : { status: 500, json: { error: { message: 'down' } } }));

    // two requests failing there (three sends each) in a row open the circuit; the spare answers them
    for (let i = 0; i < 2; i++) {
      const { response } = await ask(model);
      expect(await usageLog(gw, response.headers.get('x-request-id')!)).toMatchObject({ provider: spare, attempts: 4 });
    }
    expect(primary.received).toHaveLength(6);

    // open: nothing is sent to the primary, every request goes straight to the spare
    for (let i = 0; i < 3; i++) {
      const { response } = await ask(model);
      expect((await usageLog(gw, response.headers.get('x-request-id')!)).attempts).toBe(1);
    }
    expect(primary.received).toHaveLength(6);
    expect(backup.received).toHaveLength(5);
    const metrics = await gw.http().get('/metrics').set('authorization', `Bearer ${ADMIN_TOKEN}`).expect(200);
    expect(metrics.text).toContain(`nexo_provider_circuit_state{provider="${main}"} 2`);
    expect(metrics.text).toContain(`nexo_upstream_attempt_failures_total{provider="${main}",reason="server_error"} 6`);

    // after the cooldown one probe goes to the primary; it fails: open again, no retry
    await new Promise((r) => setTimeout(r, COOLDOWN_MS + 100));
    const probe = await ask(model);
    expect(primary.received).toHaveLength(7);
    expect((await usageLog(gw, probe.response.headers.get('x-request-id')!)).attempts).toBe(2);
    healthy = true;
    await ask(model);
    expect(primary.received).toHaveLength(7); // reopened for another cooldown

    // the next probe succeeds: the circuit closes and the primary serves again
    await new Promise((r) => setTimeout(r, COOLDOWN_MS + 100));
    const healed = await ask(model);
    expect((await usageLog(gw, healed.response.headers.get('x-request-id')!)).provider).toBe(main);
    await ask(model);
    expect(primary.received).toHaveLength(9);
    expect(backup.received).toHaveLength(7);
  });

  it('when every provider of a model is open, the answer is 503 gateway_error with Retry-After, and nothing is sent', async () => {
    const { model, main } = await modelWithFallback(primary.url, false);
    primary.respond(() => ({ status: 502, json: { error: { message: 'bad gateway' } } }));
    // two requests failing after their three sends each open the circuit
    for (let i = 0; i < 2; i++) {
      const failed = await gw
        .http()
        .post('/v1/chat/completions')
        .set('authorization', `Bearer ${key}`)
        .send({ model, messages: [{ role: 'user', content: 'hi' }] });
      expect(failed.status).toBe(502);
      expect(failed.body.error).toMatchObject({ code: 'gateway_error', type: 'api_error' });
      expect(await usageLog(gw, failed.headers['x-request-id'])).toMatchObject({
        status: 502,
        provider: main,
        attempts: 3,
        cost_micros: '0',
      });
    }

    const refused = await gw
      .http()
      .post('/v1/chat/completions')
      .set('authorization', `Bearer ${key}`)
      .send({ model, messages: [{ role: 'user', content: 'hi' }] });
    expect(refused.status).toBe(503);
    expect(refused.body.error).toMatchObject({ code: 'gateway_error', type: 'api_error', param: null });
    expect(refused.body.error.message).not.toContain('127.0.0.1');
    expect(Number(refused.headers['retry-after'])).toBeGreaterThanOrEqual(1);
    expect(primary.received).toHaveLength(6);
    expect(await usageLog(gw, refused.headers['x-request-id'])).toMatchObject({ status: 503, attempts: 0, cost_micros: '0' });
    await gw.settled();
    const [ws] = await gw.db.query('SELECT held_micros FROM workspaces WHERE id = $1', [workspaceId]);
    expect(Number(ws.held_micros)).toBe(0);
  });

  it("the caller's own error (400 from the provider) is neither retried nor sent to a fallback", async () => {
    const { model } = await modelWithFallback(primary.url);
    primary.respond(() => ({ status: 400, json: { error: { message: 'messages: bad role' } } }));
    const res = await gw
      .http()
      .post('/v1/chat/completions')
      .set('authorization', `Bearer ${key}`)
      .send({ model, messages: [{ role: 'user', content: 'hi' }] });
    expect(res.status).toBe(400);
    expect(primary.received).toHaveLength(1);
    expect(backup.received).toHaveLength(0);
    expect(await usageLog(gw, res.headers['x-request-id'])).toMatchObject({ status: 400, attempts: 1 });
  });

  it('a stream is retried before its first byte, never after: a stream cut midway is not sent again', async () => {
    const { model, main } = await modelWithFallback(primary.url);
    let calls = 0;
    primary.respond((req) =>
      ++calls === 1 ? { status: 503, json: { error: { message: 'busy' } } } : { events: streamEvents(req.body.model, ['one', ' two']) },
    );
    const stream = await gw.openai(key).chat.completions.create({ model, messages: [{ role: 'user', content: 'hi' }], stream: true });
    let text = '';
    for await (const chunk of stream) text += chunk.choices[0]?.delta?.content ?? '';
    expect(text).toBe('one two');
    expect(primary.received).toHaveLength(2);

    // now the provider cuts the stream after its first words: the client gets them and an error
    primary.received.length = 0;
    primary.respond((req) => ({
      events: streamEvents(req.body.model, ['partial', ' answer'], null).slice(0, 2),
      eventGapMs: 30,
      cut: true,
      noDone: true,
    }));
    const res = await fetch(`${gw.baseURL}/chat/completions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
      body: JSON.stringify({ model, messages: [{ role: 'user', content: 'hi' }], stream: true }),
    });
    expect(res.status).toBe(200);
    const body = await res.text();
    expect(body).toContain('partial');
    expect(body).toContain('"code":"gateway_error"');
    expect(primary.received).toHaveLength(1);
    expect(backup.received).toHaveLength(0);
    const log = await usageLog(gw, res.headers.get('x-request-id')!);
    expect(log).toMatchObject({ status: 200, error_code: 'upstream_interrupted', provider: main, attempts: 1 });
    await waitFor('the charge of the cut stream', async () => ((await chargesOf(gw, log.request_id)).length === 1 ? true : undefined));
  });

  describe('PUT /admin/models fallbacks', () => {
    const base = { id: 'acme/fb', provider: 'deepseek', upstream_model: 'x', type: 'chat', ...PRICES, sellable: true };

    it('are validated, stored, listed, kept when omitted and removed with []', async () => {
      const unknown = await gw
        .admin()
        .put('/admin/models')
        .send({
          ...base,
          fallbacks: [
            { provider: 'openai', upstream_model: 'gpt-4o-mini' },
            { provider: 'nope', upstream_model: 'y' },
          ],
        })
        .expect(400);
      expect(unknown.body.error).toMatchObject({ code: 'invalid_request_error', param: 'fallbacks[1].provider' });
      for (const bad of [
        { provider: 'openai' },
        { provider: 'openai', upstream_model: 7 },
        'openai',
        { provider: 'openai', upstream_model: 'm', extra: 1 },
      ]) {
        const res = await gw
          .admin()
          .put('/admin/models')
          .send({ ...base, fallbacks: [bad] });
        expect(res.status).toBe(400);
        expect(res.body.error.code).toBe('invalid_request_error');
      }
      await gw
        .admin()
        .put('/admin/models')
        .send({ ...base, fallbacks: 'openai' })
        .expect(400);

      const fallbacks = [
        { provider: 'openai', upstream_model: 'gpt-4o-mini' },
        { provider: 'dashscope', upstream_model: 'qwen-plus' },
      ];
      const saved = await gw
        .admin()
        .put('/admin/models')
        .send({ ...base, fallbacks })
        .expect(200);
      expect(saved.body.fallbacks).toEqual(fallbacks);
      const listed = async () =>
        ((await gw.admin().get('/admin/models').expect(200)).body.data as Array<{ id: string; fallbacks: unknown }>).find(
          (m) => m.id === base.id,
        );
      expect((await listed())?.fallbacks).toEqual(fallbacks);

      await gw
        .admin()
        .put('/admin/models')
        .send({ ...base, output_price_micros: 1 })
        .expect(200);
      expect((await listed())?.fallbacks).toEqual(fallbacks);
      await gw
        .admin()
        .put('/admin/models')
        .send({ ...base, fallbacks: [] })
        .expect(200);
      expect((await listed())?.fallbacks).toEqual([]);
    });
  });
});
