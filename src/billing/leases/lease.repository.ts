import { Inject, Injectable } from '@nestjs/common';
import type { Pool } from 'pg';
import { PG_POOL } from '../../database/pg-pool.provider';

export interface LeaseGrant {
  /** null: no lease (nothing granted, or the lease given is no longer open). */
  leaseId: string | null;
  granted: number;
  /** The lease's amount after the grant. */
  amountMicros: number;
}

export interface LeaseStatus {
  leaseId: string;
  state: 'open' | 'returned' | 'closed';
  recall: boolean;
  amountMicros: number;
}

/** A request held against a lease and not yet handed to settlement, for its trace. */
export interface LeaseTrace {
  requestId: string;
  keyId: string;
  model: string;
  /** ms since epoch when it was held. */
  createdAt: number;
}

/** The traces of one lease written together. */
export interface LeaseTraceGroup {
  leaseId: string;
  workspaceId: string;
  requests: LeaseTrace[];
}

export interface DeadLease {
  leaseId: string;
  workspaceId: string;
}

export interface TracedRequest {
  requestId: string;
  workspaceId: string;
  keyId: string;
  model: string;
  createdAt: Date;
}

/** Escrow leases: the SQL of their life (migration 1764500000000), through the money statements' pool. */
@Injectable()
export class LeaseRepository {
  constructor(@Inject(PG_POOL) private readonly pool: Pool) {}

  async take(leaseId: string | null, workspaceId: string, owner: string, want: number, min: number, ttlMs: number): Promise<LeaseGrant> {
    const { rows } = await this.pool.query<{ lease_id: string | null; granted: string; amount: string }>({
      name: 'nexo_lease_take',
      text: 'SELECT * FROM nexo_lease_take($1, $2, $3, $4, $5, $6)',
      values: [leaseId, workspaceId, owner, want, min, ttlMs],
    });
    const row = rows[0];
    return { leaseId: row.lease_id, granted: Number(row.granted), amountMicros: Number(row.amount) };
  }

  async renew(owner: string, leases: Array<{ leaseId: string; inUseMicros: number }>, ttlMs: number): Promise<LeaseStatus[]> {
    const { rows } = await this.pool.query<{ lease_id: string; state: LeaseStatus['state']; recall: boolean; amount: string }>({
      name: 'nexo_lease_renew',
      text: 'SELECT * FROM nexo_lease_renew($1, $2::uuid[], $3::bigint[], $4)',
      values: [owner, leases.map((l) => l.leaseId), leases.map((l) => l.inUseMicros), ttlMs],
    });
    return rows.map((r) => ({ leaseId: r.lease_id, state: r.state, recall: r.recall, amountMicros: Number(r.amount) }));
  }

  /** Gives back the lease's free part; what went back. */
  async giveBack(leaseId: string, owner: string, freeMicros: number): Promise<number> {
    const { rows } = await this.pool.query<{ back: string }>('SELECT nexo_lease_return($1, $2, $3) AS back', [leaseId, owner, freeMicros]);
    return Number(rows[0].back);
  }

  /** Asks the other processes' open leases on the workspace back; how many were asked. */
  async recallOthers(workspaceId: string, owner: string): Promise<number> {
    const { rows } = await this.pool.query<{ asked: number }>('SELECT nexo_lease_recall($1, $2) AS asked', [workspaceId, owner]);
    return rows[0].asked;
  }

  /** Open leases of other processes on the workspace (those still to answer a recall). */
  async othersOpen(workspaceId: string, owner: string): Promise<number> {
    const { rows } = await this.pool.query<{ n: number }>(
      `SELECT count(*)::int AS n FROM leases WHERE workspace_id = $1 AND state = 'open' AND owner <> $2`,
      [workspaceId, owner],
    );
    return rows[0].n;
  }

  /**
   * Writes groups of traces (none, to only forget), and deletes the rows in `forget` (groups whose
   * requests were all handed to settlement since), in one statement: one transaction per flush.
   * The id of each written group's row, in order.
   */
  async trace(groups: LeaseTraceGroup[], forget: string[] = []): Promise<string[]> {
    const { rows } = await this.pool.query<{ id: string }>(
      `WITH forgotten AS (DELETE FROM lease_traces WHERE id = ANY($4::bigint[]))
       INSERT INTO lease_traces (lease_id, workspace_id, requests)
       SELECT g.l, g.w, g.r FROM unnest($1::uuid[], $2::uuid[], $3::jsonb[]) WITH ORDINALITY AS g(l, w, r, n) ORDER BY g.n
       RETURNING id`,
      [
        groups.map((g) => g.leaseId),
        groups.map((g) => g.workspaceId),
        groups.map((g) => JSON.stringify(g.requests.map((t) => ({ r: t.requestId, k: t.keyId, m: t.model, c: t.createdAt })))),
        forget,
      ],
    );
    return rows.map((r) => String(r.id));
  }

  /** Leases whose owner stopped renewing them more than `graceSeconds` ago. */
  async dead(graceSeconds: number, limit: number): Promise<DeadLease[]> {
    const { rows } = await this.pool.query<{ id: string; workspace_id: string }>(
      `SELECT id, workspace_id FROM leases WHERE state <> 'closed' AND expires_at < now() - make_interval(secs => $1)
        ORDER BY expires_at LIMIT $2`,
      [graceSeconds, limit],
    );
    return rows.map((r) => ({ leaseId: r.id, workspaceId: r.workspace_id }));
  }

  /** Closes a dead lease (re-checked under its lock); what it released, or null when it is not dead any more. */
  async close(leaseId: string, graceSeconds: number): Promise<number | null> {
    const { rows } = await this.pool.query<{ released: string | null }>('SELECT nexo_lease_close($1, $2) AS released', [
      leaseId,
      graceSeconds,
    ]);
    return rows[0].released === null ? null : Number(rows[0].released);
  }

  /** The traced requests of a closed lease that have no usage log (their process died with them). */
  async unsettledTraces(leaseId: string): Promise<TracedRequest[]> {
    const { rows } = await this.pool.query<{ request_id: string; workspace_id: string; key_id: string; model: string; created_ms: string }>(
      `SELECT DISTINCT ON (r->>'r') r->>'r' AS request_id, t.workspace_id, r->>'k' AS key_id, r->>'m' AS model, r->>'c' AS created_ms
         FROM lease_traces t, jsonb_array_elements(t.requests) r
        WHERE t.lease_id = $1 AND NOT EXISTS (SELECT 1 FROM usage_logs u WHERE u.request_id = r->>'r')`,
      [leaseId],
    );
    return rows.map((r) => ({
      requestId: r.request_id,
      workspaceId: r.workspace_id,
      keyId: r.key_id,
      model: r.model,
      createdAt: new Date(Number(r.created_ms)),
    }));
  }

  /** Forgets the traces of a closed lease, once the sweeper dealt with them. */
  async forgetLeaseTraces(leaseId: string): Promise<void> {
    await this.pool.query('DELETE FROM lease_traces WHERE lease_id = $1', [leaseId]);
  }
}
