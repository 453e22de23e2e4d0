import { completion, FakeHandler, FakeProvider, FakeReply } from '../helpers/fake-provider';
import { TestGateway } from '../helpers/gateway';
import { closeAll, startWithFakeProvider } from '../helpers/setup';

/**
 * The OpenAI-compatible surface (CONTRACT §3) as the official SDK and plain HTTP clients see it:
 * models, chat completions and embeddings through a fake provider, and GET /v1/key.
 */

const PROVIDER_KEY = 'sk-provider-secret';
const QWEN = 'Qwen/Qwen-Plus';
const EMBEDDING = 'text-embedding-3-small';

interface PublicModel {
  id: string;
  object: string;
  created: number;
  owned_by: string;
  type: 'chat' | 'embedding';
  pricing: { input_price_micros: number; output_price_micros: number };
}

interface ModelRow {
  id: string;
  provider_id: string;
  upstream_model: string;
  type: string;
  input_price_micros: string;
  output_price_micros: string;
  max_output_tokens: number;
  sellable: boolean;
}

/** CONTRACT §2: ceil((prompt * input + completion * output) / 1e6). */
function expectedCost(promptTokens: number, completionTokens: number, row: ModelRow): number {
  const total = BigInt(promptTokens) * BigInt(row.input_price_micros) + BigInt(completionTokens) * BigInt(row.output_price_micros);
  return Number((total + 999_999n) / 1_000_000n);
}

/** Answers embeddings like OpenAI does: base64 float32 when asked, else a float array. */
function embeddingHandler(vector: number[]): FakeHandler {
  return (req) => ({
    json: {
      object: 'list',
      data: [
        {
          object: 'embedding',
          index: 0,
          embedding: req.body.encoding_format === 'base64' ? Buffer.from(new Float32Array(vector).buffer).toString('base64') : vector,
        },
      ],
      model: req.body.model,
      usage: { prompt_tokens: 5, total_tokens: 5 },
    },
  });
}

