import { Injectable, Logger } from '@nestjs/common';
import { createHash, randomUUID } from 'node:crypto';
import { ConflictError, GatewayError, InsufficientQuotaError, InvalidRequestError, NotFoundError } from '../common/errors/api-error';
import { formatUsd, MAX_BALANCE_MICROS } from '../common/money';
import { tagOf } from '../common/http/request-scope';
import { decodeCursor, encodeCursor } from '../common/pagination';
import { AppConfig } from '../config/app-config';
import { MetricsService } from '../metrics/metrics.service';
import { CreditCreateDto, LedgerEntryDto, LedgerPageDto } from './billing.dto';
import { Hold, HoldRequest } from './hold';
import { affordableCompletionTokens, holdEstimate } from './hold-estimate';
import { HoldKeepAlive } from './hold-keep-alive.service';
import { HoldRepository, PlaceHoldResult } from './hold.repository';
import { EscrowLeases } from './leases/escrow-leases.service';
import { LedgerEntryEntity } from './ledger-entry.entity';
import type { EntityManager } from 'typeorm';
import { LedgerCredit, LedgerRepository, LedgerTx } from './ledger.repository';
import { SettlementRecorder } from './settlement/settlement-recorder.service';

export interface CreditResult {
  entry: LedgerEntryDto;
  /** false when an earlier request with the same Idempotency-Key created it. */
  created: boolean;
}

/**
 * Money in and out of workspaces: holds for requests (`reserve`, ended by `Hold.settle`),
 * credits, and the ledger. The only way other domains move money.
 */
@Injectable()
export class BillingService {
  private readonly logger = new Logger(BillingService.name);

  constructor(
    private readonly holds: HoldRepository,
    private readonly entries: LedgerRepository,
    private readonly recorder: SettlementRecorder,
    private readonly keepAlive: HoldKeepAlive,
    private readonly leases: EscrowLeases,
    private readonly config: AppConfig,
    private readonly metrics: MetricsService,
  ) {}

  /**
   * Reserves the most a request can cost before it is forwarded, and keeps the hold alive until
   * it is settled. Refuses with 403 insufficient_quota (saying how many completion tokens the
   * money covers), or with gateway_error when the store cannot be reached: never serve unbilled.
   */
  async reserve(request: HoldRequest): Promise<Hold> {
    const { requestId, model, promptTokens, completionTokens } = request;
    const estimate = holdEstimate(promptTokens, completionTokens, model);
    // a key with a budget is held per request: its budget is checked by the hold itself
    if (!request.keyHasBudget) {
      const leased = await this.leases.hold(request.workspaceId, estimate.amountMicros, {
        requestId,
        keyId: request.keyId,
        model: model.id,
        createdAt: Date.now(),
      });
      if (leased) {
        this.metrics.holds.inc({ outcome: 'leased' });
        return new Hold(request, estimate.amountMicros, this.recorder, () => this.leases.release(leased), leased);
      }
    }
    let outcome = await this.placeHold(request, estimate.amountMicros);
    // before refusing for lack of balance: money may sit unused in leases (this process's or others')
    if (outcome.outcome === 'insufficient_balance' && (await this.leases.reclaim(request.workspaceId))) {
      outcome = await this.placeHold(request, estimate.amountMicros);
    }
    this.metrics.holds.inc({ outcome: outcome.outcome });
    if (outcome.outcome === 'held') {
      this.keepAlive.track(requestId);
      return new Hold(request, estimate.amountMicros, this.recorder, () => this.keepAlive.release(requestId));
    }
    const limited = outcome.outcome === 'insufficient_balance' ? outcome.availableMicros : outcome.keyRemainingMicros;
    const affordable = affordableCompletionTokens(limited, promptTokens, model);
    const detail =
      ` This request can cost up to ${formatUsd(estimate.amountMicros)}` +
      ` (${promptTokens} prompt + ${completionTokens} completion tokens at most);` +
      (affordable > 0
        ? ` what is left covers about ${affordable} completion tokens: lower max_tokens to at most ${affordable}.`
        : ' what is left does not cover the prompt.');
    if (outcome.outcome === 'insufficient_balance') {
      throw new InsufficientQuotaError(
        `Insufficient prepaid balance. Current balance: ${formatUsd(Math.max(0, outcome.availableMicros))}.${detail}`,
      );
    }
    throw new InsufficientQuotaError(
      `Insufficient key budget. Remaining key budget: ${formatUsd(Math.max(0, outcome.keyRemainingMicros))}.${detail}`,
    );
  }

  /** One hold of the request's own in PostgreSQL, or 503 when the store cannot be reached. */
  private async placeHold(request: HoldRequest, amountMicros: number): Promise<PlaceHoldResult> {
    try {
      return await this.holds.placeHold(
        request.requestId,
        request.workspaceId,
        request.keyId,
        request.model.id,
        amountMicros,
        this.config.holdTtlSeconds,
      );
    } catch (err) {
      this.metrics.holds.inc({ outcome: 'error' });
      this.logger.error(`Could not place hold for ${request.requestId}: ${(err as Error).message}`, tagOf(request.requestId));
      throw new GatewayError(503, 'The gateway cannot reach its billing store right now; the request was not sent. Try again shortly.', {
        'retry-after': '1',
      });
    }
  }

