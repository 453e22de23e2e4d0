import type { UsageSource } from '../usage/usage-log.entity';
import type { SettlementRecorder } from './settlement/settlement-recorder.service';
import type { Settlement } from './settlement/settlement.types';

/** What `BillingService.reserve` holds money for: the most one request can cost. */
export interface HoldRequest {
  requestId: string;
  workspaceId: string;
  keyId: string;
  /** the key has a hard budget: its settlements are applied synchronously so the charge is known exactly */
  keyHasBudget: boolean;
  model: { id: string; inputPriceMicros: number; outputPriceMicros: number };
  /** The prompt bound. */
  promptTokens: number;
  /** The completion bound. */
  completionTokens: number;
}

/** What a request came to, for its settlement: ids and numbers only, never prompts or keys. */
export interface HoldOutcome {
  status: number;
  errorCode: string | null;
  provider: string | null;
  promptTokens: number;
  completionTokens: number;
  /** The exact cost of the reported usage; charged up to the hold. */
  costMicros: number;
  usageSource: UsageSource;
  stream: boolean;
  latencyMs: number;
  /** ms since epoch when the request arrived. */
  createdAt: number;
  /** Times the request was sent upstream, retries and fallbacks included (0: never forwarded); absent: unknown. */
  attempts?: number;
}

export interface SettleReceipt {
  /** Queued or applied; false when neither Redis nor PostgreSQL took it (the sweeper releases the hold later). */
  ok: boolean;
  /** What the client is told: the settlement's own figure when applied synchronously, else min(costMicros, hold amount). */
  chargedMicros: number;
}

/**
 * Money reserved for one request in flight, from `BillingService.reserve` to `settle`. While
 * it is open its expiry is renewed (every third of HOLD_TTL_SECONDS), so only the holds of a
 * process that died expire and reach the sweeper.
 */
export class Hold {
  private released = false;

  /**
   * `release` runs once, when the settlement is handed over: it stops renewing a hold of its
   * own, or takes a hold against a lease out of the lease. `lease` names that lease, if any.
   */
  constructor(
    private readonly request: HoldRequest,
    readonly amountMicros: number,
    private readonly recorder: SettlementRecorder,
    private readonly release: () => void,
    private readonly lease: { leaseId: string } | null = null,
  ) {}

  get requestId(): string {
    return this.request.requestId;
  }

  /**
   * Hands the outcome to settlement and stops renewing the hold: from here it is the
   * settlement's to remove. A 200 of a key with a budget is applied at once (PostgreSQL first,
   * the queue if that fails), so a budget lowered meanwhile caps the charge the client is told;
   * everything else is queued (job id = request id), PostgreSQL standing in when Redis cannot
   * take it within 1 s. Settling twice charges once.
   */
  async settle(outcome: HoldOutcome): Promise<SettleReceipt> {
    try {
      const recorded = await this.recorder.record(this.settlement(outcome), {
        synchronous: this.request.keyHasBudget && outcome.status === 200,
      });
      // queued: the worker charges exactly the cost capped at the hold
      return { ok: recorded.ok, chargedMicros: recorded.chargedMicros ?? Math.min(outcome.costMicros, this.amountMicros) };
    } finally {
      if (!this.released) {
        this.released = true;
        this.release();
      }
    }
  }

  /**
   * Takes back a queued settlement no worker has started (the client left before its answer
   * could be written). true when it was taken back: `settle` may be called again.
   */
  withdraw(): Promise<boolean> {
    return this.recorder.withdraw(this.request.requestId);
  }

  private settlement(o: HoldOutcome): Settlement {
    return {
      requestId: this.request.requestId,
      workspaceId: this.request.workspaceId,
      keyId: this.request.keyId,
      model: this.request.model.id,
      provider: o.provider,
      promptTokens: o.promptTokens,
      completionTokens: o.completionTokens,
      costMicros: o.costMicros,
      usageSource: o.usageSource,
      status: o.status,
      errorCode: o.errorCode,
      latencyMs: o.latencyMs,
      stream: o.stream,
      createdAt: o.createdAt,
      attempts: o.attempts ?? null,
      ...(this.lease ? { leaseId: this.lease.leaseId, holdMicros: this.amountMicros } : {}),
    };
  }
}
