import { Inject, Injectable } from '@nestjs/common';
import { InjectRepository } from '@nestjs/typeorm';
import type { Pool } from 'pg';
import { Repository } from 'typeorm';
import { PG_POOL } from '../database/pg-pool.provider';
import { HoldEntity } from './hold.entity';
import type { Settlement, SettleResult } from './settlement/settlement.types';

export type PlaceHoldResult =
  | { outcome: 'held' }
  | { outcome: 'insufficient_balance'; availableMicros: number }
  | { outcome: 'insufficient_budget'; availableMicros: number; keyRemainingMicros: number };

export interface ExpiredHold {
  requestId: string;
  workspaceId: string;
  keyId: string;
  model: string;
  createdAt: Date;
}

/** Open holds by whether they have expired: how many, and how much money they keep. */
export interface OpenHoldTotals {
  expired: boolean;
  holds: number;
  micros: number;
}

const SETTLE_SQL =
  'SELECT * FROM nexo_settle($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, to_timestamp($14 / 1000.0), $15::integer)';

function settleParams(s: Settlement): unknown[] {
  return [
    s.requestId,
    s.workspaceId,
    s.keyId,
    s.model,
    s.provider,
    s.promptTokens,
    s.completionTokens,
    s.costMicros,
    s.usageSource,
    s.status,
    s.errorCode,
    s.latencyMs,
    s.stream,
    s.createdAt,
    s.attempts ?? null,
  ];
}

/** One result per request: a request twice in one batch was charged by its first row, the second found nothing to do. */
function collect(rows: Array<{ request_id: string; applied: boolean; charged: string }>): Map<string, SettleResult> {
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

/**
 * Holds, from placement to settlement: the money-moving SQL of the hot path. Each method is
 * one transaction; the three hot statements (nexo_place_hold, nexo_settle, nexo_settle_many)
 * go through their own pg pool, the rest through TypeORM.
 */
@Injectable()
export class HoldRepository {
  constructor(
    @Inject(PG_POOL) private readonly pool: Pool,
    @InjectRepository(HoldEntity) private readonly holds: Repository<HoldEntity>,
  ) {}

  /** One round trip: reserve `amount` against the balance and the key budget, or say why not. */
  async placeHold(
    requestId: string,
    workspaceId: string,
    keyId: string,
    model: string,
    amount: number,
    ttlSeconds: number,
  ): Promise<PlaceHoldResult> {
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
    if (s.leaseId) return (await this.settleLeased([s])).get(s.requestId)!;
    const { rows } = await this.pool.query<{ applied: boolean; charged: string }>({
      name: 'nexo_settle',
      text: SETTLE_SQL,
      values: settleParams(s),
    });
    return { applied: rows[0].applied, chargedMicros: Number(rows[0].charged) };
  }

  /**
   * Settles many requests: those held against leases in one transaction (nexo_settle_leased,
   * one statement per table), the others in another (nexo_settle_many, sorted by workspace then
   * key, the same order every batch locks rows in).
   */
  async settleMany(items: Settlement[]): Promise<Map<string, SettleResult>> {
    const leased = items.filter((s) => s.leaseId);
    if (leased.length === 0) return this.settleHeld(items);
    if (leased.length === items.length) return this.settleLeased(items);
    const [a, b] = await Promise.all([this.settleLeased(leased), this.settleHeld(items.filter((s) => !s.leaseId))]);
    return new Map([...a, ...b]);
  }

  private async settleLeased(items: Settlement[]): Promise<Map<string, SettleResult>> {
    const { rows } = await this.pool.query<{ request_id: string; applied: boolean; charged: string }>(
      'SELECT * FROM nexo_settle_leased($1::jsonb)',
      [JSON.stringify(items)],
    );
    return collect(rows);
  }

  private async settleHeld(items: Settlement[]): Promise<Map<string, SettleResult>> {
    const sorted = [...items].sort(
      (a, b) => a.workspaceId.localeCompare(b.workspaceId) || a.keyId.localeCompare(b.keyId) || a.requestId.localeCompare(b.requestId),
    );
    const { rows } = await this.pool.query<{ request_id: string; applied: boolean; charged: string }>(
      'SELECT * FROM nexo_settle_many($1::jsonb)',
      [JSON.stringify(sorted)],
    );
    return collect(rows);
  }

  /**
   * The sweeper's release: settles `s` only if its hold is still expired, checked under the
   * hold's row lock, so a hold extended meanwhile by its live process is left alone.
   */
  async settleIfExpired(s: Settlement): Promise<boolean> {
    return this.holds.manager.transaction(async (tx) => {
      // SKIP LOCKED: a hold being settled or renewed right now is not the sweeper's
      const expired: unknown[] = await tx.query('SELECT 1 FROM holds WHERE request_id = $1 AND expires_at < now() FOR UPDATE SKIP LOCKED', [
        s.requestId,
      ]);
      if (expired.length === 0) return false;
      await tx.query(SETTLE_SQL, settleParams(s));
      return true;
    });
  }

  /** Pushes back the expiry of holds whose requests are still in flight in this process. */
  async extendHolds(requestIds: string[], ttlSeconds: number): Promise<void> {
    // SKIP LOCKED: a hold locked by a settlement is going away; waiting for it could deadlock
    // with a settlement batch that locks holds and workspaces in its own order
    await this.holds.query(
      `UPDATE holds SET expires_at = now() + make_interval(secs => $2)
        WHERE request_id IN (SELECT request_id FROM holds WHERE request_id = ANY($1) FOR UPDATE SKIP LOCKED)`,
      [requestIds, ttlSeconds],
    );
  }

  /** Expired holds (by the database's clock), oldest expiry first, for the sweeper. */
  async expiredHolds(limit: number): Promise<ExpiredHold[]> {
    const holds = await this.holds
      .createQueryBuilder('h')
      .where('h.expiresAt < now()')
      .orderBy('h.expiresAt', 'ASC')
      .limit(limit)
      .getMany();
    return holds.map((h) => ({
      requestId: h.requestId,
      workspaceId: h.workspaceId,
      keyId: h.keyId,
      model: h.model,
      createdAt: h.createdAt,
    }));
  }

  /** Open holds, expired and not, for the metrics. */
  async openHoldTotals(): Promise<OpenHoldTotals[]> {
    const rows: Array<{ expired: boolean; holds: number; micros: string }> = await this.holds.query(
      `SELECT expires_at < now() AS expired, count(*)::int AS holds, COALESCE(sum(amount_micros), 0) AS micros FROM holds GROUP BY 1`,
    );
    return rows.map((r) => ({ expired: r.expired, holds: r.holds, micros: Number(r.micros) }));
  }
}
