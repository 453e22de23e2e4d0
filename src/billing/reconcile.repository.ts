import type { DataSource, EntityManager } from 'typeorm';

export interface Drift {
  kind: 'workspace_balance' | 'workspace_held' | 'key_spent' | 'key_held' | 'usage_vs_ledger' | 'usage_daily_requests' | 'usage_daily_cost';
  id: string;
  expected: number;
  actual: number;
}

/**
 * The books checked against themselves: cached balances, holds and key spend recomputed from
 * the ledger and the open holds. Used by `npm run reconcile` and the tests, outside Nest.
 */
export class ReconcileRepository {
  constructor(private readonly db: DataSource) {}

  /**
   * Every drift between cached figures and the ledger; an empty list means none. One
   * REPEATABLE READ snapshot: money moving meanwhile (a settlement, a lease) is seen on both
   * sides of every comparison or on neither.
   */
  drifts(): Promise<Drift[]> {
    return this.db.transaction('REPEATABLE READ', (tx) => this.driftsIn(tx));
  }

  private async driftsIn(tx: EntityManager): Promise<Drift[]> {
    const drifts: Drift[] = [];
    const add = (kind: Drift['kind'], rows: Array<{ id: string; expected: string; actual: string }>) => {
      for (const r of rows) drifts.push({ kind, id: r.id, expected: Number(r.expected), actual: Number(r.actual) });
    };
    add(
      'workspace_balance',
      await tx.query(`
        SELECT w.id, COALESCE(SUM(l.amount_micros), 0) AS expected, w.balance_micros AS actual
          FROM workspaces w LEFT JOIN ledger_entries l ON l.workspace_id = w.id
         GROUP BY w.id HAVING COALESCE(SUM(l.amount_micros), 0) <> w.balance_micros`),
    );
    add(
      'workspace_held',
      await tx.query(`
        SELECT w.id, x.expected, w.held_micros AS actual
          FROM workspaces w,
               LATERAL (SELECT COALESCE((SELECT SUM(amount_micros) FROM holds WHERE workspace_id = w.id), 0)
                             + COALESCE((SELECT SUM(amount_micros) FROM leases WHERE workspace_id = w.id AND state <> 'closed'), 0) AS expected) x
         WHERE x.expected <> w.held_micros`),
    );
    add(
      'key_spent',
      await tx.query(`
        SELECT k.id, COALESCE(-SUM(l.amount_micros), 0) AS expected, k.spent_micros AS actual
          FROM api_keys k LEFT JOIN ledger_entries l ON l.key_id = k.id AND l.kind = 'charge'
         GROUP BY k.id HAVING COALESCE(-SUM(l.amount_micros), 0) <> k.spent_micros`),
    );
    add(
      'key_held',
      await tx.query(`
        SELECT k.id, COALESCE(SUM(h.amount_micros), 0) AS expected, k.held_micros AS actual
          FROM api_keys k LEFT JOIN holds h ON h.key_id = k.id
         GROUP BY k.id HAVING COALESCE(SUM(h.amount_micros), 0) <> k.held_micros`),
    );
    // charges against the usage logs' costs; for the months USAGE_LOG_RETENTION_DAYS dropped
    // (before usage_log_retention.dropped_before, a UTC month start), the daily totals of those
    // days, which are never dropped (and were checked against the logs while they existed)
    const logged = `
      COALESCE((SELECT SUM(cost_micros) FROM usage_logs
                 WHERE workspace_id = w.id AND created_at >= COALESCE((SELECT dropped_before FROM usage_log_retention), '-infinity')), 0)
      + COALESCE((SELECT SUM(cost_micros) FROM usage_daily
                   WHERE workspace_id = w.id AND day < ((SELECT dropped_before FROM usage_log_retention) AT TIME ZONE 'UTC')::date), 0)`;
    add(
      'usage_vs_ledger',
      await tx.query(`
        SELECT w.id,
               COALESCE((SELECT -SUM(amount_micros) FROM ledger_entries WHERE workspace_id = w.id AND kind = 'charge'), 0) AS expected,
               ${logged} AS actual
          FROM workspaces w
         WHERE COALESCE((SELECT -SUM(amount_micros) FROM ledger_entries WHERE workspace_id = w.id AND kind = 'charge'), 0)
            <> ${logged}`),
    );
    // the dashboard's daily totals (kept by nexo_settle) against the logs they sum, per
    // workspace, UTC day, key and model; the id names the group. Only from the UTC month start
    // before which USAGE_LOG_RETENTION_DAYS dropped the logs (usage_log_retention), if it did.
    const daily: Array<{ id: string; log_requests: string; daily_requests: string; log_cost: string; daily_cost: string }> =
      await tx.query(`
        SELECT concat_ws('/', COALESCE(l.workspace_id, d.workspace_id), COALESCE(l.day, d.day), COALESCE(l.key_id, d.key_id),
                         COALESCE(l.model, d.model)) AS id,
               COALESCE(l.requests, 0) AS log_requests, COALESCE(d.requests, 0) AS daily_requests,
               COALESCE(l.cost, 0) AS log_cost, COALESCE(d.cost_micros, 0) AS daily_cost
          FROM (SELECT workspace_id, (created_at AT TIME ZONE 'UTC')::date AS day, key_id, model,
                       count(*) AS requests, SUM(cost_micros) AS cost
                  FROM usage_logs
                 WHERE created_at >= COALESCE((SELECT dropped_before FROM usage_log_retention), '-infinity')
                 GROUP BY 1, 2, 3, 4) l
          FULL JOIN (SELECT * FROM usage_daily
                      WHERE day >= COALESCE(((SELECT dropped_before FROM usage_log_retention) AT TIME ZONE 'UTC')::date, '-infinity')) d
            ON d.workspace_id = l.workspace_id AND d.day = l.day AND d.key_id = l.key_id AND d.model = l.model
         WHERE COALESCE(l.requests, 0) <> COALESCE(d.requests, 0) OR COALESCE(l.cost, 0) <> COALESCE(d.cost_micros, 0)`);
    for (const r of daily) {
      if (r.log_requests !== r.daily_requests) {
        drifts.push({ kind: 'usage_daily_requests', id: r.id, expected: Number(r.log_requests), actual: Number(r.daily_requests) });
      }
      if (r.log_cost !== r.daily_cost) {
        drifts.push({ kind: 'usage_daily_cost', id: r.id, expected: Number(r.log_cost), actual: Number(r.daily_cost) });
      }
    }
    return drifts;
  }

