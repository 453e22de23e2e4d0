import { randomBytes } from 'node:crypto';
import { reconcile } from '../../src/billing/reconcile';
import { completion, FakeProvider, streamEvents } from '../helpers/fake-provider';
import { TestGateway } from '../helpers/gateway';
import { closeAll, startWithFakeProvider } from '../helpers/setup';
import { waitFor } from '../helpers/wait';

const DEEPSEEK = 'deepseek-v4-flash';
const GPT = 'gpt-4o-mini';

interface Customer {
  token: string;
  workspaceId: string;
  email: string;
}

describe('dashboard API (end to end)', () => {
  let gw: TestGateway;
  let provider: FakeProvider;

  beforeAll(async () => {
    ({ gw, provider } = await startWithFakeProvider({
      providers: ['deepseek', 'openai'],
      gateway: { env: { SIGNUPS_PER_ADDRESS_PER_HOUR: '1000', SIGNUP_CREDIT_MICROS: '1000000' } },
    }));
  });
  afterAll(() => closeAll(gw, provider));
  beforeEach(() =>
    provider.respond((req) =>
      req.body.stream ? { events: streamEvents(req.body.model, ['Hi', '!']) } : { json: completion(req.body.model) },
    ),
  );

  async function signup(): Promise<Customer> {
    const email = `c-${randomBytes(6).toString('hex')}@example.com`;
    const res = await gw
      .http()
      .post('/auth/signup')
      .send({ email, password: 'correct horse battery staple', workspace_name: 'Acme' })
      .expect(201);
    return { token: res.body.access_token, workspaceId: res.body.workspace.id, email };
  }

  /** Requests of a customer's session. */
  function as(c: Customer) {
    const auth = <T extends { set(k: string, v: string): T }>(r: T) => r.set('authorization', `Bearer ${c.token}`);
    return {
      get: (path: string) => auth(gw.http().get(path)),
      post: (path: string) => auth(gw.http().post(path)),
      patch: (path: string) => auth(gw.http().patch(path)),
      delete: (path: string) => auth(gw.http().delete(path)),
    };
  }

  async function createKey(c: Customer, body: Record<string, unknown> = {}): Promise<{ id: string; key: string }> {
    const res = await as(c)
      .post('/dashboard/keys')
      .send({ name: 'k', ...body })
      .expect(201);
    return { id: res.body.id, key: res.body.key };
  }

  const chat = (key: string, body: Record<string, unknown>) =>
    gw
      .http()
      .post('/v1/chat/completions')
      .set('authorization', `Bearer ${key}`)
      .send({ model: DEEPSEEK, messages: [{ role: 'user', content: 'hello' }], max_tokens: 100, ...body });

  it('shows the workspace, its balance and default limits, and the sellable models with prices', async () => {
    const c = await signup();
    const ws = await as(c).get('/dashboard/workspace').expect(200);
    expect(ws.body).toEqual({
      id: c.workspaceId,
      name: 'Acme',
      role: 'owner',
      balance_micros: 1_000_000,
      available_micros: 1_000_000,
      rpm_limit: 60,
      tpm_limit: 100_000,
    });
    const models = await as(c).get('/dashboard/models').expect(200);
    expect(models.body.data.map((m: { id: string }) => m.id)).toEqual(expect.arrayContaining([DEEPSEEK, GPT, 'text-embedding-3-small']));
    expect(models.body.data.find((m: { id: string }) => m.id === DEEPSEEK)).toEqual({
      id: DEEPSEEK,
      type: 'chat',
      input_price_micros: 270_000,
      output_price_micros: 1_100_000,
      max_output_tokens: expect.any(Number),
      context_length: expect.anything(),
    });
    const ledger = await as(c).get('/dashboard/ledger').expect(200);
    expect(ledger.body.data).toEqual([
      expect.objectContaining({ kind: 'credit', amount_micros: 1_000_000, balance_after_micros: 1_000_000 }),
    ]);
    expect(ledger.body.next_cursor).toBeNull();
  });

  it('manages keys: created with the secret once, listed without it, used with the openai SDK, updated and revoked', async () => {
    const c = await signup();
    const created = await as(c)
      .post('/dashboard/keys')
      .send({ name: 'backend', models: [DEEPSEEK], budget_micros: 500_000, budget_period: 'monthly', rpm_limit: 30 })
      .expect(201);
    expect(created.body).toMatchObject({
      name: 'backend',
      models: [DEEPSEEK],
      budget_micros: 500_000,
      budget_period: 'monthly',
      spent_micros: 0,
      rpm_limit: 30,
      disabled: false,
      revoked: false,
      last_used_at: null,
    });
    expect(created.body.key).toMatch(/^nxr_/);
    expect(created.body.last_four).toBe(created.body.key.slice(-4));

    const completionRes = await gw.openai(created.body.key).chat.completions.create({
      model: DEEPSEEK,
      messages: [{ role: 'user', content: 'hello' }],
      max_tokens: 50,
    });
    expect(completionRes.choices[0].message.content).toBe('Hello from the fake provider');
    await gw.settled();

    const list = await as(c).get('/dashboard/keys').expect(200);
    expect(list.body.data).toHaveLength(1);
    const [listed] = list.body.data;
    expect(listed).not.toHaveProperty('key');
    expect(listed).not.toHaveProperty('key_hash');
    expect(JSON.stringify(list.body)).not.toContain(created.body.key);
    expect(listed.spent_micros).toBeGreaterThan(0);
    expect(listed.last_used_at).not.toBeNull();

    const patched = await as(c)
      .patch(`/dashboard/keys/${created.body.id}`)
      .send({ name: 'renamed', models: null, budget_micros: null, budget_period: null, tpm_limit: 1000, disabled: true })
      .expect(200);
    expect(patched.body).toMatchObject({
      name: 'renamed',
      models: null,
      budget_micros: null,
      budget_period: null,
      tpm_limit: 1000,
      disabled: true,
    });
    await waitFor('the disabled key to be refused', async () => ((await chat(created.body.key, {})).status === 401 ? true : undefined));
    await as(c).patch(`/dashboard/keys/${created.body.id}`).send({ disabled: false }).expect(200);

    const revoked = await as(c).delete(`/dashboard/keys/${created.body.id}`).expect(200);
    expect(revoked.body).toMatchObject({ id: created.body.id, revoked: true });
    // a revoked key can never be changed (nor enabled) again: 409 key_revoked
    const again = await as(c).patch(`/dashboard/keys/${created.body.id}`).send({ disabled: false }).expect(409);
    expect(again.body.error.code).toBe('key_revoked');
    await as(c).patch(`/dashboard/keys/${created.body.id}`).send({}).expect(409);
    await as(c).delete(`/dashboard/keys/${created.body.id}`).expect(200);
    expect((await as(c).get(`/dashboard/keys/${created.body.id}`).expect(200)).body.revoked).toBe(true);
    expect((await as(c).get('/dashboard/keys').expect(200)).body.data).toEqual([expect.objectContaining({ revoked: true })]);
    expect((await chat(created.body.key, {})).status).toBe(401);
  });

  it('a key revoked in the dashboard is refused by another gateway process within 1 s', async () => {
    const other = await TestGateway.start({ shareWith: gw });
    try {
      const c = await signup();
      const { id, key } = await createKey(c);
      // the other process has the key cached
      await other
        .http()
        .post('/v1/chat/completions')
        .set('authorization', `Bearer ${key}`)
        .send({ model: DEEPSEEK, messages: [{ role: 'user', content: 'hi' }], max_tokens: 10 })
        .expect(200);
      await as(c).delete(`/dashboard/keys/${id}`).expect(200);
      const revokedAt = Date.now();
      await waitFor(
        'the other process to refuse the revoked key',
        async () => {
          const res = await other
            .openai(key)
            .models.list()
            .then(
              () => 200,
              (err: { status?: number }) => err.status,
            );
          return res === 401 ? true : undefined;
        },
        1_000,
      );
      expect(Date.now() - revokedAt).toBeLessThanOrEqual(1_000);
      await other.settled();
    } finally {
      await other.close();
    }
  });

  it('no customer can read, change or revoke what belongs to another (404, as if absent)', async () => {
    const a = await signup();
    const b = await signup();
    const aKey = await createKey(a);
    await chat(aKey.key, {}).expect(200);
    await gw.settled();
    const missing = '00000000-0000-4000-8000-000000000000';
    for (const id of [aKey.id, missing]) {
      const got = await as(b).get(`/dashboard/keys/${id}`).expect(404);
      expect(got.body.error.code).toBe('not_found');
      await as(b).patch(`/dashboard/keys/${id}`).send({ disabled: true }).expect(404);
      await as(b).patch(`/dashboard/keys/${id}`).send({}).expect(404);
      await as(b).delete(`/dashboard/keys/${id}`).expect(404);
    }
    await as(b).get('/dashboard/keys/not-a-uuid').expect(404);
    // a's key is untouched and still works
    expect((await as(a).get(`/dashboard/keys/${aKey.id}`).expect(200)).body).toMatchObject({ disabled: false, revoked: false });
    await chat(aKey.key, {}).expect(200);
    await gw.settled();

    expect((await as(b).get('/dashboard/keys').expect(200)).body.data).toEqual([]);
    expect((await as(b).get('/dashboard/usage-logs').expect(200)).body.data).toEqual([]);
    expect((await as(b).get(`/dashboard/usage-logs?key_id=${aKey.id}`).expect(200)).body.data).toEqual([]);
    for (const groupBy of ['day', 'model', 'key']) {
      const usage = await as(b).get(`/dashboard/usage?group_by=${groupBy}`).expect(200);
      expect(usage.body.data).toEqual([]);
      expect(usage.body.totals).toEqual({ requests: 0, prompt_tokens: 0, completion_tokens: 0, cost_micros: 0 });
    }
    const bLedger = await as(b).get('/dashboard/ledger').expect(200);
    expect(bLedger.body.data.every((e: { workspace_id: string }) => e.workspace_id === b.workspaceId)).toBe(true);
    expect(bLedger.body.data.some((e: { kind: string }) => e.kind === 'charge')).toBe(false);
    expect((await as(b).get('/dashboard/workspace').expect(200)).body.id).toBe(b.workspaceId);
    // a workspace id sent by the client is never taken
    const refused = await as(b).post('/dashboard/keys').send({ name: 'x', workspace_id: a.workspaceId }).expect(400);
    expect(refused.body.error.param).toBe('workspace_id');

    const aLogs = await as(a).get('/dashboard/usage-logs').expect(200);
    expect(aLogs.body.data).toHaveLength(2);
    expect((await as(a).get('/dashboard/ledger').expect(200)).body.data.filter((e: { kind: string }) => e.kind === 'charge')).toHaveLength(
      2,
    );
    // without a session, nothing
    await gw.http().get('/dashboard/keys').expect(401);
    await gw.http().get('/dashboard/keys').set('authorization', `Bearer ${aKey.key}`).expect(401);
  });

  it('usage totals per day, model and key equal the sums of the usage logs after a mixed run', async () => {
    const c = await signup();
    await gw
      .admin()
      .post(`/admin/workspaces/${c.workspaceId}/credits`)
      .send({ amount_micros: 10_000_000, reason: 'test top-up' })
      .expect(201);
    const k1 = await createKey(c);
    const k2 = await createKey(c, { models: [GPT, DEEPSEEK] });
    const k3 = await createKey(c, { budget_micros: 1_000_000 });
    provider.respond((req) => {
      const content = JSON.stringify(req.body.messages);
      if (content.includes('fail500')) return { status: 500, json: { error: { message: 'boom' } } };
      if (content.includes('fail400')) return { status: 400, json: { error: { message: 'bad', type: 'invalid_request_error' } } };
      if (req.body.stream)
        return { events: streamEvents(req.body.model, ['a', 'b', 'c'], { prompt_tokens: 9, completion_tokens: 3, total_tokens: 12 }) };
      return {
        json: completion(req.body.model, 'ok', { prompt_tokens: 2 + (content.length % 10), completion_tokens: 7, total_tokens: 0 }),
      };
    });
    const say = (text: string) => ({ messages: [{ role: 'user', content: text }] });
    await chat(k1.key, say('one')).expect(200);
    await chat(k1.key, say('two two')).expect(200);
    await chat(k1.key, say('fail500')).expect(502);
    await chat(k2.key, { model: GPT, ...say('three') }).expect(200);
    await chat(k2.key, { model: GPT, ...say('fail400') }).expect(400);
    await chat(k2.key, say('four')).expect(200);
    await chat(k3.key, say('five')).expect(200);
    const stream = await gw.openai(k3.key).chat.completions.create({
      model: DEEPSEEK,
      messages: [{ role: 'user', content: 'stream me' }],
      max_tokens: 20,
      stream: true,
      stream_options: { include_usage: true },
    });
    for await (const chunk of stream) void chunk;
    await gw.settled();

    // every log, through the paginated list
    const logs: Array<Record<string, any>> = [];
    let cursor: string | null = null;
    do {
      const page: { body: { data: Array<Record<string, any>>; next_cursor: string | null } } = await as(c)
        .get(`/dashboard/usage-logs?limit=3${cursor ? `&cursor=${cursor}` : ''}`)
        .expect(200);
      logs.push(...page.body.data);
      cursor = page.body.next_cursor;
    } while (cursor);
    expect(logs).toHaveLength(8);
    expect(new Set(logs.map((l) => l.request_id)).size).toBe(8);
    expect(logs.map((l) => l.status).sort()).toEqual([200, 200, 200, 200, 200, 200, 400, 502]);
    expect(logs.filter((l) => l.stream)).toHaveLength(1);

    const sums = (rows: Array<Record<string, any>>) => ({
      requests: rows.length,
      prompt_tokens: rows.reduce((s, l) => s + l.prompt_tokens, 0),
      completion_tokens: rows.reduce((s, l) => s + l.completion_tokens, 0),
      cost_micros: rows.reduce((s, l) => s + l.cost_micros, 0),
    });
    const day = (l: Record<string, any>) => String(l.created_at).slice(0, 10);
    const expected = {
      day: (v: string) => sums(logs.filter((l) => day(l) === v)),
      model: (v: string) => sums(logs.filter((l) => l.model === v)),
      key: (v: string) => sums(logs.filter((l) => l.key_id === v)),
    };
    for (const groupBy of ['day', 'model', 'key'] as const) {
      const usage = await as(c).get(`/dashboard/usage?group_by=${groupBy}`).expect(200);
      expect(usage.body.totals).toEqual(sums(logs));
      const field = groupBy === 'key' ? 'key_id' : groupBy;
      const groups = new Set(logs.map((l) => (groupBy === 'day' ? day(l) : l[field])));
      expect(usage.body.data).toHaveLength(groups.size);
      for (const g of usage.body.data) {
        expect(g).toEqual({ [field]: g[field], ...expected[groupBy](g[field]) });
      }
    }
    const byModel = await as(c).get('/dashboard/usage?group_by=model').expect(200);
    expect(byModel.body.data.map((g: { model: string }) => g.model)).toEqual([DEEPSEEK, GPT]);
    expect(sums(logs).cost_micros).toBeGreaterThan(0);
    // the charges of the ledger are the cost of the logs
    const charges = (await as(c).get('/dashboard/ledger?limit=100').expect(200)).body.data.filter(
      (e: { kind: string }) => e.kind === 'charge',
    );
    expect(-charges.reduce((s: number, e: { amount_micros: number }) => s + e.amount_micros, 0)).toBe(sums(logs).cost_micros);

    // filters: status, key, model, and a time range (from inclusive, to exclusive)
    const failed = await as(c).get('/dashboard/usage-logs?status=502').expect(200);
    expect(failed.body.data).toHaveLength(1);
    expect(failed.body.data[0]).toMatchObject({ status: 502, cost_micros: 0, key_id: k1.id });
    expect((await as(c).get(`/dashboard/usage-logs?key_id=${k2.id}&model=${GPT}`).expect(200)).body.data).toHaveLength(2);
    const times = logs.map((l) => Date.parse(l.created_at)).sort((x, y) => x - y);
    const from = new Date(times[2]).toISOString();
    const to = new Date(times[5]).toISOString();
    const ranged = await as(c).get(`/dashboard/usage-logs?from=${from}&to=${to}&limit=100`).expect(200);
    expect(ranged.body.data).toHaveLength(
      logs.filter((l) => Date.parse(l.created_at) >= times[2] && Date.parse(l.created_at) < times[5]).length,
    );

    // whole days: today's usage, and none for the day before
    const today = new Date().toISOString().slice(0, 10);
    const tomorrow = new Date(Date.now() + 86_400_000).toISOString().slice(0, 10);
    const yesterday = new Date(Date.now() - 86_400_000).toISOString().slice(0, 10);
    if (logs.every((l) => day(l) === today)) {
      const todays = await as(c).get(`/dashboard/usage?group_by=day&from=${today}&to=${tomorrow}`).expect(200);
      expect(todays.body).toMatchObject({ from_day: today, to_day: tomorrow, totals: sums(logs) });
      const before = await as(c).get(`/dashboard/usage?group_by=key&from=${yesterday}&to=${today}`).expect(200);
      expect(before.body.data).toEqual([]);
      // a `to` within today includes today
      const partial = await as(c).get(`/dashboard/usage?group_by=model&to=${today}T00:00:01Z`).expect(200);
      expect(partial.body.totals).toEqual(sums(logs));
    }
    expect(await reconcile(gw.db)).toEqual([]);
  });

  it('a periodic key budget caps the spend within its period and starts again at the boundary', async () => {
    const c = await signup();
    const { id, key } = await createKey(c, { budget_micros: 400, budget_period: 'daily' });
    provider.respond((req) => ({
      json: completion(req.body.model, 'ok', { prompt_tokens: 10, completion_tokens: 300, total_tokens: 310 }),
    }));
    // 10 * 0.27 + 300 * 1.1 = 332.7: 333 micro-USD; a hold for max_tokens 300 fits the 400 budget
    const first = await chat(key, { max_tokens: 300 }).expect(200);
    expect(first.headers['x-nexo-cost-micros']).toBe('333');
    const refused = await chat(key, { max_tokens: 300 }).expect(403);
    expect(refused.body.error.code).toBe('insufficient_quota');
    expect(refused.body.error.message).toMatch(/^Insufficient key budget\. Remaining key budget: \$0\.000067\./);
    expect((await as(c).get(`/dashboard/keys/${id}`).expect(200)).body).toMatchObject({ budget_period: 'daily', spent_micros: 333 });

    // the day is over (as if the last charge had been yesterday): the next request is allowed
    await gw.db.query(`UPDATE api_keys SET period_start = period_start - interval '1 day' WHERE id = $1`, [id]);
    expect((await as(c).get(`/dashboard/keys/${id}`).expect(200)).body.spent_micros).toBe(0);
    await chat(key, { max_tokens: 300 }).expect(200);
    await chat(key, { max_tokens: 300 }).expect(403);
    expect((await as(c).get(`/dashboard/keys/${id}`).expect(200)).body.spent_micros).toBe(333);
    const [row] = await gw.db.query('SELECT spent_micros FROM api_keys WHERE id = $1', [id]);
    expect(Number(row.spent_micros)).toBe(666);
    expect(await reconcile(gw.db)).toEqual([]);
  });

  it('refuses invalid keys and queries with 400 naming the field, and changes nothing', async () => {
    const c = await signup();
    const bad = async (body: Record<string, unknown>, param: string) => {
      const res = await as(c).post('/dashboard/keys').send(body).expect(400);
      expect(res.body.error).toMatchObject({ code: 'invalid_request_error', param });
    };
    await bad({ name: 'x', budget_micros: -1 }, 'budget_micros');
    await bad({ name: 'x', expires_at: new Date(Date.now() - 60_000).toISOString() }, 'expires_at');
    await bad({ name: 'x', models: [DEEPSEEK, 'no-such-model'] }, 'models[1]');
    await bad({ name: 'x'.repeat(201) }, 'name');
    await bad({ name: 'x', budget_period: 'hourly' }, 'budget_period');
    await bad({ name: 'x', spent_micros: 0 }, 'spent_micros');
    await bad({ name: 'x\u0000' }, 'name');
    const { id } = await createKey(c);
    const patch = async (body: Record<string, unknown>, param: string) => {
      const res = await as(c).patch(`/dashboard/keys/${id}`).send(body).expect(400);
      expect(res.body.error.param).toBe(param);
    };
    await patch({ models: ['nope'] }, 'models[0]');
    await patch({ budget_micros: -5 }, 'budget_micros');
    await patch({ revoked_at: null }, 'revoked_at');
    await patch({ balance_micros: 5 }, 'balance_micros');
    // the admin API takes only sellable models too
    const admin = await gw
      .admin()
      .patch(`/admin/keys/${id}`)
      .send({ models: ['gpt-4o-mini', 'x/unknown'] })
      .expect(400);
    expect(admin.body.error.param).toBe('models[1]');
    expect((await as(c).get('/dashboard/keys').expect(200)).body.data).toEqual([
      expect.objectContaining({ id, name: 'k', models: null, budget_micros: null, revoked: false }),
    ]);

    await as(c).get('/dashboard/usage').expect(400);
    expect((await as(c).get('/dashboard/usage?group_by=week').expect(400)).body.error.param).toBe('group_by');
    expect((await as(c).get('/dashboard/usage-logs?status=abc').expect(400)).body.error.param).toBe('status');
    expect((await as(c).get('/dashboard/usage-logs?from=yesterday').expect(400)).body.error.param).toBe('from');
    expect((await as(c).get('/dashboard/usage-logs?from=2026-02-02&to=2026-02-01').expect(400)).body.error.param).toBe('to');
    expect((await as(c).get('/dashboard/usage-logs?workspace_id=x').expect(400)).body.error.param).toBe('workspace_id');
    expect((await as(c).get('/dashboard/ledger?cursor=bogus').expect(400)).body.error.param).toBe('cursor');
    expect(await reconcile(gw.db)).toEqual([]);
  });

  it('documents every dashboard route with the session scheme', async () => {
    const doc = (await gw.http().get('/docs-json').expect(200)).body;
    const routes = [
      ['get', '/dashboard/workspace'],
      ['get', '/dashboard/keys'],
      ['post', '/dashboard/keys'],
      ['get', '/dashboard/keys/{id}'],
      ['patch', '/dashboard/keys/{id}'],
      ['delete', '/dashboard/keys/{id}'],
      ['get', '/dashboard/usage-logs'],
      ['get', '/dashboard/usage'],
      ['get', '/dashboard/ledger'],
      ['get', '/dashboard/models'],
    ];
    for (const [method, path] of routes) {
      expect(doc.paths[path]?.[method]?.security).toEqual([{ session: [] }]);
    }
  });
});
