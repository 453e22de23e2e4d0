import { Logger } from '@nestjs/common';
import { costMicros } from '../common/money';
import type { UsageSource } from '../usage/usage-log.entity';
import type { ProxyCall } from './proxy-call';
import { countPromptTokens, countTextTokens } from './token-count';

export interface ReportedUsage {
  promptTokens: number;
  completionTokens: number;
  source: UsageSource;
}

/** Token counts a request is charged for, where they came from, and their exact cost. */
export interface MeasuredUsage {
  promptTokens: number;
  completionTokens: number;
  usageSource: UsageSource;
  /** Settlement charges it, capped at the hold. */
  costMicros: number;
}

const logger = new Logger('UsageReport');

const isCount = (v: unknown): v is number => typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;

/**
 * The provider's usage report, read strictly (CONTRACT §2):
 * - whole, non-negative counts within the request's bounds: the counts;
 * - `'missing'` when there is no report or it is malformed (counts as strings, fractions,
 *   negative, or no completion count for chat): the caller counts with a tokenizer;
 * - `'over_bound'` when a well-formed count exceeds what the request could use: charged at the bound.
 */
export function readUsage(
  usage: unknown,
  bounds: { promptTokens: number; completionTokens: number },
  /** Chat usage must say how many tokens were completed; embeddings have none. */
  completionRequired = true,
): ReportedUsage | 'missing' | 'over_bound' {
  if (usage === undefined || usage === null || typeof usage !== 'object' || Array.isArray(usage)) return 'missing';
  const u = usage as { prompt_tokens?: unknown; completion_tokens?: unknown };
  const completion = completionRequired ? u.completion_tokens : (u.completion_tokens ?? 0);
  if (!isCount(u.prompt_tokens) || !isCount(completion)) return 'missing';
  if (u.prompt_tokens > bounds.promptTokens || completion > bounds.completionTokens) return 'over_bound';
  return { promptTokens: u.prompt_tokens, completionTokens: completion, source: 'provider' };
}

/**
 * What a request is charged for: the provider's usage when well formed and within the bounds;
 * a real tokenizer (capped at the bounds) when it is missing or malformed; the bound (the
 * whole hold) when a well-formed report exceeds it.
 */
export function measureUsage(call: ProxyCall, reported: unknown, completionText: () => string): MeasuredUsage {
  const { model } = call;
  const read = readUsage(reported, { promptTokens: call.promptBound, completionTokens: call.completionBound }, call.kind === 'chat');
  if (read === 'over_bound') {
    logger.warn(`Usage from provider '${model.providerId}' for ${call.req.id} exceeds the request's bound: charged at the bound`);
    return {
      promptTokens: call.promptBound,
      completionTokens: call.completionBound,
      usageSource: 'hold',
      costMicros: call.hold?.amountMicros ?? 0,
    };
  }
  const counted =
    read === 'missing'
      ? {
          promptTokens: Math.min(call.promptBound, countPromptTokens(call.body)),
          completionTokens: Math.min(call.completionBound, countTextTokens(completionText())),
          usageSource: 'tokenizer' as const,
        }
      : { promptTokens: read.promptTokens, completionTokens: read.completionTokens, usageSource: read.source };
  const cost = costMicros(counted.promptTokens, counted.completionTokens, model.inputPriceMicros, model.outputPriceMicros);
  return { ...counted, costMicros: cost };
}

/** Text the model produced in a completion or a stream chunk, for the tokenizer fallback. */
export function completionText(event: Record<string, unknown>): string {
  if (!Array.isArray(event.choices)) return '';
  let text = '';
  for (const choice of event.choices as Array<{ message?: Record<string, unknown>; delta?: Record<string, unknown> }>) {
    const part = choice?.message ?? choice?.delta;
    if (!part) continue;
    for (const field of ['content', 'reasoning_content', 'refusal']) if (typeof part[field] === 'string') text += part[field];
    if (Array.isArray(part.tool_calls)) text += JSON.stringify(part.tool_calls);
  }
  return text;
}
