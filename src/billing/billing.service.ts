import { Injectable, Logger, OnModuleDestroy, OnModuleInit } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { createHash, randomUUID } from 'node:crypto';
import { DataSource } from 'typeorm';
import { AppConfig } from '../config/app-config';
import { ConflictError, GatewayError, InsufficientQuotaError, InvalidRequestError, NotFoundError } from '../common/errors/api-error';
import { formatUsd, MAX_BALANCE_MICROS, safeMicros } from '../common/money';
import { rowsOf } from '../database/sql';
import type { ModelEntity } from '../catalog/model.entity';
import type { AuthenticatedKey } from '../keys/key-cache';
import { MetricsService } from '../metrics/metrics.service';
import { BillingRepository } from './billing.repository';
import { affordableCompletionTokens, holdEstimate } from './hold-estimate';
import { CreditCreateDto, LedgerEntryDto, LedgerPageDto } from './billing.dto';

export interface CreditResult {
  entry: LedgerEntryDto;
  /** false when an earlier request with the same Idempotency-Key created it. */
  created: boolean;
}

@Injectable()
export class BillingService implements OnModuleInit, OnModuleDestroy {
  private readonly logger = new Logger(BillingService.name);
  /** Requests of this process holding money and not yet handed to settlement. */
  private readonly live = new Set<string>();
  private keepAliveTimer: NodeJS.Timeout | null = null;

  constructor(
    private readonly repo: BillingRepository,
    private readonly config: AppConfig,
    private readonly metrics: MetricsService,
    @InjectDataSource() private readonly db: DataSource,
  ) {}

  /**
   * Reserves the most a request can cost before it is forwarded. Refuses with 403
   * insufficient_quota (saying how many completion tokens the money covers), or with
   * gateway_error when the store cannot be reached: never serve unbilled.
   */
  async hold(requestId: string, key: AuthenticatedKey, model: ModelEntity, promptTokens: number, completionTokens: number): Promise<number> {
    const estimate = holdEstimate(promptTokens, completionTokens, model);
    let outcome;
    try {
      outcome = await this.repo.placeHold(requestId, key.workspaceId, key.id, model.id, estimate.amountMicros, this.config.holdTtlSeconds);
    } catch (err) {
      this.metrics.holds.inc({ outcome: 'error' });
      this.logger.error(`Could not place hold for ${requestId}: ${(err as Error).message}`);
      throw new GatewayError(503, 'The gateway cannot reach its billing store right now; the request was not sent. Try again shortly.', {
        'retry-after': '1',
      });
    }
    this.metrics.holds.inc({ outcome: outcome.outcome });
    if (outcome.outcome === 'held') {
      this.live.add(requestId);
      return estimate.amountMicros;
    }
    const limited = outcome.outcome === 'insufficient_balance' ? outcome.availableMicros : outcome.keyRemainingMicros;
    const affordable = affordableCompletionTokens(limited, promptTokens, model);
    const detail =
      ` This request can cost up to ${formatUsd(estimate.amountMicros)} (${promptTokens} prompt + ${completionTokens} completion tokens at most);` +
      (affordable > 0
        ? ` what is left covers about ${affordable} completion tokens: lower max_tokens to at most ${affordable}.`
        : ' what is left does not cover the prompt.');
    if (outcome.outcome === 'insufficient_balance') {
      throw new InsufficientQuotaError(`Insufficient prepaid balance. Current balance: ${formatUsd(Math.max(0, outcome.availableMicros))}.${detail}`);
    }
    throw new InsufficientQuotaError(`Insufficient key budget. Remaining key budget: ${formatUsd(Math.max(0, outcome.keyRemainingMicros))}.${detail}`);
  }

  /** The request's settlement is recorded (queued or applied): its hold no longer needs keeping alive. */
  handedOver(requestId: string): void {
    this.live.delete(requestId);
  }

  /**
   * A request may run longer than the hold TTL (a long stream): while it is in flight here,
   * its hold's expiry is pushed back, so the sweeper only releases holds of dead processes.
   */
  onModuleInit(): void {
    const everyMs = Math.max(250, Math.floor((this.config.holdTtlSeconds * 1000) / 3));
    this.keepAliveTimer = setInterval(() => void this.keepHoldsAlive(), everyMs);
    this.keepAliveTimer.unref();
  }

  onModuleDestroy(): void {
    if (this.keepAliveTimer) clearInterval(this.keepAliveTimer);
    this.keepAliveTimer = null;
  }

