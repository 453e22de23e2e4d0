import { Injectable } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { DataSource, EntityManager } from 'typeorm';
import { rowsOf } from '../database/sql';
import type { UsageSource } from '../usage/usage-log.entity';

export type HoldOutcome =
  | { outcome: 'held' }
  | { outcome: 'insufficient_balance'; availableMicros: number }
  | { outcome: 'insufficient_budget'; availableMicros: number; keyRemainingMicros: number };

/** What a finished request reports for settlement; ids and numbers only, never prompts or keys. */
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
  status: number;
  errorCode: string | null;
  latencyMs: number;
  stream: boolean;
  /** ms since epoch when the request arrived. */
  createdAt: number;
}

export interface ExpiredHold {
  requestId: string;
  workspaceId: string;
  keyId: string;
  model: string;
  createdAt: Date;
}

export interface SettleResult {
  /** false when this request had been settled before (nothing changed). */
  applied: boolean;
  chargedMicros: number;
}

/** The money-moving SQL: holds, settlements, ledger writes. Each method is one transaction. */
@Injectable()
export class BillingRepository {
  constructor(@InjectDataSource() private readonly db: DataSource) {}

  /** One round trip: reserve `amount` against the balance and the key budget, or say why not. */
  async placeHold(
    requestId: string,
    workspaceId: string,
    keyId: string,
    model: string,
    amount: number,
    ttlSeconds: number,
  ): Promise<HoldOutcome> {
    const rows: Array<{ outcome: string; workspace_available: string | null; key_remaining: string | null }> = await this.db.query(
      'SELECT * FROM nexo_place_hold($1, $2, $3, $4, $5, $6)',
      [requestId, workspaceId, keyId, amount, ttlSeconds, model],
    );
    const row = rows[0];
    if (row.outcome === 'held') return { outcome: 'held' };
    const availableMicros = Number(row.workspace_available ?? 0);
    if (row.outcome === 'insufficient_balance') return { outcome: 'insufficient_balance', availableMicros };
    return { outcome: 'insufficient_budget', availableMicros, keyRemainingMicros: Number(row.key_remaining ?? 0) };
  }

  /**
   * Turns the hold into the actual charge and writes the usage log, in one transaction.
   * Idempotent: the hold row is deleted under lock, so a second settlement finds nothing to
   * charge; the usage log's unique request id keeps one record.
   */
  async settle(s: Settlement): Promise<SettleResult> {
    return this.db.transaction('READ COMMITTED', async (tx) => {
      const held = await rowsOf<{ amount_micros: string }>(tx, 'DELETE FROM holds WHERE request_id = $1 RETURNING amount_micros', [
        s.requestId,
      ]);
      let charged = 0;
      if (held.length > 0) {
        const hold = Number(held[0].amount_micros);
        charged = Math.min(Math.max(0, s.costMicros), hold);
        const [ws] = await rowsOf<{ balance_micros: string }>(
          tx,
          `UPDATE workspaces SET balance_micros = balance_micros - $2, held_micros = held_micros - $3, updated_at = now()
            WHERE id = $1 RETURNING balance_micros`,
          [s.workspaceId, charged, hold],
        );
        await tx.query(
          `UPDATE api_keys SET spent_micros = spent_micros + $2, held_micros = held_micros - $3 WHERE id = $1`,
          [s.keyId, charged, hold],
        );
        if (charged > 0) {
          await this.insertLedger(tx, {
            workspaceId: s.workspaceId,
            kind: 'charge',
            amountMicros: -charged,
            balanceAfterMicros: Number(ws.balance_micros),
            reference: `req:${s.requestId}`,
            keyId: s.keyId,
            reason: `${s.model}: ${s.promptTokens} prompt + ${s.completionTokens} completion tokens`,
          });
        }
      }
      const inserted = await rowsOf(
        tx,
        `INSERT INTO usage_logs (request_id, workspace_id, key_id, model, provider, prompt_tokens, completion_tokens, cost_micros,
                                 status, error_code, latency_ms, stream, usage_source, created_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, to_timestamp($14 / 1000.0))
         ON CONFLICT (request_id) DO NOTHING RETURNING id`,
        [
          s.requestId, s.workspaceId, s.keyId, s.model, s.provider, s.promptTokens, s.completionTokens, charged,
          s.status, s.errorCode, s.latencyMs, s.stream, s.usageSource, s.createdAt,
        ],
      );
      return { applied: held.length > 0 || inserted.length > 0, chargedMicros: charged };
    });
  }

  async insertLedger(
    tx: EntityManager,
    e: {
      workspaceId: string;
      kind: string;
      amountMicros: number;
      balanceAfterMicros: number;
      reference: string;
      keyId?: string | null;
      reason?: string | null;
      requestHash?: string | null;
    },
  ): Promise<{ id: string; created_at: Date }> {
    const [row] = await rowsOf<{ id: string; created_at: Date }>(
      tx,
      `INSERT INTO ledger_entries (workspace_id, kind, amount_micros, balance_after_micros, reference, key_id, reason, request_hash)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING id, created_at`,
      [e.workspaceId, e.kind, e.amountMicros, e.balanceAfterMicros, e.reference, e.keyId ?? null, e.reason ?? null, e.requestHash ?? null],
    );
    return row;
  }

  /** Expired holds, oldest first, for the sweeper. */
  async expiredHolds(limit: number): Promise<ExpiredHold[]> {
    const rows: Array<{ request_id: string; workspace_id: string; key_id: string; model: string; created_at: Date }> = await this.db.query(
      'SELECT request_id, workspace_id, key_id, model, created_at FROM holds WHERE expires_at < now() ORDER BY expires_at LIMIT $1',
      [limit],
    );
    return rows.map((r) => ({ requestId: r.request_id, workspaceId: r.workspace_id, keyId: r.key_id, model: r.model, createdAt: r.created_at }));
  }
}