  /**
   * Requests whose hold expired with no settlement (their process died, or Redis lost the job):
   * released at no charge and logged `outcome_unknown`. Not a drift (the books balance), but
   * revenue the operator may want to look at.
   */
  async unknownOutcomes(): Promise<{ requests: number; workspaces: number }> {
    const [row]: Array<{ requests: number; workspaces: number }> = await this.db.query(
      `SELECT count(*)::int AS requests, count(DISTINCT workspace_id)::int AS workspaces
         FROM usage_logs WHERE error_code = 'outcome_unknown'`,
    );
    return { requests: row.requests, workspaces: row.workspaces };
  }

  /**
   * Escrow leases: how many are live and what they hold (counted in held_micros above), and what
   * settlements could not charge because a dead process's lease was closed before they arrived.
   */
  async leases(): Promise<{ live: number; heldMicros: number; shortfallMicros: number }> {
    const [row]: Array<{ live: number; held: string; shortfall: string }> = await this.db.query(
      `SELECT count(*) FILTER (WHERE state <> 'closed')::int AS live, COALESCE(SUM(amount_micros), 0) AS held,
              COALESCE(SUM(shortfall_micros), 0) AS shortfall FROM leases`,
    );
    return { live: row.live, heldMicros: Number(row.held), shortfallMicros: Number(row.shortfall) };
  }

  async workspaceCount(): Promise<number> {
    const [row]: Array<{ workspaces: number }> = await this.db.query('SELECT count(*)::int AS workspaces FROM workspaces');
    return row.workspaces;
  }
}
