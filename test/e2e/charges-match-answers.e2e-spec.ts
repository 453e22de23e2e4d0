import { request as httpRequest } from 'node:http';
import Redis from 'ioredis';
import { reconcile, unknownOutcomes } from '../../src/billing/reconcile';
import { countPromptTokens, countTextTokens } from '../../src/chat/token-count';
import { HoldSweeper } from '../../src/billing/settlement/hold-sweeper.service';
import { REDIS_URL } from '../helpers/databases';
import { completion, FakeProvider, streamEvents } from '../helpers/fake-provider';
import { TestGateway } from '../helpers/gateway';
import { chargesOf, costAt, money, promptBoundOf, usageLog } from '../helpers/ledger';
import { closeAll, startGatewayUsing, startWithFakeProvider } from '../helpers/setup';
import { waitFor } from '../helpers/wait';

const MODEL = 'deepseek-v4-flash';
const cost = costAt(270_000, 1_100_000);
const NO_SCHEDULED_SWEEP = { SWEEP_INTERVAL_MS: '3600000' };

/**
 * What a client is charged is what it got: an answer that never reached it is free, the
 * provider is bound to the completion tokens held for, malformed usage is counted, the cost the
 * client is told is the charge, and an outcome the gateway cannot know is never invented.
 */
describe('charges match answers (end to end)', () => {
  let gw: TestGateway;
  let provider: FakeProvider;

  beforeAll(async () => {
    ({ gw, provider } = await startWithFakeProvider({ providers: ['deepseek', 'openai', 'dashscope'] }));
  });
  afterAll(() => closeAll(gw, provider));
  afterEach(() =>
    provider.respond((req) => (req.body.stream ? { events: streamEvents(req.body.model, ['Hi']) } : { json: completion(req.body.model) })),
  );

  const chat = (key: string, body: Record<string, unknown> = {}) =>
    gw
      .http()
      .post('/v1/chat/completions')
      .set('authorization', `Bearer ${key}`)
      .send({ model: MODEL, messages: [{ role: 'user', content: 'hi' }], ...body });

  describe('a client that hangs up after the provider answered', () => {
    /** Sends a chat request over its own connection and destroys it the moment the provider has sent its answer. */
    function hangUpWhenAnswered(key: string): Promise<void> {
      return new Promise((resolve, reject) => {
        const body = JSON.stringify({ model: MODEL, messages: [{ role: 'user', content: 'a long essay' }] });
        const req = httpRequest(`${gw.baseURL}/chat/completions`, {
          method: 'POST',
          agent: false,
          headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) },
        });
        req.on('error', () => undefined);
        req.on('response', (res) => reject(new Error(`the client got an answer (${res.statusCode}) before it hung up`)));
        // a large answer (16 MB): the gateway is still reading or decoding it when the client leaves
        const essay = 'word '.repeat(3_200_000);
        provider.respond((r) => ({
          json: completion(r.body.model, essay, { prompt_tokens: 12, completion_tokens: 4_000 }),
          onSent: () => {
            req.destroy();
            resolve();
          },
        }));
        req.end(body);
      });
    }

    it('is logged 499 client_disconnected and charged nothing, every time', async () => {
      const credit = 50_000_000;
      const { workspaceId, key, keyId } = await gw.workspaceWithKey(credit);
      for (let attempt = 0; attempt < 3; attempt++) await hangUpWhenAnswered(key);
      await gw.settled();
      const logs = await waitFor('three usage logs', async () => {
        const rows = await gw.db.query('SELECT request_id, status, error_code, cost_micros FROM usage_logs WHERE workspace_id = $1', [
          workspaceId,
        ]);
        return rows.length === 3 ? rows : undefined;
      });
      for (const log of logs) {
        expect(log).toMatchObject({ status: 499, error_code: 'client_disconnected' });
        expect(Number(log.cost_micros)).toBe(0);
        expect(await chargesOf(gw, log.request_id)).toEqual([]);
      }
      expect(await money(gw, workspaceId, keyId)).toEqual({ balance: credit, wsHeld: 0, spent: 0, keyHeld: 0 });
      expect(await reconcile(gw.db)).toEqual([]);
    });
  });

  describe('the completion bound sent to the provider', () => {
    const useField = (id: string, field: string) =>
      gw.admin().put('/admin/providers').send({ id, base_url: provider.url, max_tokens_field: field }).expect(200);
    afterAll(async () => {
      await useField('deepseek', 'max_tokens');
      await useField('openai', 'max_completion_tokens');
    });

    it('is the one bound held for, even when the client sends two different ones', async () => {
      const { key } = await gw.workspaceWithKey();
      await useField('deepseek', 'both');
      const res = await chat(key, { max_tokens: 1, max_completion_tokens: 8_192 }).expect(200);
      expect(provider.last().body).toMatchObject({ max_tokens: 1, max_completion_tokens: 1 });
      const bound = promptBoundOf({
        model: MODEL,
        messages: [{ role: 'user', content: 'hi' }],
        max_tokens: 1,
        max_completion_tokens: 8_192,
      });
      expect(Number(res.headers['x-nexo-cost-micros'])).toBeLessThanOrEqual(cost(bound, 1));
    });

    it('goes in max_tokens alone to a provider that knows only max_tokens (DeepSeek)', async () => {
      const { key } = await gw.workspaceWithKey();
      await useField('deepseek', 'max_tokens');
      await chat(key, { max_completion_tokens: 300 }).expect(200);
      expect(provider.last().body.max_tokens).toBe(300);
      expect(provider.last().body).not.toHaveProperty('max_completion_tokens');
    });

    it('goes in max_completion_tokens alone to a provider that refuses both (OpenAI)', async () => {
      const { key } = await gw.workspaceWithKey();
      await useField('openai', 'max_completion_tokens');
      await chat(key, { model: 'gpt-4o-mini', max_tokens: 40, max_completion_tokens: 90 }).expect(200);
      expect(provider.last().body.max_completion_tokens).toBe(40);
      expect(provider.last().body).not.toHaveProperty('max_tokens');
    });

    it('is the model cap, in both fields, when the client sets none to a provider that may honour either', async () => {
      const { key } = await gw.workspaceWithKey();
      await useField('dashscope', 'both');
      await chat(key, { model: 'Qwen/Qwen-Plus' }).expect(200);
      const [model] = await gw.db.query(`SELECT max_output_tokens FROM models WHERE id = 'Qwen/Qwen-Plus'`);
      expect(provider.last().body).toMatchObject({ max_tokens: model.max_output_tokens, max_completion_tokens: model.max_output_tokens });
    });
  });

  describe('a malformed usage report', () => {
    it.each([
      { name: 'counts as strings', usage: { prompt_tokens: '9', completion_tokens: '14' } },
      { name: 'fractional counts', usage: { prompt_tokens: 9.5, completion_tokens: 14.2 } },
      { name: 'no completion count', usage: { prompt_tokens: 9 } },
      { name: 'negative counts', usage: { prompt_tokens: -9, completion_tokens: 14 } },
      { name: 'not an object', usage: 'lots' },
    ])('($name) is counted with the tokenizer, capped at the bound, not charged as the hold', async ({ usage }) => {
      const credit = 5_000_000;
      const { workspaceId, key, keyId } = await gw.workspaceWithKey(credit);
      const messages = [{ role: 'user', content: 'Count the tokens of this question, please.' }];
      const answer = 'Fourteen tokens or so, give or take a few of them.';
      provider.respond((req) => ({ json: completion(req.body.model, answer, usage) }));
      const res = await chat(key, { messages, max_tokens: 2_000 }).expect(200);

      const prompt = countPromptTokens({ messages });
      const completionTokens = countTextTokens(answer);
      const expected = cost(prompt, completionTokens);
      expect(Number(res.headers['x-nexo-cost-micros'])).toBe(expected);
      expect(expected).toBeLessThan(cost(promptBoundOf({ model: MODEL, messages, max_tokens: 2_000 }), 2_000) / 10);
      const log = await usageLog(gw, res.headers['x-request-id']);
      expect(log).toMatchObject({ usage_source: 'tokenizer', prompt_tokens: prompt, completion_tokens: completionTokens, status: 200 });
      await gw.settled();
      expect(await money(gw, workspaceId, keyId)).toEqual({ balance: credit - expected, wsHeld: 0, spent: expected, keyHeld: 0 });
    });
  });

  describe('the cost the client is told', () => {
    it('is what was charged when the key budget is lowered while the request runs (JSON)', async () => {
      const { key, keyId } = await gw.workspaceWithKey(10_000_000, { budget_micros: 5_000_000 });
      provider.respond((req) => ({ json: completion(req.body.model, 'slow answer'), delayMs: 600 }));
      const pending = chat(key).then((r) => r);
      await waitFor('the hold', async () =>
        (await gw.db.query('SELECT 1 FROM holds WHERE key_id = $1', [keyId])).length ? true : undefined,
      );
      await gw.admin().patch(`/admin/keys/${keyId}`).send({ budget_micros: 0 }).expect(200);
      const res = await pending;
      expect(res.status).toBe(200);
      await gw.settled();
      expect(await chargesOf(gw, res.headers['x-request-id'])).toEqual([]);
      expect(res.headers['x-nexo-cost-micros']).toBe('0');
      expect(Number((await usageLog(gw, res.headers['x-request-id'])).cost_micros)).toBe(0);
    });

    it('is what was charged when the key budget is lowered while a stream runs', async () => {
      const { key, keyId } = await gw.workspaceWithKey(10_000_000, { budget_micros: 5_000_000 });
      provider.respond((req) => ({ events: streamEvents(req.body.model, ['Once', ' upon', ' a', ' time']), eventGapMs: 150 }));
      const pending = chat(key, { stream: true }).then((r) => r);
      await waitFor('the hold', async () =>
        (await gw.db.query('SELECT 1 FROM holds WHERE key_id = $1', [keyId])).length ? true : undefined,
      );
      await gw.admin().patch(`/admin/keys/${keyId}`).send({ budget_micros: 10 }).expect(200);
      const res = await pending;
      await gw.settled();
      const charged = (await chargesOf(gw, res.headers['x-request-id'])).reduce((a, b) => a + b, 0);
      expect(charged).toBe(10);
      expect(res.text).toContain(`: cost_micros=${charged}\n`);
      expect(res.text).toContain('data: [DONE]');
    });

    it('is what was charged for a key without a budget', async () => {
      const { key } = await gw.workspaceWithKey();
      const res = await chat(key).expect(200);
      await gw.settled();
      expect(await chargesOf(gw, res.headers['x-request-id'])).toEqual([Number(res.headers['x-nexo-cost-micros'])]);
    });
  });

  describe('an expired hold whose settlement was lost', () => {
    it('is released at no charge and logged with no status (outcome unknown), and reconcile counts it', async () => {
      // an api-only gateway: no worker applies the queued settlement
      const api = await startGatewayUsing(provider, {
        providers: 'deepseek',
        gateway: { env: { NEXO_ROLE: 'api', ...NO_SCHEDULED_SWEEP } },
      });
      const redis = new Redis(REDIS_URL);
      try {
        const credit = 3_000_000;
        const { workspaceId, key, keyId } = await api.workspaceWithKey(credit);
        const served = await api
          .http()
          .post('/v1/chat/completions')
          .set('authorization', `Bearer ${key}`)
          .send({ model: MODEL, messages: [{ role: 'user', content: 'hi' }] });
        expect(served.status).toBe(200);
        // Redis restarts without persistence: the queued settlement is gone
        const jobs = await redis.keys(`${api.redisPrefix}:bull:*`);
        expect(jobs.length).toBeGreaterThan(0);
        await redis.del(...jobs);
        await api.db.query(`UPDATE holds SET expires_at = now() - interval '1 minute'`);

        expect(await api.app.get(HoldSweeper).sweep()).toMatchObject({ released: 1, errors: 0 });
        const log = await usageLog(api, served.headers['x-request-id']);
        // the client got a 200; the sweeper cannot know that and must not claim a 502
        expect(log).toMatchObject({ status: null, error_code: 'outcome_unknown', usage_source: 'none' });
        expect(Number(log.cost_micros)).toBe(0);
        expect(await money(api, workspaceId, keyId)).toEqual({ balance: credit, wsHeld: 0, spent: 0, keyHeld: 0 });
        expect(await reconcile(api.db)).toEqual([]);
        expect(await unknownOutcomes(api.db)).toEqual({ requests: 1, workspaces: 1 });

        const listed = await api.admin().get(`/admin/workspaces/${workspaceId}/usage-logs`).expect(200);
        expect(listed.body.data[0]).toMatchObject({
          request_id: served.headers['x-request-id'],
          status: null,
          error_code: 'outcome_unknown',
        });
      } finally {
        redis.disconnect();
        await api.close();
      }
    });
  });

  describe('readiness', () => {
    it('says whether Redis keeps what the settlement queue needs', async () => {
      const redis = new Redis(REDIS_URL);
      try {
        const [, policy] = (await redis.config('GET', 'maxmemory-policy')) as string[];
        const [, save] = (await redis.config('GET', 'save')) as string[];
        const [, aof] = (await redis.config('GET', 'appendonly')) as string[];
        const durable = policy === 'noeviction' && (aof === 'yes' || save.trim() !== '');
        const res = await gw.http().get('/health/ready').expect(200);
        expect(res.body.checks).toEqual({ postgres: 'up', redis: 'up', redis_durability: durable ? 'ok' : 'at_risk', process: 'serving' });
        if (!durable) expect(res.body.warnings.join(' ')).toMatch(/persistence|noeviction/);
      } finally {
        redis.disconnect();
      }
    });
  });
});
