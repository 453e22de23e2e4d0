import { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * What the customer's dashboard reads, kept by the money functions themselves:
 *
 * - Key budgets with an optional reset period (`daily`, `weekly` from Monday, `monthly`; UTC).
 *   The spend counted against such a budget is `period_spent_micros` while `period_start` is
 *   the current period's start, and 0 once it is older: computed from now() under the key's
 *   row lock by nexo_place_hold and nexo_settle (which also stores the reset), so no cron races
 *   a request. `spent_micros` stays the lifetime spend (reconcile compares it with the ledger).
 *   A settlement's charge counts in the period of its ledger entry (both use the transaction's
 *   now()), so a period's spend is always the sum of the key's charges since `period_start`.
 * - `last_used_at`, moved by the settlement (never an extra write on the request path).
 * - `usage_daily`: per workspace, UTC day (of the log's created_at), key and model, the sums of
 *   the usage logs, upserted by nexo_settle in the transaction that inserts the log, only when
 *   it does (a repeated settlement inserts no log and counts nothing). Existing logs are
 *   backfilled here.
 */
export class DashboardUsage1764300000100 implements MigrationInterface {
  name = 'DashboardUsage1764300000100';

  async up(q: QueryRunner): Promise<void> {
    // no usage log may be written (by a process still running the old functions) between the
    // backfill and the new nexo_settle: they would be missing from usage_daily
    await q.query(`LOCK TABLE usage_logs IN SHARE ROW EXCLUSIVE MODE`);
    await q.query(`
      ALTER TABLE api_keys
        ADD COLUMN budget_period text CHECK (budget_period IN ('daily', 'weekly', 'monthly')),
        ADD COLUMN period_spent_micros bigint NOT NULL DEFAULT 0 CHECK (period_spent_micros >= 0),
        ADD COLUMN period_start timestamptz,
        ADD COLUMN last_used_at timestamptz`);
    await q.query(`
      CREATE TABLE usage_daily (
        workspace_id uuid NOT NULL REFERENCES workspaces(id) ON DELETE CASCADE,
        day date NOT NULL,
        key_id uuid NOT NULL REFERENCES api_keys(id) ON DELETE CASCADE,
        model text NOT NULL,
        requests bigint NOT NULL DEFAULT 0 CHECK (requests >= 0),
        prompt_tokens bigint NOT NULL DEFAULT 0 CHECK (prompt_tokens >= 0),
        completion_tokens bigint NOT NULL DEFAULT 0 CHECK (completion_tokens >= 0),
        cost_micros bigint NOT NULL DEFAULT 0 CHECK (cost_micros >= 0),
        PRIMARY KEY (workspace_id, day, key_id, model)
      )`);
    await q.query(`CREATE INDEX usage_daily_key_idx ON usage_daily (key_id)`);
    await q.query(`
      INSERT INTO usage_daily (workspace_id, day, key_id, model, requests, prompt_tokens, completion_tokens, cost_micros)
      SELECT workspace_id, (created_at AT TIME ZONE 'UTC')::date, key_id, model,
             count(*), sum(prompt_tokens), sum(completion_tokens), sum(cost_micros)
        FROM usage_logs GROUP BY 1, 2, 3, 4`);

    // The start (UTC) of the budget period holding `p_at`; weeks start on Monday.
    await q.query(`
      CREATE FUNCTION nexo_period_start(p_period text, p_at timestamptz) RETURNS timestamptz
      LANGUAGE sql IMMUTABLE AS $$
        SELECT CASE p_period
          WHEN 'daily' THEN date_trunc('day', p_at AT TIME ZONE 'UTC') AT TIME ZONE 'UTC'
          WHEN 'weekly' THEN date_trunc('week', p_at AT TIME ZONE 'UTC') AT TIME ZONE 'UTC'
          WHEN 'monthly' THEN date_trunc('month', p_at AT TIME ZONE 'UTC') AT TIME ZONE 'UTC'
        END
      $$`);
    // What a key has spent against its budget now: the lifetime spend without a period; the
    // current period's spend with one (0 once the stored period is over).
    await q.query(`
      CREATE FUNCTION nexo_budget_spent(p_period text, p_period_start timestamptz, p_period_spent bigint, p_spent bigint)
      RETURNS bigint LANGUAGE sql STABLE AS $$
        SELECT CASE
          WHEN p_period IS NULL THEN p_spent
          WHEN p_period_start >= nexo_period_start(p_period, now()) THEN p_period_spent
          ELSE 0
        END
      $$`);

    await q.query(PLACE_HOLD_V2);
    await q.query(SETTLE_V2);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(PLACE_HOLD_V1);
    await q.query(SETTLE_V1);
    await q.query(`DROP FUNCTION IF EXISTS nexo_budget_spent(text, timestamptz, bigint, bigint)`);
    await q.query(`DROP FUNCTION IF EXISTS nexo_period_start(text, timestamptz)`);
    await q.query(`DROP TABLE IF EXISTS usage_daily`);
    await q.query(`
      ALTER TABLE api_keys
        DROP COLUMN IF EXISTS last_used_at,
        DROP COLUMN IF EXISTS period_start,
        DROP COLUMN IF EXISTS period_spent_micros,
        DROP COLUMN IF EXISTS budget_period`);
  }
}

// Same signature and lock order as before (workspace, then key); the key's remaining budget is
// its budget minus what it spent in the current period (or ever, without a period) minus holds.
const PLACE_HOLD_V2 = `
  CREATE OR REPLACE FUNCTION nexo_place_hold(p_request_id text, p_workspace_id uuid, p_key_id uuid, p_amount bigint, p_ttl_seconds integer, p_model text)
  RETURNS TABLE (outcome text, workspace_available bigint, key_remaining bigint)
  LANGUAGE plpgsql AS $$
  DECLARE
    v_available bigint;
    v_remaining bigint;
  BEGIN
    PERFORM set_config('synchronous_commit', 'off', true);
    UPDATE workspaces SET held_micros = held_micros + p_amount
      WHERE id = p_workspace_id AND balance_micros - held_micros >= p_amount
      RETURNING balance_micros - held_micros INTO v_available;
    IF NOT FOUND THEN
      SELECT balance_micros - held_micros INTO v_available FROM workspaces WHERE id = p_workspace_id;
      RETURN QUERY SELECT 'insufficient_balance'::text, v_available, NULL::bigint;
      RETURN;
    END IF;
    UPDATE api_keys SET held_micros = held_micros + p_amount
      WHERE id = p_key_id
        AND (budget_micros IS NULL
             OR budget_micros - nexo_budget_spent(budget_period, period_start, period_spent_micros, spent_micros) - held_micros >= p_amount)
      RETURNING budget_micros - nexo_budget_spent(budget_period, period_start, period_spent_micros, spent_micros) - held_micros
        INTO v_remaining;
    IF NOT FOUND THEN
      UPDATE workspaces SET held_micros = held_micros - p_amount WHERE id = p_workspace_id;
      SELECT budget_micros - nexo_budget_spent(budget_period, period_start, period_spent_micros, spent_micros) - held_micros
        INTO v_remaining FROM api_keys WHERE id = p_key_id;
      RETURN QUERY SELECT 'insufficient_budget'::text, v_available + p_amount, v_remaining;
      RETURN;
    END IF;
    INSERT INTO holds (request_id, workspace_id, key_id, model, amount_micros, expires_at)
      VALUES (p_request_id, p_workspace_id, p_key_id, p_model, p_amount, now() + make_interval(secs => p_ttl_seconds));
    RETURN QUERY SELECT 'held'::text, v_available, v_remaining;
  END
  $$`;

// Same signature. Locks: the hold, then the workspace, then the key; a settlement that finds no
// hold still takes the workspace lock before it writes a log and its daily aggregate, so those
// rows are always written in the global lock order (nexo_settle_many sorts by workspace, key).
const SETTLE_V2 = `
  CREATE OR REPLACE FUNCTION nexo_settle(
    p_request_id text, p_workspace_id uuid, p_key_id uuid, p_model text, p_provider text,
    p_prompt_tokens integer, p_completion_tokens integer, p_cost bigint, p_usage_source text,
    p_status integer, p_error_code text, p_latency_ms integer, p_stream boolean, p_created_at timestamptz)
  RETURNS TABLE (applied boolean, charged bigint)
  LANGUAGE plpgsql AS $$
  DECLARE
    v_hold holds%ROWTYPE;
    v_charged bigint := 0;
    v_balance bigint;
    v_budget bigint;
    v_spent bigint;
    v_period text;
    v_period_start timestamptz;
    v_period_spent bigint;
    v_current_start timestamptz;
    v_workspace_id uuid;
    v_key_id uuid;
    v_logged boolean;
  BEGIN
    DELETE FROM holds WHERE request_id = p_request_id RETURNING * INTO v_hold;
    IF FOUND THEN
      v_charged := LEAST(GREATEST(p_cost, 0), v_hold.amount_micros);
      PERFORM 1 FROM workspaces WHERE id = v_hold.workspace_id FOR UPDATE;
      SELECT budget_micros, spent_micros, budget_period, period_start, period_spent_micros
        INTO v_budget, v_spent, v_period, v_period_start, v_period_spent
        FROM api_keys WHERE id = v_hold.key_id FOR UPDATE;
      IF v_period IS NOT NULL THEN
        -- a new period: what the key spent before it no longer counts (reset below, under this lock)
        v_current_start := nexo_period_start(v_period, now());
        IF v_period_start IS NULL OR v_period_start < v_current_start THEN
          v_period_start := v_current_start;
          v_period_spent := 0;
        END IF;
      END IF;
      -- a budget lowered while the request ran still caps what the key spends (in this period)
      IF v_budget IS NOT NULL THEN
        v_charged := LEAST(v_charged, GREATEST(v_budget - CASE WHEN v_period IS NULL THEN v_spent ELSE v_period_spent END, 0));
      END IF;
      UPDATE workspaces SET balance_micros = balance_micros - v_charged, held_micros = held_micros - v_hold.amount_micros
        WHERE id = v_hold.workspace_id RETURNING balance_micros INTO v_balance;
      UPDATE api_keys SET spent_micros = spent_micros + v_charged, held_micros = held_micros - v_hold.amount_micros,
                          period_spent_micros = CASE WHEN v_period IS NULL THEN period_spent_micros ELSE v_period_spent + v_charged END,
                          period_start = CASE WHEN v_period IS NULL THEN period_start ELSE v_period_start END,
                          last_used_at = GREATEST(last_used_at, p_created_at)
        WHERE id = v_hold.key_id;
      IF v_charged > 0 THEN
        INSERT INTO ledger_entries (workspace_id, kind, amount_micros, balance_after_micros, reference, key_id, reason)
          VALUES (v_hold.workspace_id, 'charge', -v_charged, v_balance, 'req:' || p_request_id, v_hold.key_id,
                  p_model || ': ' || p_prompt_tokens || ' prompt + ' || p_completion_tokens || ' completion tokens');
      END IF;
    ELSE
      PERFORM 1 FROM workspaces WHERE id = p_workspace_id FOR UPDATE;
    END IF;
    v_workspace_id := COALESCE(v_hold.workspace_id, p_workspace_id);
    v_key_id := COALESCE(v_hold.key_id, p_key_id);
    INSERT INTO usage_logs (request_id, workspace_id, key_id, model, provider, prompt_tokens, completion_tokens, cost_micros,
                            status, error_code, latency_ms, stream, usage_source, created_at)
      VALUES (p_request_id, v_workspace_id, v_key_id, p_model, p_provider,
              p_prompt_tokens, p_completion_tokens, v_charged, p_status, p_error_code, p_latency_ms, p_stream, p_usage_source, p_created_at)
      ON CONFLICT (request_id) DO NOTHING;
    v_logged := FOUND;
    IF v_logged THEN
      INSERT INTO usage_daily AS d (workspace_id, day, key_id, model, requests, prompt_tokens, completion_tokens, cost_micros)
        VALUES (v_workspace_id, (p_created_at AT TIME ZONE 'UTC')::date, v_key_id, p_model, 1, p_prompt_tokens, p_completion_tokens, v_charged)
        ON CONFLICT (workspace_id, day, key_id, model) DO UPDATE SET
          requests = d.requests + 1,
          prompt_tokens = d.prompt_tokens + EXCLUDED.prompt_tokens,
          completion_tokens = d.completion_tokens + EXCLUDED.completion_tokens,
          cost_micros = d.cost_micros + EXCLUDED.cost_micros;
      IF v_hold.request_id IS NULL THEN
        UPDATE api_keys SET last_used_at = GREATEST(last_used_at, p_created_at) WHERE id = v_key_id;
      END IF;
    END IF;
    RETURN QUERY SELECT (v_hold.request_id IS NOT NULL) OR v_logged, v_charged;
  END
  $$`;

// The functions as 1764100000000-Initial created them, for down().
const PLACE_HOLD_V1 = `
  CREATE OR REPLACE FUNCTION nexo_place_hold(p_request_id text, p_workspace_id uuid, p_key_id uuid, p_amount bigint, p_ttl_seconds integer, p_model text)
  RETURNS TABLE (outcome text, workspace_available bigint, key_remaining bigint)
  LANGUAGE plpgsql AS $$
  DECLARE
    v_available bigint;
    v_remaining bigint;
  BEGIN
    PERFORM set_config('synchronous_commit', 'off', true);
    UPDATE workspaces SET held_micros = held_micros + p_amount
      WHERE id = p_workspace_id AND balance_micros - held_micros >= p_amount
      RETURNING balance_micros - held_micros INTO v_available;
    IF NOT FOUND THEN
      SELECT balance_micros - held_micros INTO v_available FROM workspaces WHERE id = p_workspace_id;
      RETURN QUERY SELECT 'insufficient_balance'::text, v_available, NULL::bigint;
      RETURN;
    END IF;
    UPDATE api_keys SET held_micros = held_micros + p_amount
      WHERE id = p_key_id AND (budget_micros IS NULL OR budget_micros - spent_micros - held_micros >= p_amount)
      RETURNING budget_micros - spent_micros - held_micros INTO v_remaining;
    IF NOT FOUND THEN
      UPDATE workspaces SET held_micros = held_micros - p_amount WHERE id = p_workspace_id;
      SELECT budget_micros - spent_micros - held_micros INTO v_remaining FROM api_keys WHERE id = p_key_id;
      RETURN QUERY SELECT 'insufficient_budget'::text, v_available + p_amount, v_remaining;
      RETURN;
    END IF;
    INSERT INTO holds (request_id, workspace_id, key_id, model, amount_micros, expires_at)
      VALUES (p_request_id, p_workspace_id, p_key_id, p_model, p_amount, now() + make_interval(secs => p_ttl_seconds));
    RETURN QUERY SELECT 'held'::text, v_available, v_remaining;
  END
  $$`;

const SETTLE_V1 = `
  CREATE OR REPLACE FUNCTION nexo_settle(
    p_request_id text, p_workspace_id uuid, p_key_id uuid, p_model text, p_provider text,
    p_prompt_tokens integer, p_completion_tokens integer, p_cost bigint, p_usage_source text,
    p_status integer, p_error_code text, p_latency_ms integer, p_stream boolean, p_created_at timestamptz)
  RETURNS TABLE (applied boolean, charged bigint)
  LANGUAGE plpgsql AS $$
  DECLARE
    v_hold holds%ROWTYPE;
    v_charged bigint := 0;
    v_balance bigint;
    v_budget bigint;
    v_spent bigint;
    v_logged boolean;
  BEGIN
    DELETE FROM holds WHERE request_id = p_request_id RETURNING * INTO v_hold;
    IF FOUND THEN
      v_charged := LEAST(GREATEST(p_cost, 0), v_hold.amount_micros);
      PERFORM 1 FROM workspaces WHERE id = v_hold.workspace_id FOR UPDATE;
      -- a budget lowered while the request ran still caps what the key spends
      SELECT budget_micros, spent_micros INTO v_budget, v_spent FROM api_keys WHERE id = v_hold.key_id FOR UPDATE;
      IF v_budget IS NOT NULL THEN
        v_charged := LEAST(v_charged, GREATEST(v_budget - v_spent, 0));
      END IF;
      UPDATE workspaces SET balance_micros = balance_micros - v_charged, held_micros = held_micros - v_hold.amount_micros
        WHERE id = v_hold.workspace_id RETURNING balance_micros INTO v_balance;
      UPDATE api_keys SET spent_micros = spent_micros + v_charged, held_micros = held_micros - v_hold.amount_micros
        WHERE id = v_hold.key_id;
      IF v_charged > 0 THEN
        INSERT INTO ledger_entries (workspace_id, kind, amount_micros, balance_after_micros, reference, key_id, reason)
          VALUES (v_hold.workspace_id, 'charge', -v_charged, v_balance, 'req:' || p_request_id, v_hold.key_id,
                  p_model || ': ' || p_prompt_tokens || ' prompt + ' || p_completion_tokens || ' completion tokens');
      END IF;
    END IF;
    INSERT INTO usage_logs (request_id, workspace_id, key_id, model, provider, prompt_tokens, completion_tokens, cost_micros,
                            status, error_code, latency_ms, stream, usage_source, created_at)
      VALUES (p_request_id, COALESCE(v_hold.workspace_id, p_workspace_id), COALESCE(v_hold.key_id, p_key_id), p_model, p_provider,
              p_prompt_tokens, p_completion_tokens, v_charged, p_status, p_error_code, p_latency_ms, p_stream, p_usage_source, p_created_at)
      ON CONFLICT (request_id) DO NOTHING;
    v_logged := FOUND;
    RETURN QUERY SELECT (v_hold.request_id IS NOT NULL) OR v_logged, v_charged;
  END
  $$`;
