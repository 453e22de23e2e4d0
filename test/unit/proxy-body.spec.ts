import { ChatCompletionCreateDto, EmbeddingCreateDto } from '../../src/chat/chat.dto';
import { checkChatCompletionBody, checkEmbeddingBody } from '../../src/chat/proxy-body.pipe';
import { ApiError, InvalidRequestError } from '../../src/common/errors/api-error';
import { proxyValidation } from '../../src/common/validation';

type Body = Record<string, unknown>;
type Outcome = { ok: true } | { ok: false; status: number; message: string; param: string | null };

const USER = { role: 'user', content: 'hi' };
const chat = (extra: Body = {}): Body => ({ model: 'm', messages: [USER], ...extra });

function outcome(check: () => unknown): Outcome {
  try {
    check();
    return { ok: true };
  } catch (err) {
    if (!(err instanceof ApiError)) throw err;
    return { ok: false, status: err.status, message: err.message, param: err.param };
  }
}

describe('ProxyBodyPipe', () => {
  describe('answers what the DTOs answered, field by field', () => {
    it.each<[string, Body, string, string]>([
      ['model missing', { messages: [USER] }, 'model', 'model must be a string'],
      ['model a number', chat({ model: 5 }), 'model', 'model must be a string'],
      ['messages missing', { model: 'm' }, 'messages', 'messages should not be null or undefined'],
      ['messages null', chat({ messages: null }), 'messages', 'messages should not be null or undefined'],
      [
        'messages a string',
        chat({ messages: 'hi' }),
        'messages',
        'messages: each value in nested property messages must be either object or array',
      ],
      ['messages an object', chat({ messages: USER }), 'messages', 'messages must be an array'],
      ['messages empty', chat({ messages: [] }), 'messages', 'messages must contain at least 1 elements'],
      [
        'a message a string',
        chat({ messages: ['hi'] }),
        'messages[0]',
        'messages[0]: each value in nested property messages must be either object or array',
      ],
      [
        'a message in a nested array',
        chat({ messages: [[{ role: 'bad' }]] }),
        'messages[0][0].role',
        'messages[0][0].role must be one of the following values: system, developer, user, assistant, tool, function',
      ],
      [
        'an unknown role',
        chat({ messages: [USER, { role: 'robot', content: 'x' }] }),
        'messages[1].role',
        'messages[1].role must be one of the following values: system, developer, user, assistant, tool, function',
      ],
      [
        'user content missing',
        chat({ messages: [{ role: 'user' }] }),
        'messages[0].content',
        'messages[0].content is required for a user message',
      ],
      [
        'a part without text',
        chat({ messages: [{ role: 'user', content: [{ type: 'text', text: 5 }] }] }),
        'messages[0].content',
        'messages[0].content[0].text must be a string',
      ],
      [
        'tool_call_id missing',
        chat({ messages: [{ role: 'tool', content: 'x' }] }),
        'messages[0].tool_call_id',
        'messages[0].tool_call_id must be a string',
      ],
      [
        'name a number',
        chat({ messages: [{ role: 'user', content: 'x', name: 5 }] }),
        'messages[0].name',
        'messages[0].name must be a string',
      ],
      [
        'tool_calls an object',
        chat({ messages: [{ role: 'assistant', content: 'x', tool_calls: {} }] }),
        'messages[0].tool_calls',
        'messages[0].tool_calls must be an array',
      ],
      [
        'temperature a string',
        chat({ temperature: 'hot' }),
        'temperature',
        'temperature must be a number conforming to the specified constraints',
      ],
      ['temperature too high', chat({ temperature: 5 }), 'temperature', 'temperature must not be greater than 2'],
      ['top_p negative', chat({ top_p: -0.1 }), 'top_p', 'top_p must not be less than 0'],
      ['max_tokens a fraction', chat({ max_tokens: 1.5 }), 'max_tokens', 'max_tokens must be an integer number'],
      [
        'max_completion_tokens zero',
        chat({ max_completion_tokens: 0 }),
        'max_completion_tokens',
        'max_completion_tokens must not be less than 1',
      ],
      ['n too large', chat({ n: 9 }), 'n', 'n must not be greater than 8'],
      ['stream a string', chat({ stream: 'yes' }), 'stream', 'stream must be a boolean value'],
      [
        'stream_options a string',
        chat({ stream_options: 'x' }),
        'stream_options',
        'stream_options: nested property stream_options must be either object or array',
      ],
      ['stream_options an array', chat({ stream_options: [] }), 'stream_options', 'stream_options must be an object'],
      [
        'include_usage a number',
        chat({ stream_options: { include_usage: 1 } }),
        'stream_options.include_usage',
        'stream_options.include_usage must be a boolean value',
      ],
      ['presence_penalty too low', chat({ presence_penalty: -3 }), 'presence_penalty', 'presence_penalty must not be less than -2'],
      [
        'frequency_penalty a boolean',
        chat({ frequency_penalty: true }),
        'frequency_penalty',
        'frequency_penalty must be a number conforming to the specified constraints',
      ],
      ['seed a fraction', chat({ seed: 0.5 }), 'seed', 'seed must be an integer number'],
      ['user a number', chat({ user: 1 }), 'user', 'user must be a string'],
      ['tools an object', chat({ tools: {} }), 'tools', 'tools must be an array'],
      ['response_format an array', chat({ response_format: [] }), 'response_format', 'response_format must be an object'],
    ])('%s', async (_, body, param, message) => {
      const expected = { ok: false, status: 400, param, message: `Invalid request: ${message}.` };
      expect(outcome(() => checkChatCompletionBody(body))).toEqual(expected);
      expect(await oracle(body, ChatCompletionCreateDto)).toEqual(expected);
    });

    it.each<[string, Body, string, string]>([
      ['model missing', { input: 'x' }, 'model', 'model must be a string'],
      ['input missing', { model: 'e' }, 'input', 'input should not be null or undefined'],
      ['dimensions zero', { model: 'e', input: 'x', dimensions: 0 }, 'dimensions', 'dimensions must not be less than 1'],
      [
        'encoding_format unknown',
        { model: 'e', input: 'x', encoding_format: 'hex' },
        'encoding_format',
        'encoding_format must be one of the following values: float, base64',
      ],
      ['user a number', { model: 'e', input: 'x', user: 2 }, 'user', 'user must be a string'],
    ])('embeddings: %s', async (_, body, param, message) => {
      const expected = { ok: false, status: 400, param, message: `Invalid request: ${message}.` };
      expect(outcome(() => checkEmbeddingBody(body))).toEqual(expected);
      expect(await oracle(body, EmbeddingCreateDto)).toEqual(expected);
    });
  });

  it('returns the body itself: unknown fields, nulls and key order untouched', () => {
    const body = chat({ temperature: null, metadata: { constructor: 1, toString: 'x' }, tool_choice: 'auto', extra: [[[]]] });
    expect(checkChatCompletionBody(body)).toBe(body);
    expect(JSON.stringify(checkChatCompletionBody(body))).toBe(JSON.stringify(body));
  });

  it('prototype keys are data: nothing is polluted, nothing crashes', () => {
    const body = JSON.parse(
      '{"model":"m","__proto__":{"model":5,"polluted":1},"messages":[{"role":"user","content":"hi","__proto__":{"role":"x"}}],' +
        '"constructor":{"prototype":{"polluted":1}}}',
    ) as Body;
    expect(checkChatCompletionBody(body)).toBe(body);
    expect(({} as Body).polluted).toBeUndefined();
    expect(Object.keys(body)).toContain('__proto__');
    // roles named after Object.prototype members were a TypeError (500) in the DTO: now the role's 400
    for (const role of ['__proto__', 'constructor', 'toString', 'hasOwnProperty']) {
      const refused = outcome(() => checkChatCompletionBody(chat({ messages: [{ role, content: [{ type: 'text', text: 'x' }] }] })));
      expect(refused).toMatchObject({ ok: false, status: 400, param: 'messages[0].role' });
    }
  });

  it('hostile values are a 400 naming the field, never anything else', () => {
    const hostile: unknown[] = [
      JSON.parse('1e400'),
      JSON.parse('-1e400'),
      1e308,
      2 ** 53 + 2,
      -0,
      'NaN',
      'Infinity',
      '1',
      [],
      {},
      [[[[{}]]]],
      { $gt: 1 },
      JSON.parse('{"__proto__":{"x":1}}'),
    ];
    for (const field of [
      'model',
      'messages',
      'temperature',
      'top_p',
      'max_tokens',
      'n',
      'stream',
      'stream_options',
      'seed',
      'user',
      'tools',
    ]) {
      for (const value of hostile) {
        const result = outcome(() => checkChatCompletionBody(chat({ [field]: value })));
        if (!result.ok) {
          expect(result.status).toBe(400);
          expect(result.param?.startsWith(field)).toBe(true);
        }
      }
    }
    expect(() => checkChatCompletionBody([chat()])).toThrow(InvalidRequestError);
    expect(() => checkChatCompletionBody(null)).toThrow(InvalidRequestError);
    expect(() => checkChatCompletionBody(chat({ messages: Array.from({ length: 100_001 }, () => USER) }))).toThrow(
      'Invalid request: messages must contain no more than 100000 elements.',
    );
  });

  it('matches the DTO pipe on thousands of generated bodies', async () => {
    const random = seeded(12);
    for (let i = 0; i < 3_000; i++) await expectSame(chatBody(random), ChatCompletionCreateDto, checkChatCompletionBody);
    for (let i = 0; i < 600; i++) await expectSame(embeddingBody(random), EmbeddingCreateDto, checkEmbeddingBody);
  });
});

