import type { UsageSource } from '../usage/usage-log.entity';

export interface ReportedUsage {
  promptTokens: number;
  completionTokens: number;
  source: UsageSource;
}

const isCount = (v: unknown): v is number => typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;

/**
 * The provider's usage, if it is whole, non-negative and within what the request could
 * have used; `'missing'` when it reported none, `'implausible'` otherwise.
 */
export function readUsage(
  usage: unknown,
  bounds: { promptTokens: number; completionTokens: number },
  /** Chat usage must say how many tokens were completed; embeddings have none. */
  completionRequired = true,
): ReportedUsage | 'missing' | 'implausible' {
  if (usage === undefined || usage === null) return 'missing';
  if (typeof usage !== 'object') return 'implausible';
  const u = usage as { prompt_tokens?: unknown; completion_tokens?: unknown };
  const completion = completionRequired ? u.completion_tokens : (u.completion_tokens ?? 0);
  if (!isCount(u.prompt_tokens) || !isCount(completion)) return 'implausible';
  if (u.prompt_tokens > bounds.promptTokens || completion > bounds.completionTokens) return 'implausible';
  return { promptTokens: u.prompt_tokens, completionTokens: completion, source: 'provider' };
}
