import type * as GptTokenizer from 'gpt-tokenizer';

let tokenizer: typeof GptTokenizer | undefined;

/**
 * o200k's tables cost about 70 MB and half a second to load: they are loaded the first time a
 * provider reports no usage, not at start (most processes never need them).
 */
function countTokens(text: string): number {
  // eslint-disable-next-line @typescript-eslint/no-require-imports -- loaded on first use, synchronously
  tokenizer ??= require('gpt-tokenizer') as typeof GptTokenizer;
  return tokenizer.countTokens(text);
}

/** Tokens OpenAI's chat format adds per message (role and separators) and per reply. */
const PER_MESSAGE = 4;
const PER_REPLY = 3;

function contentText(content: unknown): string {
  if (typeof content === 'string') return content;
  if (Array.isArray(content)) {
    return (content as Array<{ text?: unknown } | null>).map((p) => (typeof p?.text === 'string' ? p.text : '')).join('');
  }
  return content === null || content === undefined ? '' : JSON.stringify(content);
}

/**
 * Prompt tokens by a real tokenizer (o200k), for when a provider reports no usage. Tools and
 * response formats are counted as their JSON text.
 */
export function countPromptTokens(body: { messages?: unknown; tools?: unknown; input?: unknown }): number {
  let tokens = 0;
  if (Array.isArray(body.messages)) {
    for (const m of body.messages as Array<{ content?: unknown; tool_calls?: unknown; name?: unknown }>) {
      tokens += PER_MESSAGE + countTokens(contentText(m?.content));
      if (m?.tool_calls) tokens += countTokens(JSON.stringify(m.tool_calls));
    }
    tokens += PER_REPLY;
  }
  if (body.tools) tokens += countTokens(JSON.stringify(body.tools));
  if (body.input !== undefined) {
    const inputs = Array.isArray(body.input) ? body.input : [body.input];
    for (const input of inputs) tokens += Array.isArray(input) ? input.length : typeof input === 'number' ? 1 : countTokens(String(input));
  }
  return tokens;
}

export function countTextTokens(text: string): number {
  return text.length === 0 ? 0 : countTokens(text);
}
