import { costMicros } from '../common/money';

/** Tokens a message can add beyond its content (role, separators), over-estimated. */
export const PER_MESSAGE_OVERHEAD_TOKENS = 8;
export const PER_REQUEST_OVERHEAD_TOKENS = 16;

/**
 * Tokens a non-text content part (an image by URL, audio, a file) may cost. Its bytes say
 * nothing about its tokens: gpt-4o-mini counts a high-detail image at up to ~48,000. Parts
 * sent inline (base64 data URLs) are bounded by their bytes as well.
 */
export const NON_TEXT_PART_TOKENS = 50_000;

/**
 * A true upper bound on prompt tokens: BPE tokenizers never produce more tokens than UTF-8
 * bytes, and the request body (as received, or the JSON of the parts the provider tokenizes)
 * has at least as many bytes as the text it carries; plus a per-message overhead and an
 * allowance for each non-text part.
 */
export function promptTokenBound(
  body: { messages?: unknown; tools?: unknown; functions?: unknown; response_format?: unknown; input?: unknown },
  bodyBytes?: number,
): number {
  let bytes = bodyBytes ?? 0;
  if (bodyBytes === undefined) {
    for (const part of [body.messages, body.tools, body.functions, body.response_format, body.input]) {
      if (part === undefined || part === null) continue;
      bytes += Buffer.byteLength(typeof part === 'string' ? part : JSON.stringify(part), 'utf8');
    }
  }
  let items = 0;
  let nonText = 0;
  for (const list of [body.messages, body.tools, body.functions, body.input]) if (Array.isArray(list)) items += list.length;
  if (Array.isArray(body.messages)) {
    for (const message of body.messages as Array<{ content?: unknown }>) {
      if (!Array.isArray(message?.content)) continue;
      for (const part of message.content as Array<{ type?: unknown }>) if (part?.type !== 'text') nonText++;
    }
  }
  return bytes + items * PER_MESSAGE_OVERHEAD_TOKENS + PER_REQUEST_OVERHEAD_TOKENS + nonText * NON_TEXT_PART_TOKENS;
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
  return {
    promptTokens,
    completionTokens,
    amountMicros: costMicros(promptTokens, completionTokens, price.inputPriceMicros, price.outputPriceMicros),
  };
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
