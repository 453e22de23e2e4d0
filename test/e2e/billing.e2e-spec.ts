import { randomBytes } from 'node:crypto';
import { countTokens } from 'gpt-tokenizer';
import { HoldRepository } from '../../src/billing/hold.repository';
import type { Settlement } from '../../src/billing/settlement/settlement.types';
import { reconcile } from '../../src/billing/reconcile';
import { SettlementBatcher } from '../../src/billing/settlement/settlement-batcher';
import { completion, FakeProvider, sleep } from '../helpers/fake-provider';
import { TestGateway } from '../helpers/gateway';
import { costAt, money, promptBoundOf, usageLog } from '../helpers/ledger';
import { closeAll, startWithFakeProvider } from '../helpers/setup';

// deepseek-v4-flash, micro-USD per 1M tokens (src/catalog/starter-catalog.ts)
const MODEL = 'deepseek-v4-flash';
const IN = 270_000;
const OUT = 1_100_000;

/** CONTRACT §2, written out independently of the implementation. */
const cost = costAt(IN, OUT);

function usd(micros: number): string {
  return `$${Math.floor(micros / 1_000_000)}.${String(micros % 1_000_000).padStart(6, '0')}`;
}

/** A successful request's settlement at the given cost. */
function settlementOf(requestId: string, workspaceId: string, keyId: string, costMicros: number): Settlement {
  return {
    requestId,
    workspaceId,
    keyId,
    model: MODEL,
    provider: 'deepseek',
    promptTokens: 10,
    completionTokens: 20,
    costMicros,
    usageSource: 'provider',
    status: 200,
    errorCode: null,
    latencyMs: 5,
    stream: false,
    createdAt: Date.now(),
  };
}