describe('public API', () => {
  let gw: TestGateway;
  let provider: FakeProvider;

  async function modelRow(id: string): Promise<ModelRow> {
    const [row] = await gw.db.query('SELECT * FROM models WHERE id = $1', [id]);
    if (!row) throw new Error(`model ${id} is not in the catalog`);
    return row;
  }

  beforeAll(async () => {
    ({ gw, provider } = await startWithFakeProvider({ providers: ['dashscope', 'openai', 'deepseek'], providerKey: PROVIDER_KEY }));
  });
  afterAll(() => closeAll(gw, provider));
  beforeEach(() => {
    provider.received.length = 0;
  });

  describe('models', () => {
    it('lists every sellable model with its type and pricing (SDK)', async () => {
      const { key } = await gw.workspaceWithKey();
      const page = await gw.openai(key).models.list();
      const listed = page.data as unknown as PublicModel[];

      const rows: ModelRow[] = await gw.db.query('SELECT * FROM models WHERE sellable ORDER BY id');
      expect(rows.length).toBeGreaterThanOrEqual(4);
      expect(listed.map((m) => m.id).sort()).toEqual(rows.map((r) => r.id).sort());
      for (const row of rows) {
        const model = listed.find((m) => m.id === row.id)!;
        expect(model).toEqual({
          id: row.id,
          object: 'model',
          created: expect.any(Number),
          owned_by: row.provider_id,
          type: row.type,
          pricing: { input_price_micros: Number(row.input_price_micros), output_price_micros: Number(row.output_price_micros) },
        });
        expect(Number.isInteger(model.pricing.input_price_micros)).toBe(true);
      }
      expect(listed.find((m) => m.id === EMBEDDING)?.type).toBe('embedding');
      expect(listed.find((m) => m.id === QWEN)?.type).toBe('chat');
    });

    it('answers the raw list in the OpenAI list shape', async () => {
      const { key } = await gw.workspaceWithKey();
      const res = await gw.http().get('/v1/models').set('authorization', `Bearer ${key}`).expect(200);
      expect(res.body.object).toBe('list');
      expect(Array.isArray(res.body.data)).toBe(true);
      expect(res.headers['x-request-id']).toMatch(/\S/);
    });

    it('leaves out models that are not sellable', async () => {
      await gw
        .admin()
        .put('/admin/models')
        .send({
          id: 'hidden/not-for-sale',
          provider: 'deepseek',
          upstream_model: 'hidden',
          type: 'chat',
          input_price_micros: 1,
          output_price_micros: 1,
          sellable: false,
        })
        .expect(200);
      const { key } = await gw.workspaceWithKey();
      const page = await gw.openai(key).models.list();
      expect(page.data.map((m) => m.id)).not.toContain('hidden/not-for-sale');
      const res = await gw.http().get('/v1/models/hidden/not-for-sale').set('authorization', `Bearer ${key}`);
      expect(res.status).toBe(404);
      expect(res.body.error.code).toBe('model_not_found');
    });

    it('retrieves a model whose id contains a slash (SDK)', async () => {
      const { key } = await gw.workspaceWithKey();
      const model = (await gw.openai(key).models.retrieve(QWEN)) as unknown as PublicModel;
      const row = await modelRow(QWEN);
      expect(model).toEqual({
        id: QWEN,
        object: 'model',
        created: expect.any(Number),
        owned_by: row.provider_id,
        type: 'chat',
        pricing: { input_price_micros: Number(row.input_price_micros), output_price_micros: Number(row.output_price_micros) },
      });
    });

    it.each([
      ['a raw slash', '/v1/models/Qwen/Qwen-Plus'],
      ['an encoded slash', '/v1/models/Qwen%2FQwen-Plus'],
    ])('retrieves Qwen/Qwen-Plus with %s in the path', async (_, path) => {
      const { key } = await gw.workspaceWithKey();
      const res = await gw.http().get(path).set('authorization', `Bearer ${key}`).expect(200);
      expect(res.body.id).toBe(QWEN);
      expect(res.body.object).toBe('model');
    });

    it('retrieves a model without a slash', async () => {
      const { key } = await gw.workspaceWithKey();
      const res = await gw.http().get('/v1/models/gpt-4o-mini').set('authorization', `Bearer ${key}`).expect(200);
      expect(res.body.id).toBe('gpt-4o-mini');
    });

    it('answers 404 model_not_found for an unknown model', async () => {
      const { key } = await gw.workspaceWithKey();
      const res = await gw.http().get('/v1/models/no-such/model').set('authorization', `Bearer ${key}`).expect(404);
      expect(res.body.error).toEqual({
        message: expect.any(String),
        type: expect.any(String),
        param: expect.anything(),
        code: 'model_not_found',
      });
    });

    describe('with a model-scoped key', () => {
      let key: string;
      beforeAll(async () => {
        ({ key } = await gw.workspaceWithKey(10_000_000, { models: [QWEN, EMBEDDING] }));
      });

      it('lists only the models in scope', async () => {
        const page = await gw.openai(key).models.list();
        expect(page.data.map((m) => m.id).sort()).toEqual([QWEN, EMBEDDING].sort());
      });

      it('retrieves a model in scope', async () => {
        const model = await gw.openai(key).models.retrieve(QWEN);
        expect(model.id).toBe(QWEN);
      });

      it('answers an out-of-scope model exactly like an absent one: 404', async () => {
        const outOfScope = await gw.http().get('/v1/models/gpt-4o-mini').set('authorization', `Bearer ${key}`);
        const absent = await gw.http().get('/v1/models/gpt-4o-mini-nonexistent').set('authorization', `Bearer ${key}`);
        expect(outOfScope.status).toBe(404);
        expect(outOfScope.body.error.code).toBe('model_not_found');
        expect(absent.status).toBe(404);
        expect(outOfScope.body.error.type).toBe(absent.body.error.type);

        const client = gw.openai(key);
        await expect(client.models.retrieve('gpt-4o-mini')).rejects.toMatchObject({ status: 404, code: 'model_not_found' });
      });
    });
  });

  describe('chat completions', () => {
    it('keeps multi-byte characters intact when the provider body arrives in pieces split inside them', async () => {
      const { key } = await gw.workspaceWithKey();
      const content = 'ñ日本語🙂'.repeat(50);
      const body = Buffer.from(JSON.stringify(completion('qwen-plus', content)));
      const split = body.indexOf(Buffer.from('日')) + 1; // inside the 3-byte character
      provider.respond(() => ({ pieces: [body.subarray(0, split), body.subarray(split, split + 7), body.subarray(split + 7)] }));
      try {
        const res = await gw.openai(key).chat.completions.create({ model: QWEN, messages: [{ role: 'user', content: 'hi' }] });
        expect(res.choices[0].message.content).toBe(content);
      } finally {
        provider.respond(defaultReply);
      }
    });

    it('forwards to the provider with the upstream model and provider key, and answers with the public id', async () => {
      const { key, workspaceId } = await gw.workspaceWithKey();
      const client = gw.openai(key);
      const { data, response } = await client.chat.completions
        .create({ model: QWEN, messages: [{ role: 'user', content: 'Hello there' }] })
        .withResponse();

      expect(provider.received).toHaveLength(1);
      const sent = provider.last();
      expect(sent.method).toBe('POST');
      expect(sent.path).toBe('/v1/chat/completions');
      expect(sent.body.model).toBe((await modelRow(QWEN)).upstream_model);
      expect(sent.body.model).toBe('qwen-plus');
      expect(sent.body.messages).toEqual([{ role: 'user', content: 'Hello there' }]);
      expect(sent.headers.authorization).toBe(`Bearer ${PROVIDER_KEY}`);
      for (const [name, value] of Object.entries(sent.headers)) {
        expect(`${name}: ${String(value)}`).not.toContain(key);
      }
      expect(JSON.stringify(sent.body)).not.toContain(key);

      expect(data.model).toBe(QWEN);
      expect(data.choices[0].message.content).toBe('Hello from the fake provider');
      expect(data.usage).toEqual({ prompt_tokens: 12, completion_tokens: 34, total_tokens: 46 });

      const requestId = response.headers.get('x-request-id');
      expect(requestId).toMatch(/\S/);
      const cost = response.headers.get('x-nexo-cost-micros');
      expect(cost).toMatch(/^\d+$/);
      expect(Number(cost)).toBe(expectedCost(12, 34, await modelRow(QWEN)));

      await gw.settled();
      const logs = await gw.db.query('SELECT request_id, model, provider, status, cost_micros FROM usage_logs WHERE workspace_id = $1', [
        workspaceId,
      ]);
      expect(logs).toHaveLength(1);
      expect(logs[0].request_id).toBe(requestId);
      expect(logs[0].model).toBe(QWEN);
      expect(logs[0].provider).toBe('dashscope');
      expect(logs[0].status).toBe(200);
      expect(Number(logs[0].cost_micros)).toBe(Number(cost));
    });

    it('gives every request its own x-request-id, equal to its usage log request_id', async () => {
      const { key, workspaceId } = await gw.workspaceWithKey();
      const client = gw.openai(key);
      const ids: string[] = [];
      for (let i = 0; i < 3; i++) {
        const { response } = await client.chat.completions
          .create({ model: 'deepseek-v4-flash', messages: [{ role: 'user', content: `n${i}` }] })
          .withResponse();
        ids.push(response.headers.get('x-request-id')!);
      }
      expect(new Set(ids).size).toBe(3);
      await gw.settled();
      const logs: Array<{ request_id: string }> = await gw.db.query('SELECT request_id FROM usage_logs WHERE workspace_id = $1', [
        workspaceId,
      ]);
      expect(logs.map((l) => l.request_id).sort()).toEqual([...ids].sort());
    });

    it('forwards OpenAI fields it does not act on untouched', async () => {
      const { key } = await gw.workspaceWithKey();
      const extra = {
        metadata: { customer: 'c-42', trace: 'abc' },
        logit_bias: { '50256': -100, '1234': 5 },
        parallel_tool_calls: false,
        future_field: { nested: [1, 'two', { three: null }] },
        store: false,
        logprobs: true,
        top_logprobs: 2,
      };
      const known = {
        temperature: 0.3,
        top_p: 0.9,
        max_tokens: 77,
        stop: ['END'],
        seed: 7,
        user: 'end-user-1',
        presence_penalty: 0.5,
        frequency_penalty: -0.5,
        response_format: { type: 'json_object' },
        tools: [{ type: 'function', function: { name: 'lookup', parameters: { type: 'object', properties: {} } } }],
        tool_choice: 'auto',
      };
      await gw.openai(key).chat.completions.create({
        model: QWEN,
        messages: [{ role: 'user', content: 'fields' }],
        ...known,
        ...extra,
      } as never);
      const sent = provider.last().body;
      for (const [field, value] of Object.entries({ ...extra, ...known })) expect(sent[field]).toEqual(value);
      expect(sent.model).toBe('qwen-plus');
    });

    it("caps the completion at the model's max_output_tokens when the request sets no limit", async () => {
      const { key } = await gw.workspaceWithKey();
      await gw.openai(key).chat.completions.create({ model: QWEN, messages: [{ role: 'user', content: 'no limit' }] });
      const row = await modelRow(QWEN);
      expect(provider.last().body.max_tokens).toBe(row.max_output_tokens);
    });

    it('follows a new max_output_tokens set through the admin API', async () => {
      const row = await modelRow('gpt-4o-mini');
      const newMax = row.max_output_tokens - 123;
      await gw
        .admin()
        .put('/admin/models')
        .send({
          id: row.id,
          provider: row.provider_id,
          upstream_model: row.upstream_model,
          type: row.type,
          input_price_micros: Number(row.input_price_micros),
          output_price_micros: Number(row.output_price_micros),
          sellable: true,
          max_output_tokens: newMax,
        })
        .expect(200);
      const { key } = await gw.workspaceWithKey();
      await gw.openai(key).chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'x' }] });
      // OpenAI takes max_completion_tokens (and refuses both fields at once)
      expect(provider.last().body.max_completion_tokens).toBe(newMax);
      expect(provider.last().body).not.toHaveProperty('max_tokens');
    });

    it("forwards the client's completion bound in the field the provider honours", async () => {
      const { key } = await gw.workspaceWithKey();
      const client = gw.openai(key);
      await client.chat.completions.create({ model: QWEN, messages: [{ role: 'user', content: 'a' }], max_tokens: 50 });
      expect(provider.last().body.max_tokens).toBe(50);

      // DashScope knows max_tokens: a max_completion_tokens would be ignored there
      await client.chat.completions.create({ model: QWEN, messages: [{ role: 'user', content: 'b' }], max_completion_tokens: 60 });
      expect(provider.last().body.max_tokens).toBe(60);
      expect(provider.last().body).not.toHaveProperty('max_completion_tokens');
    });
  });

  describe('embeddings', () => {
    afterEach(() => provider.respond(defaultReply));

    it('embeds through the SDK (base64 by default) with the upstream model and provider key', async () => {
      const vector = [0.25, -0.5, 1.5];
      provider.respond(embeddingHandler(vector));
      const { key, workspaceId } = await gw.workspaceWithKey();
      const { data, response } = await gw.openai(key).embeddings.create({ model: EMBEDDING, input: 'The quick brown fox' }).withResponse();

      const sent = provider.last();
      expect(sent.path).toBe('/v1/embeddings');
      expect(sent.body.model).toBe((await modelRow(EMBEDDING)).upstream_model);
      expect(sent.body.input).toBe('The quick brown fox');
      expect(sent.body.encoding_format).toBe('base64');
      expect(sent.body.max_tokens).toBeUndefined();
      expect(sent.headers.authorization).toBe(`Bearer ${PROVIDER_KEY}`);
      expect(JSON.stringify(sent.headers)).not.toContain(key);

      expect(data.model).toBe(EMBEDDING);
      expect(Array.from(data.data[0].embedding)).toEqual(vector);
      const requestId = response.headers.get('x-request-id');
      expect(requestId).toMatch(/\S/);

      await gw.settled();
      const [log] = await gw.db.query('SELECT request_id, model, status FROM usage_logs WHERE workspace_id = $1', [workspaceId]);
      expect(log).toMatchObject({ request_id: requestId, model: EMBEDDING, status: 200 });
    });

    it('embeds an array of strings as floats', async () => {
      const vector = [0.5, 0.75];
      provider.respond(embeddingHandler(vector));
      const { key } = await gw.workspaceWithKey();
      const res = await gw.openai(key).embeddings.create({ model: EMBEDDING, input: ['one', 'two'], encoding_format: 'float' });
      expect(provider.last().body.input).toEqual(['one', 'two']);
      expect(provider.last().body.encoding_format).toBe('float');
      expect(res.data[0].embedding).toEqual(vector);
    });
  });

  describe('GET /v1/key', () => {
    it('describes a scoped key with a budget', async () => {
      const expiresAt = new Date(Date.now() + 86_400_000).toISOString();
      const { key, keyId, workspaceId } = await gw.workspaceWithKey(10_000_000, {
        name: 'scoped one',
        models: [QWEN],
        budget_micros: 2_500_000,
        expires_at: expiresAt,
      });
      const res = await gw.http().get('/v1/key').set('authorization', `Bearer ${key}`).expect(200);
      expect(res.headers['x-request-id']).toMatch(/\S/);
      expect(res.body).toEqual({
        id: keyId,
        name: 'scoped one',
        prefix: expect.any(String),
        models: [QWEN],
        budget_micros: 2_500_000,
        budget_period: null,
        spent_micros: 0,
        remaining_micros: 2_500_000,
        expires_at: expiresAt,
        workspace: { id: workspaceId, balance_micros: 10_000_000, available_micros: 10_000_000 },
      });
      expect(key.startsWith(res.body.prefix)).toBe(true);
      expect(res.body.prefix.length).toBeLessThan(key.length);
    });

    it('describes an unscoped key without a budget: remaining is the available balance', async () => {
      const { key } = await gw.workspaceWithKey(3_000_000);
      const res = await gw.http().get('/v1/key').set('authorization', `Bearer ${key}`).expect(200);
      expect(res.body.models).toBeNull();
      expect(res.body.budget_micros).toBeNull();
      expect(res.body.expires_at).toBeNull();
      expect(res.body.remaining_micros).toBe(3_000_000);
      expect(res.body.workspace.available_micros).toBe(3_000_000);
    });

    it('takes the smaller of budget left and workspace balance', async () => {
      const { key } = await gw.workspaceWithKey(1_000_000, { budget_micros: 5_000_000 });
      const res = await gw.http().get('/v1/key').set('authorization', `Bearer ${key}`).expect(200);
      expect(res.body.remaining_micros).toBe(1_000_000);
    });

    it('counts what the key spent', async () => {
      const { key } = await gw.workspaceWithKey(10_000_000, { budget_micros: 4_000_000 });
      const { response } = await gw
        .openai(key)
        .chat.completions.create({ model: QWEN, messages: [{ role: 'user', content: 'spend' }] })
        .withResponse();
      const cost = Number(response.headers.get('x-nexo-cost-micros'));
      expect(cost).toBeGreaterThan(0);
      await gw.settled();
      const res = await gw.http().get('/v1/key').set('authorization', `Bearer ${key}`).expect(200);
      expect(res.body.spent_micros).toBe(cost);
      expect(res.body.remaining_micros).toBe(4_000_000 - cost);
      expect(res.body.workspace.balance_micros).toBe(10_000_000 - cost);
      expect(res.body.workspace.available_micros).toBe(10_000_000 - cost);
    });
  });
});

/** The fake provider's built-in behaviour, restored after tests that replace it. */
function defaultReply(req: Parameters<FakeHandler>[0]): FakeReply {
  return req.path.endsWith('/embeddings')
    ? {
        json: {
          object: 'list',
          data: [{ object: 'embedding', index: 0, embedding: [0.1, 0.2] }],
          model: req.body.model,
          usage: { prompt_tokens: 5, total_tokens: 5 },
        },
      }
    : { json: completion(req.body.model) };
}
