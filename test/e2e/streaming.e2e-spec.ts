import { countTokens } from 'gpt-tokenizer';
import type OpenAI from 'openai';
import { reconcile } from '../../src/billing/reconcile';
import { FakeProvider, streamEvents } from '../helpers/fake-provider';
import { TestGateway } from '../helpers/gateway';
import { chargesOf, costAt, money, promptBoundOf, usageLog } from '../helpers/ledger';
import { closeAll, startWithFakeProvider } from '../helpers/setup';

// Qwen/Qwen-Plus is served upstream as `qwen-plus`, so a relayed chunk shows whose id it carries.
const MODEL = 'Qwen/Qwen-Plus';
const UPSTREAM_MODEL = 'qwen-plus';
const IN = 400_000;
const OUT = 1_200_000;

const cost = costAt(IN, OUT);

const WORDS = ['Once', ' upon', ' a', ' time', ',', ' a', ' gateway', ' counted', ' every', ' token', ' it', ' relayed', '.'];

describe('streaming (end to end, official openai SDK)', () => {
  let gw: TestGateway;
  let provider: FakeProvider;

  beforeAll(async () => {
    ({ gw, provider } = await startWithFakeProvider({ providers: 'dashscope' }));
  });
  afterAll(() => closeAll(gw, provider));
  beforeEach(() => {
    provider.received.length = 0;
  });

  /** A chat stream of MODEL through the official SDK, and the x-request-id the gateway answered with. */
  async function openStream(key: string, params: Omit<OpenAI.Chat.ChatCompletionCreateParamsStreaming, 'model' | 'stream'>) {
    const { data: stream, response } = await gw
      .openai(key)
      .chat.completions.create({ model: MODEL, ...params, stream: true })
      .withResponse();
    return { stream, requestId: response.headers.get('x-request-id')! };
  }

  it('relays chunks with the public model id, asks the provider for usage, and hides it from a client that did not ask', async () => {
    const credit = 5_000_000;
    const { workspaceId, key, keyId } = await gw.workspaceWithKey(credit);
    const usage = { prompt_tokens: 9, completion_tokens: 13, total_tokens: 22 };
    provider.respond((req) => ({ events: streamEvents(req.body.model, WORDS, usage) }));

    const { stream, requestId } = await openStream(key, { messages: [{ role: 'user', content: 'Tell me a story' }] });
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
    const log = await usageLog(gw, requestId);
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
    expect(await chargesOf(gw, requestId)).toEqual([expected]);
    expect(await money(gw, workspaceId, keyId)).toEqual({ balance: credit - expected, wsHeld: 0, spent: expected, keyHeld: 0 });
  });

  it('forwards the usage chunk when the client asked for it, and charges the provider final usage', async () => {
    const credit = 5_000_000;
    const { workspaceId, key, keyId } = await gw.workspaceWithKey(credit);
    const usage = { prompt_tokens: 21, completion_tokens: 17, total_tokens: 38 };
    provider.respond((req) => ({ events: streamEvents(req.body.model, WORDS, usage) }));

    const { stream, requestId } = await openStream(key, {
      messages: [
        { role: 'system', content: 'Be brief.' },
        { role: 'user', content: 'Tell me a story' },
      ],
      stream_options: { include_usage: true },
    });
    const usages: unknown[] = [];
    for await (const chunk of stream) {
      expect(chunk.model).toBe(MODEL);
      if (chunk.usage) usages.push(chunk.usage);
    }
    expect(usages).toEqual([usage]);
    expect(provider.last().body.stream_options).toEqual({ include_usage: true });

    await gw.settled();
    const expected = cost(21, 17);
    const log = await usageLog(gw, requestId);
    expect(log).toMatchObject({ usage_source: 'provider', prompt_tokens: 21, completion_tokens: 17, error_code: null, stream: true });
    expect(Number(log.cost_micros)).toBe(expected);
    expect(await chargesOf(gw, requestId)).toEqual([expected]);
    expect(await money(gw, workspaceId, keyId)).toEqual({ balance: credit - expected, wsHeld: 0, spent: expected, keyHeld: 0 });
  });

  it('counts a complete stream without usage with a real tokenizer', async () => {
    const credit = 5_000_000;
    const { workspaceId, key, keyId } = await gw.workspaceWithKey(credit);
    provider.respond((req) => ({ events: streamEvents(req.body.model, WORDS, null) }));
    const { stream, requestId } = await openStream(key, {
      messages: [{ role: 'user', content: 'Tell me a story' }],
      stream_options: { include_usage: true },
    });
    let text = '';
    for await (const chunk of stream) text += chunk.choices[0]?.delta?.content ?? '';
    expect(text).toBe(WORDS.join(''));

    await gw.settled();
    const log = await usageLog(gw, requestId);
    expect(log).toMatchObject({ status: 200, error_code: null, usage_source: 'tokenizer', completion_tokens: countTokens(WORDS.join('')) });
    expect(log.prompt_tokens).toBeGreaterThanOrEqual(countTokens('Tell me a story'));
    const expected = cost(log.prompt_tokens, log.completion_tokens);
    expect(Number(log.cost_micros)).toBe(expected);
    expect(await chargesOf(gw, requestId)).toEqual([expected]);
    expect(await money(gw, workspaceId, keyId)).toEqual({ balance: credit - expected, wsHeld: 0, spent: expected, keyHeld: 0 });
  });

  it('charges a stream the client aborts for its prompt and the tokens produced', async () => {
    const credit = 5_000_000;
    const { workspaceId, key, keyId } = await gw.workspaceWithKey(credit);
    const messages = [{ role: 'user' as const, content: 'Tell me a long story about a careful accountant' }];
    const maxTokens = 200;
    const hold = cost(promptBoundOf({ model: MODEL, messages, max_tokens: maxTokens, stream: true }), maxTokens);
    provider.respond((req) => ({
      events: streamEvents(req.body.model, WORDS, { prompt_tokens: 10, completion_tokens: WORDS.length, total_tokens: 10 + WORDS.length }),
      eventGapMs: 150,
    }));

    const { stream, requestId } = await openStream(key, { messages, max_tokens: maxTokens });
    let received = 0;
    for await (const chunk of stream) {
      expect(chunk.model).toBe(MODEL);
      if (chunk.choices[0]?.delta?.content) received++;
      if (received === 2) break; // the SDK aborts the request
    }
    expect(received).toBe(2);

    const log = await usageLog(gw, requestId);
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
    expect(await chargesOf(gw, requestId)).toEqual([expected]);
    expect(await money(gw, workspaceId, keyId)).toEqual({ balance: credit - expected, wsHeld: 0, spent: expected, keyHeld: 0 });
    expect(await reconcile(gw.db)).toEqual([]);
  });

  it('charges a stream the provider cuts for what was produced, as upstream_interrupted', async () => {
    const credit = 5_000_000;
    const { workspaceId, key, keyId } = await gw.workspaceWithKey(credit);
    const messages = [{ role: 'user' as const, content: 'Tell me a story' }];
    const produced = WORDS.slice(0, 6);
    const maxTokens = 300;
    const hold = cost(promptBoundOf({ model: MODEL, messages, max_tokens: maxTokens, stream: true }), maxTokens);
    provider.respond((req) => ({
      // no finish, no usage, no [DONE]: the connection drops mid-answer
      events: streamEvents(req.body.model, produced, null).slice(0, -1),
      eventGapMs: 10,
      cut: true,
    }));

    const { stream, requestId } = await openStream(key, { messages, max_tokens: maxTokens });
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
    const log = await usageLog(gw, requestId);
    expect(log).toMatchObject({ status: 200, error_code: 'upstream_interrupted', usage_source: 'tokenizer', stream: true });
    expect(log.completion_tokens).toBe(countTokens(produced.join('')));
    expect(log.prompt_tokens).toBeGreaterThanOrEqual(countTokens(messages[0].content));
    const expected = cost(log.prompt_tokens, log.completion_tokens);
    expect(Number(log.cost_micros)).toBe(expected);
    expect(expected).toBeGreaterThan(0);
    expect(expected).toBeLessThanOrEqual(hold);
    expect(await chargesOf(gw, requestId)).toEqual([expected]);
    expect(await money(gw, workspaceId, keyId)).toEqual({ balance: credit - expected, wsHeld: 0, spent: expected, keyHeld: 0 });
  });

  it('costs nothing when the provider refuses a stream before any output', async () => {
    const credit = 5_000_000;
    const { workspaceId, key, keyId } = await gw.workspaceWithKey(credit);
    provider.respond(() => ({ status: 500, json: { error: { message: 'boom' } } }));
    const client = gw.openai(key);
    const err = await client.chat.completions.create({ model: MODEL, messages: [{ role: 'user', content: 'hi' }], stream: true }).then(
      () => null,
      (e: any) => e,
    );
    expect(err?.status).toBe(502);
    const requestId = err.headers.get('x-request-id');
    await gw.settled();
    const log = await usageLog(gw, requestId);
    expect(log).toMatchObject({ status: 502, error_code: 'gateway_error', stream: true });
    expect(Number(log.cost_micros)).toBe(0);
    expect(await chargesOf(gw, requestId)).toEqual([]);
    expect(await money(gw, workspaceId, keyId)).toEqual({ balance: credit, wsHeld: 0, spent: 0, keyHeld: 0 });
  });
});