describe('billing (end to end)', () => {
  let gw: TestGateway;
  let provider: FakeProvider;

  beforeAll(async () => {
    ({ gw, provider } = await startWithFakeProvider({ providers: 'deepseek' }));
  });
  afterAll(() => closeAll(gw, provider));
  beforeEach(() => {
    provider.received.length = 0;
    provider.respond((req) => ({ json: completion(req.body.model) }));
  });

  const chat = (key: string, body: Record<string, unknown>) =>
    gw
      .http()
      .post('/v1/chat/completions')
      .set('authorization', `Bearer ${key}`)
      .send({ model: MODEL, ...body });

  async function charges(workspaceId: string): Promise<Array<Record<string, any>>> {
    return gw.db.query(`SELECT * FROM ledger_entries WHERE workspace_id = $1 AND kind = 'charge' ORDER BY id`, [workspaceId]);
  }

  it('charges exactly ceil((prompt*in + completion*out) / 1e6) for the reported usage', async () => {
    const credit = 10_000_000;
    const { workspaceId, key, keyId } = await gw.workspaceWithKey(credit);
    const usage = { prompt_tokens: 1234, completion_tokens: 567, total_tokens: 1801 };
    provider.respond((req) => ({ json: completion(req.body.model, 'An answer', usage) }));

    const res = await chat(key, { messages: [{ role: 'user', content: 'x'.repeat(2_000) }], max_tokens: 1_000 }).expect(200);
    const requestId = res.headers['x-request-id'];
    expect(requestId).toMatch(/^req_/);
    const expected = cost(1234, 567);
    // 1234 * 0.27 + 567 * 1.1 = 956.88 micro-USD: the fraction is rounded up
    expect((1234 * IN + 567 * OUT) % 1_000_000).not.toBe(0);
    expect(expected).toBe(Math.ceil((1234 * IN + 567 * OUT) / 1_000_000));

    expect(res.body.model).toBe(MODEL);
    expect(res.headers['x-nexo-cost-micros']).toBe(String(expected));

    await gw.settled();
    const log = await usageLog(gw, requestId);
    expect(log).toMatchObject({
      model: MODEL,
      provider: 'deepseek',
      key_id: keyId,
      prompt_tokens: 1234,
      completion_tokens: 567,
      status: 200,
      error_code: null,
      usage_source: 'provider',
      stream: false,
    });
    expect(Number(log.cost_micros)).toBe(expected);

    const entries = await charges(workspaceId);
    expect(entries).toHaveLength(1);
    expect(entries[0].reference).toBe(`req:${requestId}`);
    expect(Number(entries[0].amount_micros)).toBe(-expected);
    expect(entries[0].key_id).toBe(keyId);
    expect(Number(entries[0].balance_after_micros)).toBe(credit - expected);

    expect(await money(gw, workspaceId, keyId)).toEqual({ balance: credit - expected, wsHeld: 0, spent: expected, keyHeld: 0 });
    const ws = await gw.admin().get(`/admin/workspaces/${workspaceId}`).expect(200);
    expect(ws.body.balance_micros).toBe(credit - expected);
    expect(await reconcile(gw.db)).toEqual([]);
  });

  it.each([
    { upstream: 500, answered: 502, errorCode: 'gateway_error' },
    { upstream: 400, answered: 400, errorCode: 'invalid_request_error' },
  ])('a provider $upstream costs nothing, releases the hold and is logged', async ({ upstream, answered, errorCode }) => {
    const credit = 5_000_000;
    const { workspaceId, key, keyId } = await gw.workspaceWithKey(credit);
    provider.respond(() => ({ status: upstream, json: { error: { message: 'upstream says no', type: 'x' } } }));

    const res = await chat(key, { messages: [{ role: 'user', content: 'hello' }] });
    expect(res.status).toBe(answered);
    expect(res.body.error.code).toBe(errorCode);
    expect(res.headers['x-nexo-cost-micros']).toBeUndefined();
    // a 5xx is sent again (UPSTREAM_MAX_ATTEMPTS, 3, before any byte reached the client); a 400 is the caller's
    expect(provider.received).toHaveLength(upstream >= 500 ? 3 : 1);
    const requestId = res.headers['x-request-id'];

    await gw.settled();
    const log = await usageLog(gw, requestId);
    expect(log).toMatchObject({ status: answered, error_code: errorCode, key_id: keyId, model: MODEL, provider: 'deepseek' });
    expect(Number(log.cost_micros)).toBe(0);
    expect(await charges(workspaceId)).toEqual([]);
    expect(await money(gw, workspaceId, keyId)).toEqual({ balance: credit, wsHeld: 0, spent: 0, keyHeld: 0 });
    expect(await gw.db.query('SELECT 1 FROM holds WHERE request_id = $1', [requestId])).toEqual([]);
  });

  it('a request the client abandons before the answer costs nothing and releases its hold', async () => {
    const credit = 5_000_000;
    const { workspaceId, key, keyId } = await gw.workspaceWithKey(credit);
    provider.respond((req) => ({ json: completion(req.body.model), delayMs: 1_500 }));
    const abort = new AbortController();
    const pending = fetch(`${gw.baseURL}/chat/completions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
      body: JSON.stringify({ model: MODEL, messages: [{ role: 'user', content: 'never mind' }] }),
      signal: abort.signal,
    }).then(
      () => 'answered',
      () => 'aborted',
    );
    const deadline = Date.now() + 10_000;
    while (provider.received.length === 0 && Date.now() < deadline) await sleep(20);
    expect(provider.received).toHaveLength(1);
    const [hold] = await gw.db.query('SELECT request_id FROM holds WHERE workspace_id = $1', [workspaceId]);
    abort.abort();
    expect(await pending).toBe('aborted');

    const log = await usageLog(gw, hold.request_id);
    expect(Number(log.cost_micros)).toBe(0);
    expect(log.status).toBeGreaterThanOrEqual(400);
    await gw.settled();
    expect(await charges(workspaceId)).toEqual([]);
    expect(await money(gw, workspaceId, keyId)).toEqual({ balance: credit, wsHeld: 0, spent: 0, keyHeld: 0 });
  });

  it('lists failed requests in the usage logs with their status, error code and request id', async () => {
    const { workspaceId, key } = await gw.workspaceWithKey(5_000_000);
    provider.respond(() => ({ status: 503, json: { error: { message: 'overloaded' } } }));
    const failed = await chat(key, { messages: [{ role: 'user', content: 'a' }] });
    expect(failed.status).toBeGreaterThanOrEqual(500);
    provider.respond((req) => ({ json: completion(req.body.model) }));
    const ok = await chat(key, { messages: [{ role: 'user', content: 'b' }] }).expect(200);
    await gw.settled();
    await usageLog(gw, failed.headers['x-request-id']);
    await usageLog(gw, ok.headers['x-request-id']);

    const page = await gw.admin().get(`/admin/workspaces/${workspaceId}/usage-logs`).expect(200);
    const byId = new Map<string, any>(page.body.data.map((l: any) => [l.request_id, l]));
    expect(byId.get(failed.headers['x-request-id'])).toMatchObject({
      status: failed.status,
      error_code: failed.body.error.code,
      cost_micros: 0,
    });
    expect(byId.get(ok.headers['x-request-id'])).toMatchObject({ status: 200, error_code: null, cost_micros: cost(12, 34) });
  });

  it('stops requests at the key budget: refused before the provider once the budget cannot cover the most a request can cost', async () => {
    const messages = [{ role: 'user', content: 'hi' }];
    const maxTokens = 100;
    const hold = cost(promptBoundOf({ model: MODEL, messages, max_tokens: maxTokens }), maxTokens);
    const perRequest = cost(20, 90);
    expect(perRequest).toBeLessThan(hold);
    const budget = 3 * hold;
    const { workspaceId, key, keyId } = await gw.workspaceWithKey(10_000_000, { budget_micros: budget });
    provider.respond((req) => ({
      json: completion(req.body.model, 'ok', { prompt_tokens: 20, completion_tokens: 90, total_tokens: 110 }),
    }));

    // successes while what is left of the budget covers the hold
    let expectedSuccesses = 0;
    for (let spent = 0; budget - spent >= hold; spent += perRequest) expectedSuccesses++;
    expect(expectedSuccesses).toBe(3);

    let successes = 0;
    let refusal: any = null;
    for (let i = 0; i < 10 && !refusal; i++) {
      const before = await money(gw, workspaceId, keyId);
      const res = await chat(key, { messages, max_tokens: maxTokens });
      if (res.status === 200) {
        expect(budget - before.spent).toBeGreaterThanOrEqual(hold);
        successes++;
        await gw.settled();
        const after = await money(gw, workspaceId, keyId);
        expect(after.spent).toBe(before.spent + perRequest);
        expect(after.spent).toBeLessThanOrEqual(budget);
      } else {
        expect(res.status).toBe(403);
        expect(budget - before.spent).toBeLessThan(hold);
        refusal = res.body;
      }
    }
    expect(successes).toBe(expectedSuccesses);
    expect(provider.received).toHaveLength(expectedSuccesses);
    expect(refusal.error.code).toBe('insufficient_quota');
    const left = budget - expectedSuccesses * perRequest;
    expect(refusal.error.message).toContain(`Insufficient key budget. Remaining key budget: ${usd(left)}.`);

    const m = await money(gw, workspaceId, keyId);
    expect(m.spent).toBe(expectedSuccesses * perRequest);
    expect(m.spent).toBeLessThanOrEqual(budget);
    expect(m.balance).toBe(10_000_000 - m.spent);

    // the advice in the message is right: that many completion tokens fit what is left
    const affordable = Number(/lower max_tokens to at most (\d+)/.exec(refusal.error.message)?.[1]);
    expect(affordable).toBeGreaterThan(0);
    expect(affordable).toBeLessThan(maxTokens);
    const ok = await chat(key, { messages, max_tokens: affordable });
    expect(ok.status).toBe(200);
    const tooMany = await chat(key, { messages, max_tokens: affordable + 1 });
    expect(tooMany.status).toBe(403);
    expect(tooMany.body.error.code).toBe('insufficient_quota');
    await gw.settled();
    expect((await money(gw, workspaceId, keyId)).spent).toBeLessThanOrEqual(budget);
  });

  it('says in the 403 how many completion tokens the balance covers, and that many are accepted', async () => {
    const balance = 1_000;
    const { workspaceId, key, keyId } = await gw.workspaceWithKey(balance);
    const messages = [{ role: 'user', content: 'Write a long story' }];
    // the gateway bounds the prompt by the bytes of the request it received
    const boundFor = (maxTokens: number) => promptBoundOf({ model: MODEL, messages, max_tokens: maxTokens });

    const res = await chat(key, { messages, max_tokens: 8_000 }).expect(403);
    expect(res.body.error.code).toBe('insufficient_quota');
    expect(res.body.error.type).toBe('invalid_request_error');
    expect(res.body.error.message).toMatch(/^Insufficient prepaid balance\. Current balance: \$0\.001000\./);
    expect(res.body.error.message).toMatch(/lower max_tokens/);
    expect(provider.received).toHaveLength(0);

    const affordable = Number(/lower max_tokens to at most (\d+)/.exec(res.body.error.message)?.[1]);
    // the most completion tokens whose worst-case cost fits the balance
    const bound = boundFor(8_000);
    expect(cost(bound, affordable)).toBeLessThanOrEqual(balance);
    expect(cost(bound, affordable + 1)).toBeGreaterThan(balance);

    provider.respond((req) => ({ json: completion(req.body.model, 'short', { prompt_tokens: 5, completion_tokens: 3, total_tokens: 8 }) }));
    await chat(key, { messages, max_tokens: affordable }).expect(200);
    await gw.settled();
    const m = await money(gw, workspaceId, keyId);
    expect(m.balance).toBe(balance - cost(5, 3));
    expect(m.balance).toBeGreaterThanOrEqual(0);
  });

  it('settles a request once when its settlement runs twice, in sequence or concurrently', async () => {
    const credit = 1_000_000;
    const { workspaceId, keyId } = await gw.workspaceWithKey(credit);
    const repo = gw.app.get(HoldRepository);
    const settlement = (requestId: string, costMicros: number): Settlement => ({
      requestId,
      workspaceId,
      keyId,
      model: MODEL,
      provider: 'deepseek',
      promptTokens: 100,
      completionTokens: 50,
      costMicros,
      usageSource: 'provider',
      status: 200,
      errorCode: null,
      latencyMs: 12,
      stream: false,
      createdAt: Date.now(),
    });

    const first = `req_twice_${randomBytes(6).toString('hex')}`;
    expect(await repo.placeHold(first, workspaceId, keyId, MODEL, 500, 900)).toEqual({ outcome: 'held' });
    const s1 = settlement(first, 123);
    expect(await repo.settle(s1)).toEqual({ applied: true, chargedMicros: 123 });
    expect(await repo.settle({ ...s1 })).toEqual({ applied: false, chargedMicros: 0 });
    expect(await money(gw, workspaceId, keyId)).toEqual({ balance: credit - 123, wsHeld: 0, spent: 123, keyHeld: 0 });

    const second = `req_concurrent_${randomBytes(6).toString('hex')}`;
    expect(await repo.placeHold(second, workspaceId, keyId, MODEL, 700, 900)).toEqual({ outcome: 'held' });
    const s2 = settlement(second, 456);
    const results = await Promise.all(Array.from({ length: 6 }, () => repo.settle({ ...s2 })));
    expect(results.filter((r) => r.applied)).toHaveLength(1);
    expect(results.reduce((sum, r) => sum + r.chargedMicros, 0)).toBe(456);

    for (const [requestId, charged] of [
      [first, 123],
      [second, 456],
    ] as const) {
      const entries = await gw.db.query('SELECT amount_micros FROM ledger_entries WHERE reference = $1', [`req:${requestId}`]);
      expect(entries.map((e: any) => Number(e.amount_micros))).toEqual([-charged]);
      const logs = await gw.db.query('SELECT cost_micros FROM usage_logs WHERE request_id = $1', [requestId]);
      expect(logs.map((l: any) => Number(l.cost_micros))).toEqual([charged]);
    }
    expect(await money(gw, workspaceId, keyId)).toEqual({ balance: credit - 123 - 456, wsHeld: 0, spent: 123 + 456, keyHeld: 0 });
    expect(await reconcile(gw.db)).toEqual([]);
  });

  it('settles once when the worker batches carry the same settlement more than once', async () => {
    const credit = 1_000_000;
    const { workspaceId, keyId } = await gw.workspaceWithKey(credit);
    const repo = gw.app.get(HoldRepository);
    const batcher = gw.app.get(SettlementBatcher);
    const requestId = `req_batched_${randomBytes(6).toString('hex')}`;
    expect(await repo.placeHold(requestId, workspaceId, keyId, MODEL, 900, 900)).toEqual({ outcome: 'held' });
    const s = settlementOf(requestId, workspaceId, keyId, 321);
    // the same job delivered twice to one worker, a second worker's batch, and one batch with a duplicate
    const [a, b, many, manyDup] = await Promise.all([
      batcher.settle({ ...s }),
      batcher.settle({ ...s }),
      repo.settleMany([{ ...s }]),
      repo.settleMany([{ ...s }, { ...s }]),
    ]);
    const charged = [a, b, many.get(requestId)!, manyDup.get(requestId)!].map((r) => r.chargedMicros);
    // whichever ran first reports the charge (a and b share one batch, so report it together)
    expect(charged.filter((c) => c === 321).length).toBeGreaterThanOrEqual(1);
    expect(charged.every((c) => c === 0 || c === 321)).toBe(true);

    const entries = await gw.db.query('SELECT amount_micros FROM ledger_entries WHERE reference = $1', [`req:${requestId}`]);
    expect(entries.map((e: any) => Number(e.amount_micros))).toEqual([-321]);
    const logs = await gw.db.query('SELECT cost_micros FROM usage_logs WHERE request_id = $1', [requestId]);
    expect(logs.map((l: any) => Number(l.cost_micros))).toEqual([321]);
    expect(await money(gw, workspaceId, keyId)).toEqual({ balance: credit - 321, wsHeld: 0, spent: 321, keyHeld: 0 });
    expect(await reconcile(gw.db)).toEqual([]);
  });

  it('reports the charge of a request that appears twice in one batch', async () => {
    const { workspaceId, keyId } = await gw.workspaceWithKey(1_000_000);
    const repo = gw.app.get(HoldRepository);
    const requestId = `req_dup_${randomBytes(6).toString('hex')}`;
    expect(await repo.placeHold(requestId, workspaceId, keyId, MODEL, 900, 900)).toEqual({ outcome: 'held' });
    const s = settlementOf(requestId, workspaceId, keyId, 321);
    expect((await repo.settleMany([{ ...s }, { ...s }])).get(requestId)).toEqual({ applied: true, chargedMicros: 321 });
    expect((await repo.settleMany([{ ...s }])).get(requestId)).toEqual({ applied: false, chargedMicros: 0 });
  });

  it('charges a settlement at most its hold', async () => {
    const credit = 1_000_000;
    const { workspaceId, keyId } = await gw.workspaceWithKey(credit);
    const repo = gw.app.get(HoldRepository);
    const requestId = `req_capped_${randomBytes(6).toString('hex')}`;
    await repo.placeHold(requestId, workspaceId, keyId, MODEL, 300, 900);
    const result = await repo.settle({
      requestId,
      workspaceId,
      keyId,
      model: MODEL,
      provider: 'deepseek',
      promptTokens: 1,
      completionTokens: 1,
      costMicros: 10_000,
      usageSource: 'provider',
      status: 200,
      errorCode: null,
      latencyMs: 1,
      stream: false,
      createdAt: Date.now(),
    });
    expect(result).toEqual({ applied: true, chargedMicros: 300 });
    expect(await money(gw, workspaceId, keyId)).toEqual({ balance: credit - 300, wsHeld: 0, spent: 300, keyHeld: 0 });
    expect(await reconcile(gw.db)).toEqual([]);
  });

  it.each([
    { name: 'completion tokens above max_tokens', usage: { prompt_tokens: 5, completion_tokens: 51 } },
    { name: 'prompt tokens above what the prompt can hold', usage: { prompt_tokens: 100_000, completion_tokens: 10 } },
  ])('charges usage above the bound ($name) at the hold, logged as usage_source hold', async ({ usage }) => {
    const credit = 2_000_000;
    const { workspaceId, key, keyId } = await gw.workspaceWithKey(credit);
    const messages = [{ role: 'user', content: 'How many tokens?' }];
    const maxTokens = 50;
    const bound = promptBoundOf({ model: MODEL, messages, max_tokens: maxTokens });
    const hold = cost(bound, maxTokens);
    provider.respond((req) => ({ json: completion(req.body.model, 'whatever', usage) }));

    const res = await chat(key, { messages, max_tokens: maxTokens }).expect(200);
    expect(res.headers['x-nexo-cost-micros']).toBe(String(hold));
    await gw.settled();
    const log = await usageLog(gw, res.headers['x-request-id']);
    expect(log).toMatchObject({ usage_source: 'hold', prompt_tokens: bound, completion_tokens: maxTokens, status: 200 });
    expect(Number(log.cost_micros)).toBe(hold);
    expect(await money(gw, workspaceId, keyId)).toEqual({ balance: credit - hold, wsHeld: 0, spent: hold, keyHeld: 0 });
    const entries = await charges(workspaceId);
    expect(entries.map((e) => Number(e.amount_micros))).toEqual([-hold]);
  });

  it('counts missing usage with a real tokenizer, logged as usage_source tokenizer', async () => {
    const credit = 2_000_000;
    const { workspaceId, key, keyId } = await gw.workspaceWithKey(credit);
    const question = 'Please describe, in one sentence, the colour of the sky on a clear day.';
    const answer = 'On a clear day the sky is a bright, deep blue because air scatters short wavelengths of sunlight.';
    provider.respond((req) => {
      const { usage: _none, ...body } = completion(req.body.model, answer);
      return { json: body };
    });

    const res = await chat(key, { messages: [{ role: 'user', content: question }] }).expect(200);
    await gw.settled();
    const log = await usageLog(gw, res.headers['x-request-id']);
    expect(log.usage_source).toBe('tokenizer');
    expect(log.completion_tokens).toBe(countTokens(answer));
    // the content's tokens plus the chat format's few tokens per message and reply
    expect(log.prompt_tokens).toBeGreaterThanOrEqual(countTokens(question));
    expect(log.prompt_tokens).toBeLessThanOrEqual(countTokens(question) + 12);
    const expected = cost(log.prompt_tokens, log.completion_tokens);
    expect(expected).toBeGreaterThan(0);
    expect(Number(log.cost_micros)).toBe(expected);
    expect(res.headers['x-nexo-cost-micros']).toBe(String(expected));
    expect(await money(gw, workspaceId, keyId)).toEqual({ balance: credit - expected, wsHeld: 0, spent: expected, keyHeld: 0 });
  });

  it('GET /v1/key shows spent, balance and remaining = min(budget left, available)', async () => {
    const perRequest = cost(12, 34);

    // budget-limited key
    const credit = 1_000_000;
    const budget = 5_000;
    const a = await gw.workspaceWithKey(credit, { budget_micros: budget });
    await chat(a.key, { messages: [{ role: 'user', content: 'hi' }], max_tokens: 100 }).expect(200);
    await gw.settled();
    const infoA = await gw.http().get('/v1/key').set('authorization', `Bearer ${a.key}`).expect(200);
    expect(infoA.body).toMatchObject({
      id: a.keyId,
      budget_micros: budget,
      spent_micros: perRequest,
      remaining_micros: budget - perRequest,
      workspace: { id: a.workspaceId, balance_micros: credit - perRequest, available_micros: credit - perRequest },
    });

    // balance-limited key, with money held for a request in flight
    const small = 3_000;
    const b = await gw.workspaceWithKey(small, { budget_micros: 1_000_000 });
    await chat(b.key, { messages: [{ role: 'user', content: 'hi' }], max_tokens: 100 }).expect(200);
    await gw.settled();
    const inFlight = `req_inflight_${randomBytes(6).toString('hex')}`;
    const repo = gw.app.get(HoldRepository);
    expect(await repo.placeHold(inFlight, b.workspaceId, b.keyId, MODEL, 1_000, 900)).toEqual({ outcome: 'held' });
    try {
      const infoB = await gw.http().get('/v1/key').set('authorization', `Bearer ${b.key}`).expect(200);
      expect(infoB.body).toMatchObject({
        budget_micros: 1_000_000,
        spent_micros: perRequest,
        remaining_micros: small - perRequest - 1_000,
        workspace: { balance_micros: small - perRequest, available_micros: small - perRequest - 1_000 },
      });
    } finally {
      await repo.settle({
        requestId: inFlight,
        workspaceId: b.workspaceId,
        keyId: b.keyId,
        model: MODEL,
        provider: null,
        promptTokens: 0,
        completionTokens: 0,
        costMicros: 0,
        usageSource: 'none',
        status: 499,
        errorCode: 'test',
        latencyMs: 0,
        stream: false,
        createdAt: Date.now(),
      });
    }
    const after = await gw.http().get('/v1/key').set('authorization', `Bearer ${b.key}`).expect(200);
    expect(after.body.remaining_micros).toBe(small - perRequest);

    // unlimited key
    const c = await gw.workspaceWithKey(7_000);
    const infoC = await gw.http().get('/v1/key').set('authorization', `Bearer ${c.key}`).expect(200);
    expect(infoC.body).toMatchObject({ budget_micros: null, spent_micros: 0, remaining_micros: 7_000 });
  });
});
