import type { UsageSource } from '../../usage/usage-log.entity';

/**
 * What a finished request reports for settlement, the settlement job's payload: ids and
 * numbers only, never prompts or keys.
 */
export interface Settlement {
  requestId: string;
  workspaceId: string;
  keyId: string;
  model: string;
  provider: string | null;
  promptTokens: number;
  completionTokens: number;
  /** The exact cost from the reported usage; charged up to the hold. */
  costMicros: number;
  usageSource: UsageSource;
  /** The HTTP status answered; null only when the sweeper cannot know it (`outcome_unknown`). */
  status: number | null;
  errorCode: string | null;
  latencyMs: number;
  stream: boolean;
  /** ms since epoch when the request arrived. */
  createdAt: number;
  /** Times the request was sent upstream (retries and fallbacks included); absent or null when unknown. */
  attempts?: number | null;
  /** Held against this escrow lease (absent: a hold of its own); `holdMicros` is what it held. */
  leaseId?: string;
  holdMicros?: number;
}

export interface SettleResult {
  /** false when this request had been settled before (nothing changed). */
  applied: boolean;
  chargedMicros: number;
}
