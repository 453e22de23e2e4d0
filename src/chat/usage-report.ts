import type { UsageSource } from '../usage/usage-log.entity';

export interface ReportedUsage {
  promptTokens: number;
  completionTokens: number;
  source: UsageSource;
}

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
