import { costMicros } from '../common/money';

/** Tokens a message can add beyond its content (role, separators), over-estimated. */
export const PER_MESSAGE_OVERHEAD_TOKENS = 8;
export const PER_REQUEST_OVERHEAD_TOKENS = 16;

/**
 * A true upper bound on prompt tokens: BPE tokenizers never produce more tokens than UTF-8
 * bytes, and the JSON text of the messages (plus tools and response format) has at least as
 * many bytes as the content the provider tokenizes.
 */
export function promptTokenBound(body: { messages?: unknown; tools?: unknown; functions?: unknown; response_format?: unknown; input?: unknown }): number {
  let bytes = 0;
  let messages = 0;
  for (const part of [body.messages, body.tools, body.functions, body.response_format, body.input]) {
    if (part === undefined || part === null) continue;
    bytes += Buffer.byteLength(typeof part === 'string' ? part : JSON.stringify(part), 'utf8');
    if (Array.isArray(part)) messages += part.length;
  }
  return bytes + messages * PER_MESSAGE_OVERHEAD_TOKENS + PER_REQUEST_OVERHEAD_TOKENS;
}

export interface HoldEstimate {
  promptTokens: number;
  completionTokens: number;
  amountMicros: number;
}

export function holdEstimate(
  promptTokens: number,
  completionTokens: number,
  price: { inputPriceMicros: number; outputPriceMicros: number },
): HoldEstimate {
  return { promptTokens, completionTokens, amountMicros: costMicros(promptTokens, completionTokens, price.inputPriceMicros, price.outputPriceMicros) };
}

/** How many completion tokens `availableMicros` pays for after the prompt bound. */
export function affordableCompletionTokens(
  availableMicros: number,
  promptTokens: number,
  price: { inputPriceMicros: number; outputPriceMicros: number },
): number {
  const left = BigInt(Math.max(0, availableMicros)) * 1_000_000n - BigInt(promptTokens) * BigInt(price.inputPriceMicros);
  if (left <= 0n) return 0;
  if (price.outputPriceMicros === 0) return Number.MAX_SAFE_INTEGER;
  return Number(left / BigInt(price.outputPriceMicros));
}