/** The class-validator DTO through the pipe the proxy routes used; a TypeError there was a 500. */
async function oracle(body: Body, dto: unknown): Promise<Outcome | 'crashed'> {
  try {
    await proxyValidation.transform(body, { type: 'body', metatype: dto as never });
    return { ok: true };
  } catch (err) {
    if (!(err instanceof ApiError)) return 'crashed';
    return { ok: false, status: err.status, message: err.message, param: err.param };
  }
}

async function expectSame(body: Body, dto: unknown, check: (value: unknown) => unknown): Promise<void> {
  // each gets its own copy: the pipe strips keys in place; 1e400 survives as Infinity
  const text = JSON.stringify(body, (_, v: unknown) => (v === Infinity ? '__inf__' : v === -Infinity ? '__-inf__' : v))
    .replace(/"__inf__"/g, '1e400')
    .replace(/"__-inf__"/g, '-1e400');
  const expected = await oracle(JSON.parse(text) as Body, dto);
  const mine = JSON.parse(text) as Body;
  const actual = outcome(() => expect(check(mine)).toBe(mine));
  if (expected === 'crashed') expect(actual).toMatchObject({ ok: false, status: 400 });
  else if (JSON.stringify(actual) !== JSON.stringify(expected)) expect({ body: text, actual }).toEqual({ body: text, actual: expected });
}

