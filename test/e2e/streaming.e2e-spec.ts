import { countTokens } from 'gpt-tokenizer';
import { promptTokenBound } from '../../src/billing/hold-estimate';
import { reconcile } from '../../src/billing/reconcile';
import { FakeProvider, sleep, streamEvents } from '../helpers/fake-provider';
import { TestGateway } from '../helpers/gateway';

// Qwen/Qwen-Plus is served upstream as `qwen-plus`, so a relayed chunk shows whose id it carries.
const MODEL = 'Qwen/Qwen-Plus';
const UPSTREAM_MODEL = 'qwen-plus';
const IN = 400_000;
const OUT = 1_200_000;

function cost(prompt: number, completionTokens: number): number {
  return Number((BigInt(prompt) * BigInt(IN) + BigInt(completionTokens) * BigInt(OUT) + 999_999n) / 1_000_000n);
}

const WORDS = ['Once', ' upon', ' a', ' time', ',', ' a', ' gateway', ' counted', ' every', ' token', ' it', ' relayed', '.'];

describe('streaming (end to end, official openai SDK)', () => {
  let gw: TestGateway;
  let provider: FakeProvider;

  beforeAll(async () => {
    provider = await FakeProvider.start();
    gw = await TestGateway.start();
    await gw.useProvider('dashscope', provider.url);
  });
  afterAll(async () => {
    await gw?.close();
    await provider?.close();
  });
  beforeEach(() => {
    provider.received.length = 0;
  });

  async function usageLog(requestId: string, timeoutMs = 10_000): Promise<Record<string, any>> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const rows = await gw.db.query('SELECT * FROM usage_logs WHERE request_id = $1', [requestId]);
      if (rows.length === 1) return rows[0];
      if (Date.now() > deadline) throw new Error(`no usage log for ${requestId} after ${timeoutMs} ms`);
      await sleep(25);
    }
  }

  async function money(workspaceId: string, keyId: string) {
    const [ws] = await gw.db.query('SELECT balance_micros, held_micros FROM workspaces WHERE id = $1', [workspaceId]);
    const [k] = await gw.db.query('SELECT spent_micros, held_micros FROM api_keys WHERE id = $1', [keyId]);
    return { balance: Number(ws.balance_micros), wsHeld: Number(ws.held_micros), spent: Number(k.spent_micros), keyHeld: Number(k.held_micros) };
  }

  async function charged(requestId: string): Promise<number[]> {
    const rows = await gw.db.query('SELECT amount_micros FROM ledger_entries WHERE reference = $1', [`req:${requestId}`]);
    return rows.map((r: any) => -Number(r.amount_micros));
  }

  it('relays chunks with the public model id, asks the provider for usage, and hides it from a client that did not ask', async () => {
    const credit = 5_000_000;
    const { workspaceId, key, keyId } = await gw.workspaceWithKey(credit);
    const usage = { prompt_tokens: 9, completion_tokens: 13, total_tokens: 22 };
    provider.respond((req) => ({ events: streamEvents(req.body.model, WORDS, usage) }));

    const { data: stream, response } = await gw
      .openai(key)
      .chat.completions.create({ model: MODEL, messages: [{ role: 'user', content: 'Tell me a story' }], stream: true })
      .withResponse();
    const requestId = response.headers.get('x-request-id')!;
    expect(requestId).toMatch(/^req_/);
    let text = '';
    let chunks = 0;
    for await (const chunk of stream) {
      chunks++;
      expect(chunk.model).toBe(MODEL);
      expect(chunk.usage ?? null).toBeNull();
      expect(chunk.choices.length).toBeGreaterThan(0);
      text += chunk.choices[0]?.delta?.content ?? '';
    }
    expect(text).toBe(WORDS.join(''));
    expect(chunks).toBe(WORDS.length + 2);

    const sent = provider.last().body;
    expect(sent.model).toBe(UPSTREAM_MODEL);
    expect(sent.stream).toBe(true);
    expect(sent.stream_options).toEqual({ include_usage: true });

    await gw.settled();
    const log = await usageLog(requestId);
    const expected = cost(9, 13);
    expect(log).toMatchObject({
      status: 200,
      error_code: null,
      stream: true,
      usage_source: 'provider',
      prompt_tokens: 9,
      completion_tokens: 13,
      model: MODEL,
      provider: 'dashscope',
    });
    expect(Number(log.cost_micros)).toBe(expected);
    expect(await charged(requestId)).toEqual([expected]);
    expect(await money(workspaceId, keyId)).toEqual({ balance: credit - expected, wsHeld: 0, spent: expected, keyHeld: 0 });
  });

  it('forwards the usage chunk when the client asked for it, and charges the provider final usage', async () => {
    const credit = 5_000_000;
    const { workspaceId, key, keyId } = await gw.workspaceWithKey(credit);
    const usage = { prompt_tokens: 21, completion_tokens: 17, total_tokens: 38 };
    provider.respond((req) => ({ events: streamEvents(req.body.model, WORDS, usage) }));

    const { data: stream, response } = await gw
      .openai(key)
      .chat.completions.create({
        model: MODEL,
        messages: [{ role: 'system', content: 'Be brief.' }, { role: 'user', content: 'Tell me a story' }],
        stream: true,
        stream_options: { include_usage: true },
      })
      .withResponse();
    const requestId = response.headers.get('x-request-id')!;
    const usages: unknown[] = [];
    for await (const chunk of stream) {
      expect(chunk.model).toBe(MODEL);
      if (chunk.usage) usages.push(chunk.usage);
    }
    expect(usages).toEqual([usage]);
    expect(provider.last().body.stream_options).toEqual({ include_usage: true });

    await gw.settled();
    const expected = cost(21, 17);
    const log = await usageLog(requestId);
    expect(log).toMatchObject({ usage_source: 'provider', prompt_tokens: 21, completion_tokens: 17, error_code: null, stream: true });
    expect(Number(log.cost_micros)).toBe(expected);
    expect(await charged(requestId)).toEqual([expected]);
    expect(await money(workspaceId, keyId)).toEqual({ balance: credit - expected, wsHeld: 0, spent: expected, keyHeld: 0 });
  });

  it('counts a complete stream without usage with a real tokenizer', async () => {
    const credit = 5_000_000;
    const { workspaceId, key, keyId } = await gw.workspaceWithKey(credit);
    provider.respond((req) => ({ events: streamEvents(req.body.model, WORDS, null) }));
    const { data: stream, response } = await gw
      .openai(key)
      .chat.completions.create({
        model: MODEL,
        messages: [{ role: 'user', content: 'Tell me a story' }],
        stream: true,
        stream_options: { include_usage: true },
      })
      .withResponse();
    const requestId = response.headers.get('x-request-id')!;
    let text = '';
    for await (const chunk of stream) text += chunk.choices[0]?.delta?.content ?? '';
    expect(text).toBe(WORDS.join(''));

    await gw.settled();
    const log = await usageLog(requestId);
    expect(log).toMatchObject({ status: 200, error_code: null, usage_source: 'tokenizer', completion_tokens: countTokens(WORDS.join('')) });
    expect(log.prompt_tokens).toBeGreaterThanOrEqual(countTokens('Tell me a story'));
    const expected = cost(log.prompt_tokens, log.completion_tokens);
    expect(Number(log.cost_micros)).toBe(expected);
    expect(await charged(requestId)).toEqual([expected]);
    expect(await money(workspaceId, keyId)).toEqual({ balance: credit - expected, wsHeld: 0, spent: expected, keyHeld: 0 });
  });

  it('charges a stream the client aborts for its prompt and the tokens produced', async () => {
    const credit = 5_000_000;
    const { workspaceId, key, keyId } = await gw.workspaceWithKey(credit);
    const messages = [{ role: 'user' as const, content: 'Tell me a long story about a careful accountant' }];
    const maxTokens = 200;
    const hold = cost(promptTokenBound({ messages }), maxTokens);
    provider.respond((req) => ({
      events: streamEvents(req.body.model, WORDS, { prompt_tokens: 10, completion_tokens: WORDS.length, total_tokens: 10 + WORDS.length }),
      eventGapMs: 150,
    }));

    const { data: stream, response } = await gw
      .openai(key)
      .chat.completions.create({ model: MODEL, messages, max_tokens: maxTokens, stream: true })
      .withResponse();
    const requestId = response.headers.get('x-request-id')!;
    let received = 0;
    for await (const chunk of stream) {
      expect(chunk.model).toBe(MODEL);
      if (chunk.choices[0]?.delta?.content) received++;
      if (received === 2) break; // the SDK aborts the request
    }
    expect(received).toBe(2);

    const log = await usageLog(requestId);
    expect(log).toMatchObject({ status: 200, error_code: 'client_disconnected', usage_source: 'tokenizer', stream: true });
    // the prompt, by the tokenizer, and what was produced before the client left (not the whole story)
    expect(log.prompt_tokens).toBeGreaterThanOrEqual(countTokens(messages[0].content));
    expect(log.completion_tokens).toBeGreaterThanOrEqual(countTokens(WORDS.slice(0, 2).join('')));
    expect(log.completion_tokens).toBeLessThan(countTokens(WORDS.join('')));
    const expected = cost(log.prompt_tokens, log.completion_tokens);
    expect(Number(log.cost_micros)).toBe(expected);
    expect(expected).toBeGreaterThan(0);
    expect(expected).toBeLessThanOrEqual(hold);

    await gw.settled();
    expect(await charged(requestId)).toEqual([expected]);
    expect(await money(workspaceId, keyId)).toEqual({ balance: credit - expected, wsHeld: 0, spent: expected, keyHeld: 0 });
    expect(await reconcile(gw.db)).toEqual([]);
  });

  it('charges a stream the provider cuts for what was produced, as upstream_interrupted', async () => {
    const credit = 5_000_000;
    const { workspaceId, key, keyId } = await gw.workspaceWithKey(credit);
    const messages = [{ role: 'user' as const, content: 'Tell me a story' }];
    const produced = WORDS.slice(0, 6);
    const maxTokens = 300;
    const hold = cost(promptTokenBound({ messages }), maxTokens);
    provider.respond((req) => ({
      // no finish, no usage, no [DONE]: the connection drops mid-answer
      events: streamEvents(req.body.model, produced, null).slice(0, -1),
      eventGapMs: 10,
      cut: true,
    }));

    const { data: stream, response } = await gw
      .openai(key)
      .chat.completions.create({ model: MODEL, messages, max_tokens: maxTokens, stream: true })
      .withResponse();
    const requestId = response.headers.get('x-request-id')!;
    let text = '';
    try {
      for await (const chunk of stream) {
        expect(chunk.model).toBe(MODEL);
        text += chunk.choices[0]?.delta?.content ?? '';
      }
    } catch {
      // how a cut stream ends for the client is not what this test is about
    }
    expect(text).toBe(produced.join(''));

    await gw.settled();
    const log = await usageLog(requestId);
    expect(log).toMatchObject({ status: 200, error_code: 'upstream_interrupted', usage_source: 'tokenizer', stream: true });
    expect(log.completion_tokens).toBe(countTokens(produced.join('')));
    expect(log.prompt_tokens).toBeGreaterThanOrEqual(countTokens(messages[0].content));
    const expected = cost(log.prompt_tokens, log.completion_tokens);
    expect(Number(log.cost_micros)).toBe(expected);
    expect(expected).toBeGreaterThan(0);
    expect(expected).toBeLessThanOrEqual(hold);
    expect(await charged(requestId)).toEqual([expected]);
    expect(await money(workspaceId, keyId)).toEqual({ balance: credit - expected, wsHeld: 0, spent: expected, keyHeld: 0 });
  });

  it('costs nothing when the provider refuses a stream before any output', async () => {
    const credit = 5_000_000;
    const { workspaceId, key, keyId } = await gw.workspaceWithKey(credit);
    provider.respond(() => ({ status: 500, json: { error: { message: 'boom' } } }));
    const client = gw.openai(key);
    const err = await client.chat.completions
      .create({ model: MODEL, messages: [{ role: 'user', content: 'hi' }], stream: true })
      .then(() => null, (e: any) => e);
    expect(err?.status).toBe(502);
    const requestId = err.headers.get('x-request-id');
    await gw.settled();
    const log = await usageLog(requestId);
    expect(log).toMatchObject({ status: 502, error_code: 'gateway_error', stream: true });
    expect(Number(log.cost_micros)).toBe(0);
    expect(await charged(requestId)).toEqual([]);
    expect(await money(workspaceId, keyId)).toEqual({ balance: credit, wsHeld: 0, spent: 0, keyHeld: 0 });
  });
});