  private async keepHoldsAlive(): Promise<void> {
    if (this.live.size === 0) return;
    try {
      await this.repo.extendHolds([...this.live], this.config.holdTtlSeconds);
    } catch (err) {
      this.logger.warn(`Could not extend the holds of ${this.live.size} requests in flight: ${(err as Error).message}`);
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
    const requestHash = createHash('sha256').update(JSON.stringify([dto.amount_micros, dto.reason ?? null])).digest('hex');
    const reference = `admin:${workspaceId}:${idempotencyKey ?? randomUUID()}`;
    const existing = idempotencyKey ? await this.findByReference(reference) : null;
    if (existing) return this.replay(existing, requestHash);
    try {
      const entry = await this.db.transaction(async (tx) => {
        // the bound is checked by the statement that moves the balance, under its row lock:
        // concurrent credits cannot jointly leave the range (CONTRACT §2)
        const rows = await rowsOf<{ balance_micros: string }>(
          tx,
          `UPDATE workspaces SET balance_micros = balance_micros + $2, updated_at = now()
            WHERE id = $1 AND balance_micros + $2 BETWEEN -$3::bigint AND $3::bigint AND balance_micros + $2 - held_micros >= -$3::bigint
            RETURNING balance_micros`,
          [workspaceId, dto.amount_micros, MAX_BALANCE_MICROS],
        );
        if (rows.length === 0) {
          const [found] = await rowsOf<{ balance_micros: string }>(tx, 'SELECT balance_micros FROM workspaces WHERE id = $1', [workspaceId]);
          if (!found) throw new NotFoundError(`Workspace '${workspaceId}' not found.`);
          throw new InvalidRequestError(
            `This ${dto.amount_micros > 0 ? 'credit' : 'correction'} would take the balance (${formatUsd(safeMicros(found.balance_micros))}) ` +
              `outside the supported range of ±${formatUsd(MAX_BALANCE_MICROS)}. Nothing was changed.`,
            'amount_micros',
          );
        }
        const inserted = await this.repo.insertLedger(tx, {
          workspaceId,
          kind: dto.amount_micros > 0 ? 'credit' : 'correction',
          amountMicros: dto.amount_micros,
          balanceAfterMicros: safeMicros(rows[0].balance_micros),
          reference,
          reason: dto.reason ?? null,
          requestHash,
        });
        return inserted.id;
      });
      return { entry: (await this.findById(entry))!, created: true };
    } catch (err) {
      // Two requests with one Idempotency-Key raced: the unique reference let one through.
      if ((err as { code?: string }).code === '23505' && idempotencyKey) {
        const winner = await this.findByReference(reference);
        if (winner) return this.replay(winner, requestHash);
      }
      throw err;
    }
  }

  private replay(existing: LedgerEntryDto & { request_hash: string | null }, requestHash: string): CreditResult {
    if (existing.request_hash !== requestHash) {
      throw new ConflictError('This Idempotency-Key was already used with a different request body.', 'idempotency_key_reused');
    }
    const { request_hash: _, ...entry } = existing;
    return { entry, created: false };
  }

  private async findByReference(reference: string): Promise<(LedgerEntryDto & { request_hash: string | null }) | null> {
    const rows = await this.db.query(`SELECT *, request_hash FROM ledger_entries WHERE reference = $1`, [reference]);
    return rows[0] ? { ...BillingService.entryDto(rows[0]), request_hash: rows[0].request_hash } : null;
  }

  private async findById(id: string): Promise<LedgerEntryDto | null> {
    const rows = await this.db.query(`SELECT * FROM ledger_entries WHERE id = $1`, [id]);
    return rows[0] ? BillingService.entryDto(rows[0]) : null;
  }

  async ledger(workspaceId: string, limit: number, cursor: string | undefined): Promise<LedgerPageDto> {
    const before = cursor === undefined ? null : decodeCursor(cursor);
    const rows = await this.db.query(
      `SELECT * FROM ledger_entries WHERE workspace_id = $1 AND ($2::bigint IS NULL OR id < $2) ORDER BY id DESC LIMIT $3`,
      [workspaceId, before, limit + 1],
    );
    const page = rows.slice(0, limit).map((r: LedgerRow) => BillingService.entryDto(r));
    return { data: page, next_cursor: rows.length > limit ? encodeCursor(page[page.length - 1].id) : null };
  }

  static entryDto(r: LedgerRow): LedgerEntryDto {
    return {
      id: String(r.id),
      workspace_id: r.workspace_id,
      kind: r.kind,
      amount_micros: safeMicros(r.amount_micros),
      balance_after_micros: safeMicros(r.balance_after_micros),
      reference: r.reference,
      key_id: r.key_id,
      reason: r.reason,
      created_at: new Date(r.created_at).toISOString(),
    };
  }
}

interface LedgerRow {
  id: string;
  workspace_id: string;
  kind: string;
  amount_micros: string;
  balance_after_micros: string;
  reference: string;
  key_id: string | null;
  reason: string | null;
  created_at: Date;
}

export function encodeCursor(id: string): string {
  return Buffer.from(`id:${id}`).toString('base64url');
}

export function decodeCursor(cursor: string): string {
  const decoded = Buffer.from(cursor, 'base64url').toString('utf8');
  const match = /^id:(\d{1,18})$/.exec(decoded); // 18 digits always fit a bigint
  if (!match) throw new InvalidRequestError('cursor is not valid: pass the next_cursor of a previous page.', 'cursor');
  return match[1];
}
