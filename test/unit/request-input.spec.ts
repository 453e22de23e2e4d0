import { ChatCompletionCreateDto } from '../../src/chat/chat.dto';
import { ApiError, clip, ModelNotFoundError } from '../../src/common/errors/api-error';
import { declaredCharset, jsonDepthExceeds, MAX_JSON_DEPTH, parseJsonBody } from '../../src/common/http/body-parser';
import { findNul, proxyValidation, strictValidation } from '../../src/common/validation';
import { ApiKeyCreateDto } from '../../src/keys/keys.dto';

const nested = (depth: number, inner = '1') => '['.repeat(depth) + inner + ']'.repeat(depth);

describe('JSON depth scanner', () => {
  it('counts arrays and objects, not brackets inside strings or escapes', () => {
    expect(jsonDepthExceeds(Buffer.from(nested(MAX_JSON_DEPTH)), MAX_JSON_DEPTH)).toBe(false);
    expect(jsonDepthExceeds(Buffer.from(nested(MAX_JSON_DEPTH + 1)), MAX_JSON_DEPTH)).toBe(true);
    expect(jsonDepthExceeds(Buffer.from(`{"a":"${'['.repeat(500)}"}`), 2)).toBe(false);
    expect(jsonDepthExceeds(Buffer.from(JSON.stringify({ a: '\\"[[[[', b: 'x\\\\' })), 1)).toBe(false);
    expect(jsonDepthExceeds(Buffer.from('{"a":"\\\\"}'.replace('}', ',"b":[[1]]}')), 2)).toBe(true);
    expect(jsonDepthExceeds(Buffer.from(JSON.stringify({ 'ключ[': ['значение{', { é: ['✓'] }] })), 4)).toBe(false);
  });

  it('refuses 10,000 levels with a 400 fast, and parses 128', () => {
    const started = performance.now();
    expect(() => parseJsonBody(Buffer.from(nested(10_000)))).toThrow(ApiError);
    expect(performance.now() - started).toBeLessThan(100);
    expect(parseJsonBody(Buffer.from(nested(MAX_JSON_DEPTH)))).toBeInstanceOf(Array);
    try {
      parseJsonBody(Buffer.from(nested(MAX_JSON_DEPTH + 1)));
      throw new Error('not refused');
    } catch (err) {
      expect((err as ApiError).status).toBe(400);
      expect((err as ApiError).code).toBe('invalid_request_error');
    }
  });

  it('refuses bytes that are not UTF-8', () => {
    expect(() => parseJsonBody(Buffer.from('{"a":"\xff"}', 'latin1'))).toThrow(ApiError);
    expect(parseJsonBody(Buffer.from('{"a":"é"}'))).toEqual({ a: 'é' });
    expect(parseJsonBody(Buffer.alloc(0))).toEqual({});
  });

  it('reads the declared charset', () => {
    expect(declaredCharset('application/json')).toBeNull();
    expect(declaredCharset(undefined)).toBeNull();
    expect(declaredCharset('application/json; charset=UTF-16LE')).toBe('utf-16le');
    expect(declaredCharset('application/json;charset="utf-8"')).toBe('utf-8');
  });
});

describe('NUL characters in admin input', () => {
  it('are found in values and keys, at any depth, with their path', () => {
    expect(findNul({ name: 'ok', models: ['a', 'b'] })).toBeNull();
    expect(findNul({ name: 'a\u0000b' })).toBe('name');
    expect(findNul({ models: ['a', 'b\u0000'] })).toBe('models[1]');
    expect(findNul({ fallbacks: [{ provider: 'x', upstream_model: '\u0000' }] })).toBe('fallbacks[0].upstream_model');
    expect(findNul({ ['bad\u0000key']: 1 })).toBe('bad\u0000key');
    expect(findNul('\u0000')).toBe('');
  });

  it('are a 400 naming the parameter in the strict pipe', async () => {
    const run = (value: unknown, type: 'body' | 'query', data?: string) =>
      strictValidation.transform(value, { type, metatype: type === 'body' ? ApiKeyCreateDto : Object, data });
    await expect(run({ name: 'fine' }, 'body')).resolves.toBeDefined();
    await expect(run({ name: 'bad\u0000' }, 'body')).rejects.toMatchObject({ status: 400, param: 'name' });
    await expect(run({ model: 'x\u0000' }, 'query')).rejects.toMatchObject({ status: 400, param: 'model' });
    await expect(run('x\u0000', 'query', 'model')).rejects.toMatchObject({ status: 400, param: 'model' });
  });
});

