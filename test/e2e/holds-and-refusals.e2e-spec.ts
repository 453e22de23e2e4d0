import { reconcile } from '../../src/billing/reconcile';
import { NON_TEXT_PART_TOKENS } from '../../src/billing/hold-estimate';
import { completion, FakeProvider, sleep } from '../helpers/fake-provider';
import { TestGateway } from '../helpers/gateway';
import { closeAll, startWithFakeProvider } from '../helpers/setup';
import { waitFor } from '../helpers/wait';

const MODEL = 'deepseek-v4-flash';

describe('what a request holds, forwards and logs (end to end)', () => {
  let gw: TestGateway;
  let provider: FakeProvider;

  beforeAll(async () => {
    ({ gw, provider } = await startWithFakeProvider({ providers: ['deepseek', 'openai'] }));
  });
  afterAll(() => closeAll(gw, provider));
  afterEach(() => provider.respond((req) => ({ json: completion(req.body.model) })));

  const chat = (key: string, body: Record<string, unknown> = {}) =>
    gw
      .http()
      .post('/v1/chat/completions')
      .set('authorization', `Bearer ${key}`)
      .send({ model: MODEL, messages: [{ role: 'user', content: 'hi' }], ...body });

  it('an admin PATCH of a key under traffic never rewrites its spend or holds', async () => {
    const { key, keyId } = await gw.workspaceWithKey(100_000_000, { budget_micros: 50_000_000 });
    let patching = true;
    // four admin clients renaming the key while its requests hold and settle
    const patches = Array.from({ length: 4 }, async (_, client) => {
      for (let i = 0; patching; i++)
        await gw
          .admin()
          .patch(`/admin/keys/${keyId}`)
          .send({ name: `renamed ${client}.${i}` })
          .expect(200);
    });
    for (let round = 0; round < 4; round++) {
      const results = await Promise.all(Array.from({ length: 50 }, () => chat(key)));
      expect(results.every((r) => r.status === 200)).toBe(true);
    }
    patching = false;
    await Promise.all(patches);
    await gw.settled();
    expect(await reconcile(gw.db)).toEqual([]);
    const [k] = await gw.db.query('SELECT spent_micros, held_micros FROM api_keys WHERE id = $1', [keyId]);
    const [{ charged }] = await gw.db.query(`SELECT COALESCE(-sum(amount_micros), 0) AS charged FROM ledger_entries WHERE key_id = $1`, [
      keyId,
    ]);
    expect(Number(k.spent_micros)).toBe(Number(charged));
    expect(Number(k.held_micros)).toBe(0);
  });

  it('holds and charges images by what they can cost, not by the bytes of their URL', async () => {
    const { key } = await gw.workspaceWithKey();
    const image = { type: 'image_url', image_url: { url: 'https://example.com/cat.png', detail: 'high' } };
    const promptTokens = 5 * 25_000;
    provider.respond((req) => ({ json: completion(req.body.model, 'five cats', { prompt_tokens: promptTokens, completion_tokens: 3 }) }));
    const res = await chat(key, {
      model: 'gpt-4o-mini',
      max_tokens: 5,
      messages: [{ role: 'user', content: [{ type: 'text', text: 'count' }, image, image, image, image, image] }],
    });
    expect(res.status).toBe(200);
    const [model] = await gw.db.query(`SELECT input_price_micros, output_price_micros FROM models WHERE id = 'gpt-4o-mini'`);
    const expected = Math.ceil((promptTokens * Number(model.input_price_micros) + 3 * Number(model.output_price_micros)) / 1_000_000);
    expect(Number(res.headers['x-nexo-cost-micros'])).toBe(expected);
    await gw.settled();
    const [log] = await gw.db.query('SELECT cost_micros, usage_source, prompt_tokens FROM usage_logs WHERE request_id = $1', [
      res.headers['x-request-id'],
    ]);
    expect(log).toMatchObject({ usage_source: 'provider', prompt_tokens: promptTokens });
    expect(Number(log.cost_micros)).toBe(expected);
    expect(promptTokens).toBeLessThanOrEqual(5 * NON_TEXT_PART_TOKENS);
  });

  it('does not forward (or charge) a request whose client left while it waited for its hold', async () => {
    const { key, workspaceId } = await gw.workspaceWithKey();
    provider.received.length = 0;
    // the workspace row is locked, so the hold waits; the client gives up meanwhile
    const blocker = gw.db.createQueryRunner();
    await blocker.connect();
    await blocker.startTransaction();
    await blocker.query('SELECT 1 FROM workspaces WHERE id = $1 FOR UPDATE', [workspaceId]);
    const request = gw.abandonableChat(key, { model: MODEL, messages: [{ role: 'user', content: 'hi' }] });
    await sleep(300);
    expect(await request.abort()).toHaveProperty('name', 'AbortError');
    await sleep(100);
    await blocker.rollbackTransaction();
    await blocker.release();

    const [log] = await waitFor('the usage log', async () => {
      const rows = await gw.db.query('SELECT status, error_code, cost_micros FROM usage_logs WHERE workspace_id = $1', [workspaceId]);
      return rows.length ? rows : undefined;
    });
    expect(log).toMatchObject({ status: 499, error_code: 'client_closed_request' });
    expect(Number(log.cost_micros)).toBe(0);
    expect(provider.received).toHaveLength(0);
    await gw.settled();
    expect(await reconcile(gw.db)).toEqual([]);
  });

  it.each(['max_tokens', 'max_completion_tokens'])('caps the provider when the client sends %s: null', async (param) => {
    const { key } = await gw.workspaceWithKey();
    provider.received.length = 0;
    const res = await chat(key, { [param]: null });
    expect(res.status).toBe(200);
    const sent = provider.last().body;
    const [model] = await gw.db.query(`SELECT max_output_tokens FROM models WHERE id = $1`, [MODEL]);
    expect(sent.max_tokens).toBe(model.max_output_tokens);
    expect(sent).not.toHaveProperty('max_completion_tokens', null);
  });

  it('answers a stream that fails before any output with a gateway error that costs nothing', async () => {
    const { key, workspaceId } = await gw.workspaceWithKey();
    provider.respond(() => ({ events: ['not json at all'], cut: true, eventGapMs: 50 }));
    const res = await chat(key, { stream: true });
    expect(res.status).toBe(502);
    expect(res.body.error.code).toBe('gateway_error');
    await gw.settled();
    const [log] = await gw.db.query('SELECT status, cost_micros FROM usage_logs WHERE workspace_id = $1', [workspaceId]);
    expect(log.status).toBe(502);
    expect(Number(log.cost_micros)).toBe(0);
  });

  it('does not log refusals that moved no money, but counts them', async () => {
    const { key, workspaceId } = await gw.workspaceWithKey(0);
    expect((await chat(key)).status).toBe(403);
    expect((await chat(key, { model: 'no-such-model' })).status).toBe(404);
    expect(await gw.db.query('SELECT 1 FROM usage_logs WHERE workspace_id = $1', [workspaceId])).toHaveLength(0);
    const metrics = (await gw.admin().get('/metrics')).text;
    expect(metrics).toMatch(/nexo_gateway_requests_total\{endpoint="\/chat\/completions",status="403"\} [1-9]/);
  });
});