// ---- generated bodies ----

type Random = () => number;

function seeded(seed: number): Random {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const ABSENT = Symbol('absent');
const pick = <T>(random: Random, items: readonly T[]): T => items[Math.floor(random() * items.length)];

const SCALARS: unknown[] = [
  null,
  true,
  false,
  0,
  -1,
  1,
  0.5,
  1.5,
  2,
  2.5,
  3,
  8,
  9,
  -2,
  -2.5,
  1e20,
  Infinity,
  -Infinity,
  '',
  'x',
  'NaN',
  '1',
];
const JUNK: unknown[] = [...SCALARS, [], [1], ['a'], {}, { a: 1 }, [[{}]], JSON.parse('{"__proto__":{"a":1}}'), { constructor: 1 }];

const PARTS: unknown[] = [
  { type: 'text', text: 'x' },
  { type: 'text', text: 5 },
  { type: 'text' },
  { type: 'image_url', image_url: { url: 'https://x/y.png' } },
  { type: 'image_url', image_url: 'https://x' },
  { type: 'image_url', image_url: {} },
  { type: 'input_audio', input_audio: { data: 'AA', format: 'wav' } },
  { type: 'input_audio', input_audio: { data: 'AA' } },
  { type: 'input_audio', input_audio: { format: 'wav' } },
  { type: 'input_audio', input_audio: 1 },
  { type: 'file', file: { file_id: 'f' } },
  { type: 'file', file: 'f' },
  { type: 'refusal', refusal: 'no' },
  { type: 'refusal', refusal: 1 },
  { type: 'video' },
  { type: 5 },
  'text',
  null,
  [],
];

function content(random: Random): unknown {
  const r = random();
  if (r < 0.3) return 'hello';
  if (r < 0.5) return Array.from({ length: Math.floor(random() * 3) }, () => pick(random, PARTS));
  if (r < 0.65) return ABSENT;
  return pick(random, JUNK);
}

function message(random: Random): unknown {
  if (random() < 0.05) return pick(random, JUNK);
  if (random() < 0.03) return [message(random)];
  const m: Body = {};
  const roles = ['system', 'developer', 'user', 'assistant', 'tool', 'function', 'robot', '__proto__', 'constructor', 'toString', 5, null];
  const fields: Array<[string, () => unknown]> = [
    ['role', () => (random() < 0.9 ? pick(random, roles) : ABSENT)],
    ['content', () => content(random)],
    ['tool_call_id', () => pick(random, [ABSENT, ABSENT, 'c1', null, 5])],
    ['name', () => pick(random, [ABSENT, ABSENT, 'w', null, 5])],
    ['tool_calls', () => pick(random, [ABSENT, ABSENT, [], [{ id: 'c' }], {}, null, 'x'])],
    ['function_call', () => pick(random, [ABSENT, ABSENT, { name: 'w' }, 'x', null])],
    ['refusal', () => pick(random, [ABSENT, ABSENT, 'no', 1])],
  ];
  for (const [name, value] of fields) {
    const v = value();
    if (v !== ABSENT) m[name] = v;
  }
  return m;
}

function messages(random: Random): unknown {
  const r = random();
  if (r < 0.1) return pick(random, [...JUNK, ABSENT]);
  const length = r < 0.15 ? 0 : 1 + Math.floor(random() * 3);
  return Array.from({ length }, () => message(random));
}

function field(random: Random, good: unknown[]): unknown {
  const r = random();
  if (r < 0.55) return ABSENT;
  if (r < 0.8) return pick(random, good);
  return pick(random, JUNK);
}

function chatBody(random: Random): Body {
  const body: Body = {};
  const fields: Array<[string, () => unknown]> = [
    ['model', () => (random() < 0.95 ? 'm' : pick(random, [...JUNK, ABSENT]))],
    ['messages', () => messages(random)],
    ['temperature', () => field(random, [0, 0.7, 2])],
    ['top_p', () => field(random, [0, 0.5, 1])],
    ['max_tokens', () => field(random, [1, 16, null])],
    ['max_completion_tokens', () => field(random, [1, 100])],
    ['n', () => field(random, [1, 8])],
    ['stream', () => field(random, [true, false])],
    ['stream_options', () => field(random, [{ include_usage: true }, { include_usage: 1 }, {}, { include_usage: null }])],
    ['presence_penalty', () => field(random, [-2, 0, 2])],
    ['frequency_penalty', () => field(random, [-2, 1.5])],
    ['seed', () => field(random, [1, -7])],
    ['user', () => field(random, ['u'])],
    ['tools', () => field(random, [[], [{ type: 'function' }]])],
    ['tool_choice', () => field(random, ['auto', { type: 'function' }])],
    ['response_format', () => field(random, [{ type: 'json_object' }])],
    ['stop', () => field(random, ['x', ['a', 'b']])],
    ['metadata', () => field(random, [{ a: 'b' }])],
  ];
  // the fields in a random order: the answer must not depend on it
  for (const [name, value] of fields.sort(() => random() - 0.5)) {
    const v = value();
    if (v !== ABSENT) body[name] = v;
  }
  return body;
}

function embeddingBody(random: Random): Body {
  const body: Body = {};
  const fields: Array<[string, () => unknown]> = [
    ['model', () => (random() < 0.9 ? 'e' : pick(random, [...JUNK, ABSENT]))],
    ['input', () => (random() < 0.8 ? pick(random, ['x', ['a'], [[1, 2]]]) : pick(random, [...JUNK, ABSENT]))],
    ['dimensions', () => field(random, [1, 256])],
    ['encoding_format', () => field(random, ['float', 'base64', 'hex'])],
    ['user', () => field(random, ['u'])],
  ];
  for (const [name, value] of fields) {
    const v = value();
    if (v !== ABSENT) body[name] = v;
  }
  return body;
}
