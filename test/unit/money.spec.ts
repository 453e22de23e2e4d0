import { costMicros, formatUsd } from '../../src/common/money';
import { affordableCompletionTokens, holdEstimate, NON_TEXT_PART_TOKENS, promptTokenBound } from '../../src/billing/hold-estimate';
import { countPromptTokens } from '../../src/chat/token-count';
import { readUsage } from '../../src/chat/usage-report';
import { retryAfterSeconds } from '../../src/chat/upstream/upstream.client';

describe('costMicros', () => {
  it('applies ceil((prompt * input + completion * output) / 1e6)', () => {
    // 12 * 270000 + 34 * 1100000 = 40_640_000 -> 40.64 -> 41
    expect(costMicros(12, 34, 270_000, 1_100_000)).toBe(41);
    expect(costMicros(1_000_000, 0, 150_000, 600_000)).toBe(150_000);
    expect(costMicros(1, 0, 1, 0)).toBe(1); // any positive fraction of a micro rounds up
    expect(costMicros(0, 0, 270_000, 1_100_000)).toBe(0);
  });

  it('stays exact where floating point would not', () => {
    // the products pass 2^53, where float multiplication rounds; BigInt keeps every micro
    expect(costMicros(3_000_000_000, 3_000_000_000, 1_000_000_000, 2_000_000_001)).toBe(9_000_000_003_000);
  });
});

describe('formatUsd', () => {
  it('shows six decimals without floating point', () => {
    expect(formatUsd(0)).toBe('$0.000000');
    expect(formatUsd(1)).toBe('$0.000001');
    expect(formatUsd(5_000_000)).toBe('$5.000000');
    expect(formatUsd(1_234_567_890)).toBe('$1234.567890');
    expect(formatUsd(-250)).toBe('-$0.000250');
  });
});

describe('promptTokenBound', () => {
  const samples = [
    'hello',
    'Explain NexoRouter in Spanish.',
    '日本語のテキストはトークンが多い',
    '🙂🙃🤖🚀'.repeat(50),
    'a'.repeat(5_000),
    ' \n\t'.repeat(300),
    'function f(x) { return x * 2; } // code',
  ];

  it.each(samples)('is never below a real tokenizer count (%#)', (text) => {
    const body = {
      messages: [
        { role: 'system', content: 'be brief' },
        { role: 'user', content: text },
      ],
    };
    expect(promptTokenBound(body)).toBeGreaterThanOrEqual(countPromptTokens(body));
  });

  it('counts tools and response formats too', () => {
    const tools = [
      { type: 'function', function: { name: 'get_weather', parameters: { type: 'object', properties: { city: { type: 'string' } } } } },
    ];
    const bare = { messages: [{ role: 'user', content: 'hi' }] };
    expect(promptTokenBound({ ...bare, tools })).toBeGreaterThan(promptTokenBound(bare) + JSON.stringify(tools).length - 1);
  });
});

describe('holdEstimate and affordableCompletionTokens', () => {
  const price = { inputPriceMicros: 270_000, outputPriceMicros: 1_100_000 };

  it('holds the cost of the bounds', () => {
    expect(holdEstimate(100, 512, price).amountMicros).toBe(costMicros(100, 512, 270_000, 1_100_000));
  });

  it('says how many completion tokens a balance pays for after the prompt', () => {
    const tokens = affordableCompletionTokens(1_000, 100, price);
    // what it affords must fit, one more must not
    expect(costMicros(100, tokens, 270_000, 1_100_000)).toBeLessThanOrEqual(1_000);
    expect(costMicros(100, tokens + 1, 270_000, 1_100_000)).toBeGreaterThan(1_000 - 1);
    expect(affordableCompletionTokens(0, 100, price)).toBe(0);
    expect(affordableCompletionTokens(-5, 100, price)).toBe(0);
  });
});

describe('readUsage', () => {
  const bounds = { promptTokens: 100, completionTokens: 50 };

  it('accepts whole, non-negative counts within the bounds', () => {
    expect(readUsage({ prompt_tokens: 10, completion_tokens: 5 }, bounds)).toEqual({
      promptTokens: 10,
      completionTokens: 5,
      source: 'provider',
    });
    expect(readUsage({ prompt_tokens: 7 }, bounds, false)).toEqual({ promptTokens: 7, completionTokens: 0, source: 'provider' });
  });

  it('reports missing usage', () => {
    expect(readUsage(undefined, bounds)).toBe('missing');
    expect(readUsage(null, bounds)).toBe('missing');
  });

  it.each([
    [{ prompt_tokens: -1, completion_tokens: 5 }],
    [{ prompt_tokens: 1.5, completion_tokens: 5 }],
    [{ prompt_tokens: '10', completion_tokens: 5 }],
    [{ prompt_tokens: 10, completion_tokens: '5' }],
    [{ prompt_tokens: 10 }], // chat usage without completion tokens
    [['lots']],
    ['lots'],
  ])('treats malformed usage %j as missing (the tokenizer counts)', (usage) => {
    expect(readUsage(usage, bounds)).toBe('missing');
  });

  it.each([[{ prompt_tokens: 10, completion_tokens: 51 }], [{ prompt_tokens: 101, completion_tokens: 0 }]])(
    'flags well-formed usage above the bounds %j (charged at the bound)',
    (usage) => {
      expect(readUsage(usage, bounds)).toBe('over_bound');
    },
  );
});

describe('retryAfterSeconds', () => {
  const now = Date.parse('2026-11-25T12:00:00Z');

  it('passes whole seconds on and converts HTTP dates', () => {
    expect(retryAfterSeconds('7', now)).toBe(7);
    expect(retryAfterSeconds(['12'], now)).toBe(12);
    expect(retryAfterSeconds('Wed, 25 Nov 2026 12:00:30 GMT', now)).toBe(30);
  });

  it('falls back to 1 second for missing, past or unreadable values', () => {
    expect(retryAfterSeconds(undefined, now)).toBe(1);
    expect(retryAfterSeconds('0', now)).toBe(1);
    expect(retryAfterSeconds('Wed, 25 Nov 2026 11:00:00 GMT', now)).toBe(1);
    expect(retryAfterSeconds('soon', now)).toBe(1);
  });
});

describe('promptTokenBound with non-text parts', () => {
  it('allows for what an image costs, which its URL bytes do not show', () => {
    const image = { type: 'image_url', image_url: { url: 'https://example.com/cat.png', detail: 'high' } };
    const body = { messages: [{ role: 'user', content: [{ type: 'text', text: 'what is this?' }, image, image] }] };
    const textOnly = { messages: [{ role: 'user', content: [{ type: 'text', text: 'what is this?' }] }] };
    expect(promptTokenBound(body) - promptTokenBound(textOnly)).toBeGreaterThanOrEqual(2 * NON_TEXT_PART_TOKENS);
  });

  it('uses the received body size when it is known', () => {
    const body = { messages: [{ role: 'user', content: 'hi' }] };
    const raw = Buffer.byteLength(JSON.stringify({ model: 'm', ...body }));
    expect(promptTokenBound(body, raw)).toBeGreaterThanOrEqual(promptTokenBound(body));
    expect(promptTokenBound(body, raw)).toBeGreaterThanOrEqual(countPromptTokens(body));
  });
});