describe('chat messages by role', () => {
  const validate = (messages: unknown[]) =>
    proxyValidation.transform({ model: 'm', messages }, { type: 'body', metatype: ChatCompletionCreateDto });
  const refused = async (messages: unknown[]): Promise<{ param: string | null; message: string }> => {
    try {
      await validate(messages);
    } catch (err) {
      expect((err as ApiError).status).toBe(400);
      return { param: (err as ApiError).param, message: (err as ApiError).message };
    }
    throw new Error(`accepted: ${JSON.stringify(messages)}`);
  };

  it.each([
    ['a user string', [{ role: 'user', content: 'hi' }]],
    [
      'user parts: text, image, audio, file',
      [
        {
          role: 'user',
          content: [
            { type: 'text', text: 'look' },
            { type: 'image_url', image_url: { url: 'https://example.com/a.png', detail: 'high' } },
            { type: 'input_audio', input_audio: { data: 'AAAA', format: 'wav' } },
            { type: 'file', file: { file_id: 'file-1' } },
          ],
        },
      ],
    ],
    [
      'system and developer text parts',
      [
        { role: 'system', content: [{ type: 'text', text: 'x' }] },
        { role: 'developer', content: 'y' },
      ],
    ],
    [
      'an assistant tool call without content',
      [
        { role: 'user', content: 'weather?' },
        { role: 'assistant', content: null, tool_calls: [{ id: 'c1', type: 'function', function: { name: 'w', arguments: '{}' } }] },
        { role: 'tool', tool_call_id: 'c1', content: 'sunny' },
      ],
    ],
    [
      'an assistant function call, and a function answer',
      [
        { role: 'assistant', function_call: { name: 'w', arguments: '{}' } },
        { role: 'function', name: 'w', content: 'sunny' },
      ],
    ],
    ['an assistant refusal', [{ role: 'assistant', content: null, refusal: 'no' }]],
    ['unmodelled fields on messages', [{ role: 'user', content: 'hi', name: 'bob', cache_control: { type: 'ephemeral' } }]],
  ])('accepts %s', async (_, messages) => {
    await expect(validate(messages)).resolves.toBeDefined();
  });

  it.each([
    ['object content', 'messages[0].content', [{ role: 'user', content: { text: 'hi' } }]],
    ['a user message without content', 'messages[0].content', [{ role: 'user' }]],
    ['a system message with null content', 'messages[0].content', [{ role: 'system', content: null }]],
    [
      'an assistant message with nothing',
      'messages[1].content',
      [
        { role: 'user', content: 'x' },
        { role: 'assistant', content: null },
      ],
    ],
    ['an assistant message with empty tool_calls', 'messages[0].content', [{ role: 'assistant', tool_calls: [] }]],
    ['a numeric content', 'messages[0].content', [{ role: 'user', content: 42 }]],
    ['an empty parts array', 'messages[0].content', [{ role: 'user', content: [] }]],
    ['an image part for system', 'messages[0].content', [{ role: 'system', content: [{ type: 'image_url', image_url: { url: 'x' } }] }]],
    ['a text part without text', 'messages[0].content', [{ role: 'user', content: [{ type: 'text', text: 5 }] }]],
    ['an image part without a url', 'messages[0].content', [{ role: 'user', content: [{ type: 'image_url', image_url: 'https://x' }] }]],
    [
      'an audio part without a format',
      'messages[0].content',
      [{ role: 'user', content: [{ type: 'input_audio', input_audio: { data: 'A' } }] }],
    ],
    ['a part of unknown type', 'messages[0].content', [{ role: 'user', content: [{ type: 'video', video: {} }] }]],
    ['a tool message without tool_call_id', 'messages[0].tool_call_id', [{ role: 'tool', content: 'x' }]],
    ['a function message without name', 'messages[0].name', [{ role: 'function', content: 'x' }]],
    ['tool_calls that are not an array', 'messages[0].tool_calls', [{ role: 'assistant', content: 'x', tool_calls: {} }]],
  ])('refuses %s, naming %s', async (_, param, messages) => {
    const error = await refused(messages);
    expect(error.param).toBe(param);
    expect(error.message).toContain(param);
  });

  it('names the part at fault in the message', async () => {
    const error = await refused([
      {
        role: 'user',
        content: [
          { type: 'text', text: 'a' },
          { type: 'image_url', image_url: {} },
        ],
      },
    ]);
    expect(error.message).toContain('messages[0].content[1].image_url.url');
  });
});

describe('echoed values', () => {
  it('an unknown model id is cut to 100 characters', () => {
    const error = new ModelNotFoundError('m'.repeat(100_000));
    expect(error.message.length).toBeLessThan(200);
    expect(error.message).toContain(`'${'m'.repeat(100)}…'`);
    expect(new ModelNotFoundError('gpt-x').message).toContain("'gpt-x'");
    expect(clip('😀'.repeat(150))).toBe(`${'😀'.repeat(100)}…`);
  });
});
