import { randomUUID } from 'node:crypto';
import type { Response } from 'supertest';
import { FakeProvider } from '../helpers/fake-provider';
import { ADMIN_TOKEN, TestGateway } from '../helpers/gateway';
import { closeAll, startWithFakeProvider } from '../helpers/setup';

/**
 * The admin API (CONTRACT §4): workspaces, credits and their ledger, keys (and how fast a key
 * change reaches another gateway process), the catalog, usage logs, docs and the queue board.
 */

const PROVIDER_KEY = 'sk-provider-secret';

function expectErrorShape(res: Response, status: number, code?: string, param?: string | null): void {
  if (res.status !== status) throw new Error(`expected HTTP ${status}, got ${res.status}: ${res.text.slice(0, 500)}`);
  expect(res.headers['x-request-id']).toMatch(/\S/);
  expect(Object.keys(res.body.error).sort()).toEqual(['code', 'message', 'param', 'type']);
  expect(typeof res.body.error.message).toBe('string');
  if (code !== undefined) expect(res.body.error.code).toBe(code);
  if (param !== undefined) expect(res.body.error.param).toBe(param);
}

/** Polls `check` until it returns true; fails after `timeoutMs`. */
async function eventually(check: () => Promise<boolean>, timeoutMs = 3_000, intervalMs = 20): Promise<number> {
  const started = Date.now();
  for (;;) {
    if (await check()) return Date.now() - started;
    if (Date.now() - started > timeoutMs) throw new Error(`condition not met within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}

describe('admin API', () => {
  let gw: TestGateway;
  let provider: FakeProvider;

  const createWorkspace = async (name = 'acme'): Promise<string> =>
    (await gw.admin().post('/admin/workspaces').send({ name }).expect(201)).body.id;
  const credit = (workspaceId: string, body: Record<string, unknown>, idempotencyKey?: string) => {
    const req = gw.admin().post(`/admin/workspaces/${workspaceId}/credits`);
    if (idempotencyKey) req.set('idempotency-key', idempotencyKey);
    return req.send(body);
  };
  const balance = async (workspaceId: string): Promise<number> =>
    (await gw.admin().get(`/admin/workspaces/${workspaceId}`).expect(200)).body.balance_micros;
  const chat = (g: TestGateway, key: string, model = 'deepseek-v4-flash') =>
    g
      .http()
      .post('/v1/chat/completions')
      .set('authorization', `Bearer ${key}`)
      .send({ model, messages: [{ role: 'user', content: 'hi' }] });

  beforeAll(async () => {
    ({ gw, provider } = await startWithFakeProvider({ providers: ['deepseek', 'openai', 'dashscope'], providerKey: PROVIDER_KEY }));
  });
  afterAll(() => closeAll(gw, provider));

  describe('admin token', () => {
    it.each([
      ['missing', undefined],
      ['wrong', 'Bearer not-the-admin-token'],
      ['not a bearer token', ADMIN_TOKEN],
      ['an API key', 'api-key'],
    ])('%s → 401', async (_, header) => {
      let value = header;
      if (header === 'api-key') value = `Bearer ${(await gw.workspaceWithKey()).key}`;
      for (const req of [
        gw.http().post('/admin/workspaces').send({ name: 'x' }),
        gw.http().get(`/admin/workspaces/${randomUUID()}`),
        gw.http().put('/admin/providers').send({ id: 'deepseek', base_url: 'http://evil.example/v1' }),
        gw.http().patch(`/admin/keys/${randomUUID()}`).send({ disabled: true }),
      ]) {
        if (value) req.set('authorization', value);
        expectErrorShape(await req, 401);
      }
    });

    it('an admin token never opens the public API', async () => {
      const res = await gw.http().get('/v1/models').set('authorization', `Bearer ${ADMIN_TOKEN}`);
      expectErrorShape(res, 401, 'invalid_api_key');
    });
  });

  describe('workspaces', () => {
    it('creates (201) and reads a workspace', async () => {
      const created = await gw.admin().post('/admin/workspaces').send({ name: 'Acme Corp' }).expect(201);
      expect(created.body).toMatchObject({ id: expect.stringMatching(/^[0-9a-f-]{36}$/), name: 'Acme Corp', balance_micros: 0 });
      const read = await gw.admin().get(`/admin/workspaces/${created.body.id}`).expect(200);
      expect(read.body).toMatchObject({ id: created.body.id, name: 'Acme Corp', balance_micros: 0 });
    });

    it.each([
      ['an unknown UUID', randomUUID()],
      ['a non-UUID id', 'not-a-uuid'],
      ['an SQL-looking id', "1' OR '1'='1"],
    ])('answers 404 not_found for %s', async (_, id) => {
      expectErrorShape(await gw.admin().get(`/admin/workspaces/${encodeURIComponent(id)}`), 404, 'not_found');
      expectErrorShape(await credit(encodeURIComponent(id), { amount_micros: 1 }), 404, 'not_found');
      expectErrorShape(await gw.admin().get(`/admin/workspaces/${encodeURIComponent(id)}/ledger`), 404, 'not_found');
      expectErrorShape(
        await gw
          .admin()
          .post(`/admin/workspaces/${encodeURIComponent(id)}/keys`)
          .send({ name: 'k' }),
        404,
        'not_found',
      );
      expectErrorShape(await gw.admin().get(`/admin/workspaces/${encodeURIComponent(id)}/usage-logs`), 404, 'not_found');
    });

    it('refuses an invalid body with 400 naming the field', async () => {
      expectErrorShape(await gw.admin().post('/admin/workspaces').send({}), 400, 'invalid_request_error', 'name');
      expectErrorShape(await gw.admin().post('/admin/workspaces').send({ name: 5 }), 400, 'invalid_request_error', 'name');
      expectErrorShape(
        await gw.admin().post('/admin/workspaces').send({ name: 'x', balance_micros: 1_000_000 }),
        400,
        'invalid_request_error',
        'balance_micros',
      );
      expectErrorShape(
        await gw.admin().post('/admin/workspaces').set('content-type', 'application/json').send('{"name":'),
        400,
        'invalid_request_error',
      );
    });
  });

  describe('credits', () => {
    it('creates a ledger entry (201) and changes the balance', async () => {
      const id = await createWorkspace();
      const res = await credit(id, { amount_micros: 5_000_000, reason: 'top-up' }).expect(201);
      expect(res.body).toMatchObject({
        id: expect.any(String),
        workspace_id: id,
        kind: 'credit',
        amount_micros: 5_000_000,
        balance_after_micros: 5_000_000,
        reason: 'top-up',
      });
      expect(await balance(id)).toBe(5_000_000);
      await credit(id, { amount_micros: 1_500_000 }).expect(201);
      expect(await balance(id)).toBe(6_500_000);
    });

    it('a negative amount corrects, and may take the balance below zero', async () => {
      const id = await createWorkspace();
      await credit(id, { amount_micros: 1_000_000 }).expect(201);
      const res = await credit(id, { amount_micros: -3_000_000, reason: 'chargeback' }).expect(201);
      expect(res.body.amount_micros).toBe(-3_000_000);
      expect(res.body.balance_after_micros).toBe(-2_000_000);
      expect(await balance(id)).toBe(-2_000_000);
    });

    it('a repeated Idempotency-Key returns the first entry with 200 and credits once', async () => {
      const id = await createWorkspace();
      const first = await credit(id, { amount_micros: 2_000_000, reason: 'invoice 42' }, 'invoice-42').expect(201);
      const again = await credit(id, { amount_micros: 2_000_000, reason: 'invoice 42' }, 'invoice-42').expect(200);
      expect(again.body).toEqual(first.body);
      expect(await balance(id)).toBe(2_000_000);
      const ledger = await gw.admin().get(`/admin/workspaces/${id}/ledger`).expect(200);
      expect(ledger.body.data).toHaveLength(1);
    });

    it('concurrent requests with one Idempotency-Key credit once', async () => {
      const id = await createWorkspace();
      const results = await Promise.all(Array.from({ length: 5 }, () => credit(id, { amount_micros: 700_000 }, 'same-key')));
      expect(results.map((r) => r.status).sort()).toEqual([200, 200, 200, 200, 201]);
      expect(new Set(results.map((r) => r.body.id)).size).toBe(1);
      expect(await balance(id)).toBe(700_000);
    });

    it('the same Idempotency-Key with a different body is 409 and changes nothing', async () => {
      const id = await createWorkspace();
      await credit(id, { amount_micros: 1_000_000, reason: 'a' }, 'k-409').expect(201);
      expectErrorShape(await credit(id, { amount_micros: 9_000_000, reason: 'a' }, 'k-409'), 409);
      expectErrorShape(await credit(id, { amount_micros: 1_000_000, reason: 'b' }, 'k-409'), 409);
      expect(await balance(id)).toBe(1_000_000);
    });

    it('Idempotency-Keys are per workspace', async () => {
      const a = await createWorkspace('a');
      const b = await createWorkspace('b');
      await credit(a, { amount_micros: 1_000 }, 'shared').expect(201);
      await credit(b, { amount_micros: 1_000 }, 'shared').expect(201);
      expect(await balance(a)).toBe(1_000);
      expect(await balance(b)).toBe(1_000);
    });

    it('refuses a non-integer or missing amount', async () => {
      const id = await createWorkspace();
      expectErrorShape(await credit(id, { amount_micros: 1.5 }), 400, 'invalid_request_error', 'amount_micros');
      expectErrorShape(await credit(id, { amount_micros: '100' }), 400, 'invalid_request_error', 'amount_micros');
      expectErrorShape(await credit(id, { reason: 'nothing' }), 400, 'invalid_request_error', 'amount_micros');
      expect(await balance(id)).toBe(0);
    });
  });

  describe('ledger', () => {
    let id: string;
    const amounts = [1_000, 2_000, 3_000, 4_000, 5_000];
    beforeAll(async () => {
      id = await createWorkspace('ledger');
      for (const amount of amounts) await credit(id, { amount_micros: amount, reason: `c${amount}` }).expect(201);
    });

    it('lists entries newest first with next_cursor null when complete', async () => {
      const res = await gw.admin().get(`/admin/workspaces/${id}/ledger`).expect(200);
      expect(res.body.next_cursor).toBeNull();
      expect(res.body.data.map((e: { amount_micros: number }) => e.amount_micros)).toEqual([...amounts].reverse());
    });

    it('pages with limit and cursor, without gaps or repeats', async () => {
      const seen: number[] = [];
      let cursor: string | null = null;
      let pages = 0;
      do {
        const query: Record<string, string | number> = { limit: 2 };
        if (cursor) query.cursor = cursor;
        const res = await gw.admin().get(`/admin/workspaces/${id}/ledger`).query(query).expect(200);
        expect(res.body.data.length).toBeLessThanOrEqual(2);
        seen.push(...res.body.data.map((e: { amount_micros: number }) => e.amount_micros));
        cursor = res.body.next_cursor;
        pages++;
      } while (cursor);
      expect(pages).toBe(3);
      expect(seen).toEqual([...amounts].reverse());
    });

    it('an exact final page has next_cursor null or leads to an empty page', async () => {
      const first = await gw.admin().get(`/admin/workspaces/${id}/ledger`).query({ limit: 5 }).expect(200);
      expect(first.body.data).toHaveLength(5);
      if (first.body.next_cursor) {
        const next = await gw.admin().get(`/admin/workspaces/${id}/ledger`).query({ limit: 5, cursor: first.body.next_cursor }).expect(200);
        expect(next.body.data).toHaveLength(0);
      }
    });

    it('refuses an invalid cursor or limit with 400', async () => {
      expectErrorShape(
        await gw.admin().get(`/admin/workspaces/${id}/ledger`).query({ cursor: 'garbage' }),
        400,
        'invalid_request_error',
        'cursor',
      );
      expectErrorShape(await gw.admin().get(`/admin/workspaces/${id}/ledger`).query({ limit: 0 }), 400, 'invalid_request_error', 'limit');
      expectErrorShape(await gw.admin().get(`/admin/workspaces/${id}/ledger`).query({ limit: 101 }), 400, 'invalid_request_error', 'limit');
      expectErrorShape(
        await gw.admin().get(`/admin/workspaces/${id}/ledger`).query({ limit: 'ten' }),
        400,
        'invalid_request_error',
        'limit',
      );
    });

    it("shows only the workspace's own entries", async () => {
      const other = await createWorkspace('other');
      await credit(other, { amount_micros: 77 }).expect(201);
      const res = await gw.admin().get(`/admin/workspaces/${id}/ledger`).query({ limit: 100 }).expect(200);
      expect(res.body.data.every((e: { workspace_id: string }) => e.workspace_id === id)).toBe(true);
    });
  });

  describe('keys', () => {
    it('returns the full key once, at creation', async () => {
      const id = await createWorkspace();
      const expiresAt = new Date(Date.now() + 3_600_000).toISOString();
      const created = await gw
        .admin()
        .post(`/admin/workspaces/${id}/keys`)
        .send({
          name: 'backend',
          models: ['gpt-4o-mini'],
          budget_micros: 1_000_000,
          expires_at: expiresAt,
          rpm_limit: 60,
          tpm_limit: 100_000,
        })
        .expect(201);
      const key: string = created.body.key;
      expect(key.startsWith('nxr_')).toBe(true);
      expect(created.body).toMatchObject({
        id: expect.any(String),
        key,
        prefix: expect.any(String),
        name: 'backend',
        models: ['gpt-4o-mini'],
        budget_micros: 1_000_000,
        spent_micros: 0,
        expires_at: expiresAt,
        disabled: false,
      });
      expect(key.startsWith(created.body.prefix)).toBe(true);
      expect(created.body.prefix.length).toBeLessThan(key.length);

      const list = await gw.admin().get(`/admin/workspaces/${id}/keys`).expect(200);
      expect(list.body.data).toHaveLength(1);
      const listed = list.body.data[0];
      expect(listed.id).toBe(created.body.id);
      expect(listed.prefix).toBe(created.body.prefix);
      expect(listed).not.toHaveProperty('key');
      expect(listed).not.toHaveProperty('key_hash');
      expect(list.text).not.toContain(key);
      const [{ key_hash: hash }] = await gw.db.query('SELECT key_hash FROM api_keys WHERE id = $1', [created.body.id]);
      expect(list.text).not.toContain(hash);

      const patched = await gw.admin().patch(`/admin/keys/${created.body.id}`).send({ name: 'renamed' }).expect(200);
      expect(patched.body).not.toHaveProperty('key');
      expect(patched.text).not.toContain(key);

      // the key works
      await gw.http().get('/v1/key').set('authorization', `Bearer ${key}`).expect(200);
    });

    it('every key is different', async () => {
      const id = await createWorkspace();
      const a = await gw.admin().post(`/admin/workspaces/${id}/keys`).send({ name: 'a' }).expect(201);
      const b = await gw.admin().post(`/admin/workspaces/${id}/keys`).send({ name: 'b' }).expect(201);
      expect(a.body.key).not.toBe(b.body.key);
      expect(a.body.id).not.toBe(b.body.id);
    });

    it('refuses unknown fields (strict DTOs)', async () => {
      const { keyId, workspaceId } = await gw.workspaceWithKey();
      expectErrorShape(
        await gw.admin().patch(`/admin/keys/${keyId}`).send({ balance_micros: 1_000_000_000 }),
        400,
        'invalid_request_error',
        'balance_micros',
      );
      expectErrorShape(
        await gw.admin().patch(`/admin/keys/${keyId}`).send({ spent_micros: 0 }),
        400,
        'invalid_request_error',
        'spent_micros',
      );
      expectErrorShape(
        await gw.admin().patch(`/admin/keys/${keyId}`).send({ workspace_id: randomUUID() }),
        400,
        'invalid_request_error',
        'workspace_id',
      );
      expectErrorShape(
        await gw.admin().post(`/admin/workspaces/${workspaceId}/keys`).send({ name: 'k', spent_micros: -5 }),
        400,
        'invalid_request_error',
        'spent_micros',
      );
      const [row] = await gw.db.query('SELECT workspace_id, spent_micros FROM api_keys WHERE id = $1', [keyId]);
      expect(row.workspace_id).toBe(workspaceId);
      expect(Number(row.spent_micros)).toBe(0);
      expect(await balance(workspaceId)).toBe(10_000_000);
    });

    it('refuses invalid values', async () => {
      const { keyId, workspaceId } = await gw.workspaceWithKey();
      expectErrorShape(await gw.admin().patch(`/admin/keys/${keyId}`).send({ disabled: 'yes' }), 400, 'invalid_request_error', 'disabled');
      expectErrorShape(
        await gw.admin().patch(`/admin/keys/${keyId}`).send({ budget_micros: -1 }),
        400,
        'invalid_request_error',
        'budget_micros',
      );
      expectErrorShape(
        await gw.admin().patch(`/admin/keys/${keyId}`).send({ expires_at: 'tomorrow' }),
        400,
        'invalid_request_error',
        'expires_at',
      );
      expectErrorShape(await gw.admin().post(`/admin/workspaces/${workspaceId}/keys`).send({}), 400, 'invalid_request_error', 'name');
      expectErrorShape(
        await gw.admin().post(`/admin/workspaces/${workspaceId}/keys`).send({ name: 'k', models: 'gpt-4o-mini' }),
        400,
        'invalid_request_error',
        'models',
      );
    });

    it('PATCH of an unknown key is 404', async () => {
      expectErrorShape(await gw.admin().patch(`/admin/keys/${randomUUID()}`).send({ disabled: true }), 404, 'not_found');
      expectErrorShape(await gw.admin().patch('/admin/keys/nope').send({ disabled: true }), 404, 'not_found');
    });

    it('PATCH updates every field it accepts and can clear them with null', async () => {
      const { keyId } = await gw.workspaceWithKey();
      const expiresAt = new Date(Date.now() + 7_200_000).toISOString();
      const res = await gw
        .admin()
        .patch(`/admin/keys/${keyId}`)
        .send({ models: ['Qwen/Qwen-Plus'], budget_micros: 123, expires_at: expiresAt, rpm_limit: 5, tpm_limit: 500, disabled: true })
        .expect(200);
      expect(res.body).toMatchObject({
        models: ['Qwen/Qwen-Plus'],
        budget_micros: 123,
        expires_at: expiresAt,
        rpm_limit: 5,
        tpm_limit: 500,
        disabled: true,
      });
      const cleared = await gw
        .admin()
        .patch(`/admin/keys/${keyId}`)
        .send({ models: null, budget_micros: null, expires_at: null, rpm_limit: null, tpm_limit: null, disabled: false })
        .expect(200);
      expect(cleared.body).toMatchObject({
        models: null,
        budget_micros: null,
        expires_at: null,
        rpm_limit: null,
        tpm_limit: null,
        disabled: false,
      });
    });

    it('PATCH takes effect at once on the same gateway (scope, budget)', async () => {
      const { key, keyId } = await gw.workspaceWithKey();
      await chat(gw, key).expect(200);
      await gw
        .admin()
        .patch(`/admin/keys/${keyId}`)
        .send({ models: ['Qwen/Qwen-Plus'] })
        .expect(200);
      expectErrorShape(await chat(gw, key), 403, 'model_not_allowed');
      await gw.admin().patch(`/admin/keys/${keyId}`).send({ models: null, budget_micros: 0 }).expect(200);
      expectErrorShape(await chat(gw, key), 403, 'insufficient_quota');
      await gw.admin().patch(`/admin/keys/${keyId}`).send({ budget_micros: null }).expect(200);
      await chat(gw, key).expect(200);
    });
  });

  describe('with a second gateway process on the same database', () => {
    let gw2: TestGateway;
    beforeAll(async () => {
      gw2 = await TestGateway.start({ shareWith: gw });
    });
    afterAll(async () => {
      await gw2?.close();
    });

    it('a key disabled on one gateway is refused by the other within 1 s', async () => {
      const { key, keyId } = await gw.workspaceWithKey();
      // used on gw2, so gw2 has it cached as valid
      await gw2.http().get('/v1/key').set('authorization', `Bearer ${key}`).expect(200);
      await chat(gw2, key).expect(200);

      const started = Date.now();
      await gw.admin().patch(`/admin/keys/${keyId}`).send({ disabled: true }).expect(200);
      let status = 0;
      while (Date.now() - started < 3_000) {
        status = (await gw2.http().get('/v1/key').set('authorization', `Bearer ${key}`)).status;
        if (status === 401) break;
        await new Promise((r) => setTimeout(r, 10));
      }
      const elapsed = Date.now() - started;
      expect(status).toBe(401);
      expect(elapsed).toBeLessThan(1_000);
      expectErrorShape(await chat(gw2, key), 401, 'invalid_api_key');
    });

    it('a workspace rate limit set on one gateway applies to its keys on the other within 1 s', async () => {
      const { key, workspaceId } = await gw.workspaceWithKey();
      await chat(gw2, key).expect(200);
      await chat(gw2, key).expect(200);
      const started = Date.now();
      const updated = await gw.admin().patch(`/admin/workspaces/${workspaceId}`).send({ rpm_limit: 1, name: 'limited' }).expect(200);
      expect(updated.body).toMatchObject({ id: workspaceId, name: 'limited', rpm_limit: 1, tpm_limit: null });
      // the first request of the window may pass, the next ones must not
      await eventually(async () => (await chat(gw2, key)).status === 429, 3_000, 10);
      expect(Date.now() - started).toBeLessThan(1_000);
      const refused = await chat(gw2, key);
      expectErrorShape(refused, 429, 'rate_limit_exceeded');
      expect(refused.body.error.type).toBe('requests');
    });

    it('PATCH /admin/workspaces never changes a balance and refuses unknown fields', async () => {
      const workspaceId = await createWorkspace();
      expectErrorShape(
        await gw.admin().patch(`/admin/workspaces/${workspaceId}`).send({ balance_micros: 1_000_000 }),
        400,
        'invalid_request_error',
      );
      expectErrorShape(await gw.admin().patch(`/admin/workspaces/${workspaceId}`).send({ rpm_limit: 0 }), 400, 'invalid_request_error');
      expectErrorShape(
        await gw.admin().patch('/admin/workspaces/00000000-0000-0000-0000-000000000000').send({ name: 'x' }),
        404,
        'not_found',
      );
      expect(await balance(workspaceId)).toBe(0);
    });

    it('a scope change on one gateway reaches the other within 1 s', async () => {
      const { key, keyId } = await gw.workspaceWithKey();
      await chat(gw2, key, 'gpt-4o-mini').expect(200);
      const started = Date.now();
      await gw
        .admin()
        .patch(`/admin/keys/${keyId}`)
        .send({ models: ['Qwen/Qwen-Plus'] })
        .expect(200);
      await eventually(async () => (await chat(gw2, key, 'gpt-4o-mini')).status === 403, 3_000, 10);
      expect(Date.now() - started).toBeLessThan(1_000);
    });

    it('a model added or repriced with PUT /admin/models shows in /v1/models on both gateways', async () => {
      const { key } = await gw.workspaceWithKey();
      const model = {
        id: 'acme/fast-chat',
        provider: 'deepseek',
        upstream_model: 'fast-chat-v1',
        type: 'chat',
        input_price_micros: 111_000,
        output_price_micros: 222_000,
        sellable: true,
        max_output_tokens: 2_048,
        context_length: 32_000,
      };
      const created = await gw.admin().put('/admin/models').send(model).expect(200);
      expect(created.body).toEqual({ ...model, fallbacks: [] });

      const pricing = async (g: TestGateway) => {
        const res = await g.http().get('/v1/models').set('authorization', `Bearer ${key}`).expect(200);
        return res.body.data.find((m: { id: string }) => m.id === model.id)?.pricing;
      };
      for (const g of [gw, gw2]) {
        await eventually(async () => (await pricing(g))?.input_price_micros === 111_000);
        expect(await pricing(g)).toEqual({ input_price_micros: 111_000, output_price_micros: 222_000 });
      }

      await gw
        .admin()
        .put('/admin/models')
        .send({ ...model, input_price_micros: 333_000, output_price_micros: 444_000 })
        .expect(200);
      for (const g of [gw, gw2]) {
        await eventually(async () => (await pricing(g))?.input_price_micros === 333_000);
        expect(await pricing(g)).toEqual({ input_price_micros: 333_000, output_price_micros: 444_000 });
      }

      // the new model is routed to its provider with its upstream name, on the other gateway too
      provider.received.length = 0;
      const res = await chat(gw2, key, model.id).expect(200);
      expect(res.body.model).toBe(model.id);
      expect(provider.last().body.model).toBe('fast-chat-v1');
      expect(provider.last().body.max_tokens).toBe(2_048);

      // and charged at the new price
      await gw.settled();
      const [log] = await gw.db.query('SELECT prompt_tokens, completion_tokens, cost_micros FROM usage_logs WHERE request_id = $1', [
        res.headers['x-request-id'],
      ]);
      const expected = Math.ceil((log.prompt_tokens * 333_000 + log.completion_tokens * 444_000) / 1_000_000);
      expect(Number(log.cost_micros)).toBe(expected);
    });
  });

  describe('catalog', () => {
    it('PUT /admin/models validates its body', async () => {
      const valid = {
        id: 'acme/m',
        provider: 'deepseek',
        upstream_model: 'm',
        type: 'chat',
        input_price_micros: 1,
        output_price_micros: 1,
        sellable: true,
      };
      expectErrorShape(
        await gw
          .admin()
          .put('/admin/models')
          .send({ ...valid, type: 'image' }),
        400,
        'invalid_request_error',
        'type',
      );
      expectErrorShape(
        await gw
          .admin()
          .put('/admin/models')
          .send({ ...valid, input_price_micros: -1 }),
        400,
        'invalid_request_error',
        'input_price_micros',
      );
      expectErrorShape(
        await gw
          .admin()
          .put('/admin/models')
          .send({ ...valid, provider: 'no-such-provider' }),
        400,
        'invalid_request_error',
        'provider',
      );
      expectErrorShape(
        await gw
          .admin()
          .put('/admin/models')
          .send({ ...valid, surprise: 1 }),
        400,
        'invalid_request_error',
        'surprise',
      );
    });

    it('PUT /admin/providers never returns the api_key and stores it encrypted', async () => {
      const secret = `sk-very-secret-${randomUUID()}`;
      const put = await gw
        .admin()
        .put('/admin/providers')
        .send({ id: 'acme-llm', base_url: `${provider.url}/`, api_key: secret })
        .expect(200);
      expect(put.body).toEqual({
        id: 'acme-llm',
        base_url: provider.url,
        has_api_key: true,
        max_connections: 256,
        max_tokens_field: 'both',
      });
      expect(put.text).not.toContain(secret);

      const list = await gw.admin().get('/admin/providers').expect(200);
      expect(list.text).not.toContain(secret);
      expect(list.body.data.find((p: { id: string }) => p.id === 'acme-llm')).toEqual({
        id: 'acme-llm',
        base_url: provider.url,
        has_api_key: true,
        max_connections: 256,
        max_tokens_field: 'both',
      });
      for (const p of list.body.data) expect(p).not.toHaveProperty('api_key');

      const [row] = await gw.db.query('SELECT * FROM providers WHERE id = $1', ['acme-llm']);
      expect(JSON.stringify(row)).not.toContain(secret);
      expect(typeof row.api_key_encrypted).toBe('string');
      expect(row.api_key_encrypted.length).toBeGreaterThan(secret.length);
      expect(row.api_key_encrypted).not.toContain(Buffer.from(secret).toString('base64'));
      expect(row.api_key_encrypted).not.toContain(Buffer.from(secret).toString('base64url'));
      expect(row.api_key_encrypted).not.toContain(Buffer.from(secret).toString('hex'));

      // the stored key is what the provider receives
      const model = {
        id: 'acme/llm',
        provider: 'acme-llm',
        upstream_model: 'acme-1',
        type: 'chat',
        input_price_micros: 1,
        output_price_micros: 1,
        sellable: true,
      };
      const modelRes = await gw.admin().put('/admin/models').send(model).expect(200);
      expect(modelRes.text).not.toContain(secret);
      const { key } = await gw.workspaceWithKey();
      provider.received.length = 0;
      await chat(gw, key, 'acme/llm').expect(200);
      expect(provider.last().headers.authorization).toBe(`Bearer ${secret}`);

      const models = await gw.admin().get('/admin/models').expect(200);
      expect(models.text).not.toContain(secret);
    });

    it('PUT /admin/providers keeps the stored key when api_key is omitted, and removes it with null', async () => {
      const secret = `sk-keep-${randomUUID()}`;
      await gw.admin().put('/admin/providers').send({ id: 'keeper', base_url: provider.url, api_key: secret }).expect(200);
      const kept = await gw
        .admin()
        .put('/admin/providers')
        .send({ id: 'keeper', base_url: `${provider.url}/` })
        .expect(200);
      expect(kept.body.has_api_key).toBe(true);
      const [row] = await gw.db.query('SELECT api_key_encrypted FROM providers WHERE id = $1', ['keeper']);
      expect(row.api_key_encrypted).not.toBeNull();
      const removed = await gw.admin().put('/admin/providers').send({ id: 'keeper', base_url: provider.url, api_key: null }).expect(200);
      expect(removed.body.has_api_key).toBe(false);
    });

    it('PUT /admin/providers validates its body', async () => {
      expectErrorShape(
        await gw.admin().put('/admin/providers').send({ id: 'x', base_url: 'ftp://nope' }),
        400,
        'invalid_request_error',
        'base_url',
      );
      expectErrorShape(
        await gw.admin().put('/admin/providers').send({ id: 'Bad Id', base_url: 'http://a.example' }),
        400,
        'invalid_request_error',
        'id',
      );
      expectErrorShape(
        await gw.admin().put('/admin/providers').send({ id: 'x', base_url: 'http://a.example', api_key_encrypted: 'v1.a.b.c' }),
        400,
        'invalid_request_error',
        'api_key_encrypted',
      );
    });
  });

  describe('usage logs', () => {
    let workspaceId: string;
    let keyA: { key: string; id: string };
    let keyB: { key: string; id: string };
    /** request ids in the order the requests were made */
    const made: Array<{ requestId: string; keyId: string; model: string }> = [];

    beforeAll(async () => {
      workspaceId = await createWorkspace('usage');
      await credit(workspaceId, { amount_micros: 50_000_000 }).expect(201);
      const mk = async (name: string) => {
        const res = await gw.admin().post(`/admin/workspaces/${workspaceId}/keys`).send({ name }).expect(201);
        return { key: res.body.key as string, id: res.body.id as string };
      };
      keyA = await mk('a');
      keyB = await mk('b');
      const plan: Array<[{ key: string; id: string }, string]> = [
        [keyA, 'deepseek-v4-flash'],
        [keyA, 'gpt-4o-mini'],
        [keyB, 'deepseek-v4-flash'],
        [keyB, 'Qwen/Qwen-Plus'],
        [keyA, 'deepseek-v4-flash'],
      ];
      for (const [k, model] of plan) {
        const res = await chat(gw, k.key, model).expect(200);
        made.push({ requestId: res.headers['x-request-id'], keyId: k.id, model });
        // each settled before the next, so the log order is the request order
        await gw.settled();
      }
    });

    const list = (query: Record<string, string | number> = {}) =>
      gw.admin().get(`/admin/workspaces/${workspaceId}/usage-logs`).query(query);

    it('lists every request, newest first, in the contract shape', async () => {
      const res = await list().expect(200);
      expect(res.body.next_cursor).toBeNull();
      expect(res.body.data.map((l: { request_id: string }) => l.request_id)).toEqual(made.map((m) => m.requestId).reverse());
      const [newest] = res.body.data;
      expect(newest).toEqual(
        expect.objectContaining({
          request_id: made[4].requestId,
          key_id: keyA.id,
          model: 'deepseek-v4-flash',
          provider: 'deepseek',
          prompt_tokens: 12,
          completion_tokens: 34,
          cost_micros: expect.any(Number),
          status: 200,
          error_code: null,
          latency_ms: expect.any(Number),
          stream: false,
          created_at: expect.any(String),
        }),
      );
      expect(Number.isNaN(Date.parse(newest.created_at))).toBe(false);
      const times = res.body.data.map((l: { created_at: string }) => Date.parse(l.created_at));
      expect([...times].sort((a, b) => b - a)).toEqual(times);
    });

    it('pages with limit and cursor', async () => {
      const seen: string[] = [];
      let cursor: string | null = null;
      do {
        const query: Record<string, string | number> = { limit: 2 };
        if (cursor) query.cursor = cursor;
        const res = await list(query).expect(200);
        expect(res.body.data.length).toBeLessThanOrEqual(2);
        seen.push(...res.body.data.map((l: { request_id: string }) => l.request_id));
        cursor = res.body.next_cursor;
      } while (cursor);
      expect(seen).toEqual(made.map((m) => m.requestId).reverse());
    });

    it('filters by model', async () => {
      const res = await list({ model: 'deepseek-v4-flash' }).expect(200);
      const expected = made
        .filter((m) => m.model === 'deepseek-v4-flash')
        .map((m) => m.requestId)
        .reverse();
      expect(res.body.data.map((l: { request_id: string }) => l.request_id)).toEqual(expected);
      const none = await list({ model: 'text-embedding-3-small' }).expect(200);
      expect(none.body.data).toEqual([]);
    });

    it('filters by key_id', async () => {
      const res = await list({ key_id: keyB.id }).expect(200);
      expect(res.body.data.map((l: { request_id: string }) => l.request_id)).toEqual(
        made
          .filter((m) => m.keyId === keyB.id)
          .map((m) => m.requestId)
          .reverse(),
      );
      expect(res.body.data.every((l: { key_id: string }) => l.key_id === keyB.id)).toBe(true);
    });

    it('combines filters with paging', async () => {
      const expected = made
        .filter((m) => m.keyId === keyA.id && m.model === 'deepseek-v4-flash')
        .map((m) => m.requestId)
        .reverse();
      const first = await list({ key_id: keyA.id, model: 'deepseek-v4-flash', limit: 1 }).expect(200);
      expect(first.body.data.map((l: { request_id: string }) => l.request_id)).toEqual([expected[0]]);
      expect(first.body.next_cursor).toEqual(expect.any(String));
      const second = await list({ key_id: keyA.id, model: 'deepseek-v4-flash', limit: 1, cursor: first.body.next_cursor }).expect(200);
      expect(second.body.data.map((l: { request_id: string }) => l.request_id)).toEqual([expected[1]]);
    });

    it('defaults to 20 entries a page', async () => {
      const id = await createWorkspace('many');
      await credit(id, { amount_micros: 50_000_000 }).expect(201);
      const created = await gw.admin().post(`/admin/workspaces/${id}/keys`).send({ name: 'k' }).expect(201);
      for (let i = 0; i < 21; i++) await chat(gw, created.body.key).expect(200);
      await gw.settled();
      const res = await gw.admin().get(`/admin/workspaces/${id}/usage-logs`).expect(200);
      expect(res.body.data).toHaveLength(20);
      expect(res.body.next_cursor).toEqual(expect.any(String));
      const rest = await gw.admin().get(`/admin/workspaces/${id}/usage-logs`).query({ cursor: res.body.next_cursor }).expect(200);
      expect(rest.body.data).toHaveLength(1);
      expect(rest.body.next_cursor).toBeNull();
    });

    it('refuses invalid parameters with 400', async () => {
      expectErrorShape(await list({ limit: 0 }), 400, 'invalid_request_error', 'limit');
      expectErrorShape(await list({ limit: 101 }), 400, 'invalid_request_error', 'limit');
      expectErrorShape(await list({ cursor: 'not-a-cursor' }), 400, 'invalid_request_error', 'cursor');
      expectErrorShape(await list({ key_id: 'not-a-uuid' }), 400, 'invalid_request_error', 'key_id');
    });

    it("shows only the workspace's own logs", async () => {
      const other = await gw.workspaceWithKey();
      await chat(gw, other.key).expect(200);
      await gw.settled();
      const res = await list({ limit: 100 }).expect(200);
      expect(res.body.data).toHaveLength(made.length);
      const theirs = await gw.admin().get(`/admin/workspaces/${other.workspaceId}/usage-logs`).expect(200);
      expect(theirs.body.data).toHaveLength(1);
      expect(theirs.body.data[0].key_id).toBe(other.keyId);
    });
  });

  describe('docs and queue dashboard', () => {
    it('GET /docs is the Swagger UI, public', async () => {
      const res = await gw.http().get('/docs').redirects(2).expect(200);
      expect(res.headers['content-type']).toMatch(/text\/html/);
      expect(res.headers['x-request-id']).toMatch(/\S/);
      expect(res.text).toMatch(/swagger/i);
    });

    it('GET /docs-json documents the public and admin endpoints', async () => {
      const res = await gw.http().get('/docs-json').expect(200);
      const paths = Object.keys(res.body.paths);
      for (const path of [
        '/v1/chat/completions',
        '/v1/embeddings',
        '/v1/models',
        '/v1/key',
        '/admin/workspaces',
        '/admin/models',
        '/admin/providers',
      ]) {
        expect(paths).toContain(path);
      }
    });

    it('/admin/queues needs the admin token', async () => {
      const without = await gw.http().get('/admin/queues');
      expect(without.status).toBe(401);
      expect(without.headers['x-request-id']).toMatch(/\S/);
      expect(without.body.error).toEqual(expect.objectContaining({ message: expect.any(String), param: null, code: expect.any(String) }));
      expect((await gw.http().get('/admin/queues').set('authorization', 'Bearer wrong')).status).toBe(401);
      const apiKey = (await gw.workspaceWithKey()).key;
      expect((await gw.http().get('/admin/queues').set('authorization', `Bearer ${apiKey}`)).status).toBe(401);

      const withToken = await gw.http().get('/admin/queues').set('authorization', `Bearer ${ADMIN_TOKEN}`);
      expect(withToken.status).toBe(200);
      expect(withToken.headers['content-type']).toMatch(/text\/html/);
      expect(withToken.headers['x-request-id']).toMatch(/\S/);
    });

    it('/admin/queues API routes need the admin token too', async () => {
      expect((await gw.http().get('/admin/queues/api/queues')).status).toBe(401);
      const res = await gw.http().get('/admin/queues/api/queues').set('authorization', `Bearer ${ADMIN_TOKEN}`);
      expect(res.status).toBe(200);
    });
  });
});