  /**
   * An operator credit or correction, with its ledger entry, in one transaction. A repeated
   * Idempotency-Key returns the first entry; the same key with another body is a conflict.
   */
  async credit(workspaceId: string, dto: CreditCreateDto, idempotencyKey: string | undefined): Promise<CreditResult> {
    if (dto.amount_micros === 0) throw new InvalidRequestError('amount_micros must not be 0.', 'amount_micros');
    if (idempotencyKey !== undefined && !/^[\x21-\x7e]{1,255}$/.test(idempotencyKey)) {
      throw new InvalidRequestError('Idempotency-Key must be 1-255 printable ASCII characters.', 'Idempotency-Key');
    }
    const requestHash = createHash('sha256')
      .update(JSON.stringify([dto.amount_micros, dto.reason ?? null]))
      .digest('hex');
    const reference = `admin:${workspaceId}:${idempotencyKey ?? randomUUID()}`;
    const existing = idempotencyKey ? await this.entries.findByReference(reference) : null;
    if (existing) return this.replay(existing, requestHash);
    const credit: LedgerCredit = {
      workspaceId,
      kind: dto.amount_micros > 0 ? 'credit' : 'correction',
      amountMicros: dto.amount_micros,
      reference,
      reason: dto.reason ?? null,
      requestHash,
    };
    const entryId = await this.apply(credit);
    if (entryId !== null) return { entry: BillingService.entryDto((await this.entries.findById(entryId))!), created: true };
    // Two requests with one Idempotency-Key raced: the unique reference let one through.
    const winner = idempotencyKey ? await this.entries.findByReference(reference) : null;
    if (winner) return this.replay(winner, requestHash);
    throw new Error(`Ledger reference ${reference} is taken`);
  }

  /**
   * A credit under a reference the caller chose (`seed:demo-workspace`): applied once, through
   * the same path as every credit. false when an entry with that reference exists.
   */
  async creditOnce(workspaceId: string, amountMicros: number, reference: string, reason: string): Promise<boolean> {
    return (await this.apply({ workspaceId, kind: 'credit', amountMicros, reference, reason, requestHash: null })) !== null;
  }

  /**
   * Runs `work` in one transaction whose LedgerTx moves money (Stripe top-ups, refunds and
   * disputes): the caller's own rows change in the same transaction as the ledger entry.
   */
  withLedger<T>(work: (tx: EntityManager, ledger: LedgerTx) => Promise<T>): Promise<T> {
    return this.entries.transaction(work);
  }

  /** The ledger entry with this reference, or null. */
  async findEntry(reference: string): Promise<LedgerEntryDto | null> {
    const entry = await this.entries.findByReference(reference);
    return entry ? BillingService.entryDto(entry) : null;
  }

  async ledger(workspaceId: string, limit: number, cursor: string | undefined): Promise<LedgerPageDto> {
    const before = cursor === undefined ? null : decodeCursor(cursor);
    const rows = await this.entries.listPage(workspaceId, before, limit + 1);
    const page = rows.slice(0, limit).map((e) => BillingService.entryDto(e));
    return { data: page, next_cursor: rows.length > limit ? encodeCursor(page[page.length - 1].id) : null };
  }

  /** The new entry's id; null when its reference was taken. */
  private async apply(credit: LedgerCredit): Promise<string | null> {
    const result = await this.entries.credit(credit);
    switch (result.outcome) {
      case 'applied':
        return result.entryId;
      case 'duplicate_reference':
        return null;
      case 'workspace_not_found':
        throw new NotFoundError(`Workspace '${credit.workspaceId}' not found.`);
      case 'out_of_range':
        throw new InvalidRequestError(
          `This ${credit.amountMicros > 0 ? 'credit' : 'correction'} would take the balance (${formatUsd(result.balanceMicros)}) ` +
            `outside the supported range of ±${formatUsd(MAX_BALANCE_MICROS)}. Nothing was changed.`,
          'amount_micros',
        );
    }
  }

  private replay(existing: LedgerEntryEntity, requestHash: string): CreditResult {
    if (existing.requestHash !== requestHash) {
      throw new ConflictError('This Idempotency-Key was already used with a different request body.', 'idempotency_key_reused');
    }
    return { entry: BillingService.entryDto(existing), created: false };
  }

  static entryDto(e: LedgerEntryEntity): LedgerEntryDto {
    return {
      id: String(e.id),
      workspace_id: e.workspaceId,
      kind: e.kind,
      amount_micros: e.amountMicros,
      balance_after_micros: e.balanceAfterMicros,
      reference: e.reference,
      key_id: e.keyId,
      reason: e.reason,
      created_at: new Date(e.createdAt).toISOString(),
    };
  }
}
