import { Injectable } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import type { Pool } from 'pg';
import { DataSource, EntityManager } from 'typeorm';
import type { PostgresDriver } from 'typeorm/driver/postgres/PostgresDriver';
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
  /** The HTTP status answered; null only when the sweeper cannot know it (`outcome_unknown`). */
  status: number | null;
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

const SETTLE_SQL =
  'SELECT * FROM nexo_settle($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, to_timestamp($14 / 1000.0))';

interface SettleRow {
  applied: boolean;
  charged: string;
}

function settleParams(s: Settlement): unknown[] {
  return [
    s.requestId, s.workspaceId, s.keyId, s.model, s.provider, s.promptTokens, s.completionTokens, s.costMicros,
    s.usageSource, s.status, s.errorCode, s.latencyMs, s.stream, s.createdAt,
  ];
}

/** The money-moving SQL: holds, settlements, ledger writes. Each method is one transaction. */
@Injectable()
export class BillingRepository {
  /** The driver's pg pool: the two hot statements skip TypeORM's query wrapper. */
  private readonly pool: Pool;

  constructor(@InjectDataSource() private readonly db: DataSource) {
    this.pool = (db.driver as PostgresDriver).master as Pool;
  }

  /** One round trip: reserve `amount` against the balance and the key budget, or say why not. */
  async placeHold(
    requestId: string,
    workspaceId: string,
    keyId: string,
    model: string,
    amount: number,
    ttlSeconds: number,
  ): Promise<HoldOutcome> {
    // named: each pooled connection parses and plans it once
    const { rows } = await this.pool.query<{ outcome: string; workspace_available: string | null; key_remaining: string | null }>({
      name: 'nexo_place_hold',
      text: 'SELECT * FROM nexo_place_hold($1, $2, $3, $4, $5, $6)',
      values: [requestId, workspaceId, keyId, amount, ttlSeconds, model],
    });
    const row = rows[0];
    if (row.outcome === 'held') return { outcome: 'held' };
    const availableMicros = Number(row.workspace_available ?? 0);
    if (row.outcome === 'insufficient_balance') return { outcome: 'insufficient_balance', availableMicros };
    return { outcome: 'insufficient_budget', availableMicros, keyRemainingMicros: Number(row.key_remaining ?? 0) };
  }

  /**
   * Turns the hold into the actual charge (capped at the hold) and writes the usage log, in
   * one round trip (nexo_settle). Idempotent: the hold row is deleted under lock, so a second
   * settlement finds nothing to charge; the usage log's unique request id keeps one record.
   */
  async settle(s: Settlement): Promise<SettleResult> {
    const { rows } = await this.pool.query<SettleRow>({ name: 'nexo_settle', text: SETTLE_SQL, values: settleParams(s) });
    return { applied: rows[0].applied, chargedMicros: Number(rows[0].charged) };
  }

  /**
   * The sweeper's release: settles `s` only if its hold is still expired, checked under the
   * hold's row lock, so a hold extended meanwhile by its live process is left alone.
   */
  async settleIfExpired(s: Settlement): Promise<boolean> {
    return this.db.transaction(async (tx) => {
      // SKIP LOCKED: a hold being settled or renewed right now is not the sweeper's
      const expired = await tx.query('SELECT 1 FROM holds WHERE request_id = $1 AND expires_at < now() FOR UPDATE SKIP LOCKED', [
        s.requestId,
      ]);
      if (expired.length === 0) return false;
      await tx.query(SETTLE_SQL, settleParams(s));
      return true;
    });
  }


  /**
   * Settles many requests in one transaction (nexo_settle_many). Sorted by workspace then
   * key, the same order every batch locks rows in.
   */
  async settleMany(items: Settlement[]): Promise<Map<string, SettleResult>> {
    const sorted = [...items].sort(
      (a, b) => a.workspaceId.localeCompare(b.workspaceId) || a.keyId.localeCompare(b.keyId) || a.requestId.localeCompare(b.requestId),
    );
    const { rows } = await this.pool.query<{ request_id: string; applied: boolean; charged: string }>(
      'SELECT * FROM nexo_settle_many($1::jsonb)',
      [JSON.stringify(sorted)],
    );
    // a request twice in one batch: the first row charged it, the second found nothing to do
    const results = new Map<string, SettleResult>();
    for (const r of rows) {
      const earlier = results.get(r.request_id);
      results.set(r.request_id, {
        applied: r.applied || (earlier?.applied ?? false),
        chargedMicros: Number(r.charged) + (earlier?.chargedMicros ?? 0),
      });
    }
    return results;
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

  /** Pushes back the expiry of holds whose requests are still in flight in this process. */
  async extendHolds(requestIds: string[], ttlSeconds: number): Promise<void> {
    // SKIP LOCKED: a hold locked by a settlement is going away; waiting for it could deadlock
    // with a settlement batch that locks holds and workspaces in its own order
    await this.db.query(
      `UPDATE holds SET expires_at = now() + make_interval(secs => $2)
        WHERE request_id IN (SELECT request_id FROM holds WHERE request_id = ANY($1) FOR UPDATE SKIP LOCKED)`,
      [requestIds, ttlSeconds],
    );
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
