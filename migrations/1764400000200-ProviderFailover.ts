import { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Provider failover:
 *
 * - `models.fallbacks`: the ordered list of `{provider, upstream_model}` a model's requests go to
 *   when its own provider fails (after its retries) or its circuit breaker is open.
 * - `usage_logs.attempts`: how many times the request was sent upstream, over every provider
 *   tried (null for logs written before this column, and for requests whose outcome is unknown).
 *   `usage_logs.provider` (existing) names the provider that answered, or the last one tried.
 * - nexo_settle gains `p_attempts`; the 14-argument version stays, for processes of the previous
 *   release during a rolling deploy, as a wrapper that records the attempts as unknown (null).
 *   nexo_settle_many passes each item's `attempts` (null when a queued job has none).
 */
export class ProviderFailover1764400000200 implements MigrationInterface {
  name = 'ProviderFailover1764400000200';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`
      ALTER TABLE models ADD COLUMN fallbacks jsonb NOT NULL DEFAULT '[]'::jsonb
        CONSTRAINT models_fallbacks_array CHECK (jsonb_typeof(fallbacks) = 'array')`);
    await q.query(`ALTER TABLE usage_logs ADD COLUMN attempts integer CONSTRAINT usage_logs_attempts_check CHECK (attempts >= 0)`);
    await q.query(SETTLE_V3);
    await q.query(`
      CREATE OR REPLACE FUNCTION nexo_settle(
        p_request_id text, p_workspace_id uuid, p_key_id uuid, p_model text, p_provider text,
        p_prompt_tokens integer, p_completion_tokens integer, p_cost bigint, p_usage_source text,
        p_status integer, p_error_code text, p_latency_ms integer, p_stream boolean, p_created_at timestamptz)
      RETURNS TABLE (applied boolean, charged bigint)
      LANGUAGE sql AS $$
        SELECT * FROM nexo_settle(p_request_id, p_workspace_id, p_key_id, p_model, p_provider, p_prompt_tokens, p_completion_tokens,
                                  p_cost, p_usage_source, p_status, p_error_code, p_latency_ms, p_stream, p_created_at, NULL::integer)
      $$`);
    await q.query(settleMany(true));
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`DROP FUNCTION IF EXISTS nexo_settle(${SETTLE_V2_ARGS}, integer)`);
    await q.query(SETTLE_V2);
    await q.query(settleMany(false));
    await q.query(`ALTER TABLE usage_logs DROP COLUMN IF EXISTS attempts`);
    await q.query(`ALTER TABLE models DROP COLUMN IF EXISTS fallbacks`);
  }
}

const SETTLE_V2_ARGS = 'text, uuid, uuid, text, text, integer, integer, bigint, text, integer, text, integer, boolean, timestamptz';

/** nexo_settle_many as 1764100000000-Initial created it, with or without the attempts of each item. */
function settleMany(withAttempts: boolean): string {
  return `
  CREATE OR REPLACE FUNCTION nexo_settle_many(p_items jsonb)
  RETURNS TABLE (request_id text, applied boolean, charged bigint)
  LANGUAGE plpgsql AS $$
  DECLARE
    v_item jsonb;
    v_result record;
  BEGIN
    FOR v_item IN SELECT value FROM jsonb_array_elements(p_items) LOOP
      SELECT * INTO v_result FROM nexo_settle(
        v_item->>'requestId', (v_item->>'workspaceId')::uuid, (v_item->>'keyId')::uuid, v_item->>'model', v_item->>'provider',
        (v_item->>'promptTokens')::integer, (v_item->>'completionTokens')::integer, (v_item->>'costMicros')::bigint,
        v_item->>'usageSource', (v_item->>'status')::integer, v_item->>'errorCode', (v_item->>'latencyMs')::integer,
        (v_item->>'stream')::boolean, to_timestamp((v_item->>'createdAt')::double precision / 1000.0)${withAttempts ? ", (v_item->>'attempts')::integer" : ''});
      request_id := v_item->>'requestId';
      applied := v_result.applied;
      charged := v_result.charged;
      RETURN NEXT;
    END LOOP;
  END
  $$`;
}

// 1764300000100-DashboardUsage's nexo_settle, with the attempts written to the usage log.
const SETTLE_V3 = `
  CREATE FUNCTION nexo_settle(
    p_request_id text, p_workspace_id uuid, p_key_id uuid, p_model text, p_provider text,
    p_prompt_tokens integer, p_completion_tokens integer, p_cost bigint, p_usage_source text,
    p_status integer, p_error_code text, p_latency_ms integer, p_stream boolean, p_created_at timestamptz, p_attempts integer)
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
                            status, error_code, latency_ms, stream, usage_source, created_at, attempts)
      VALUES (p_request_id, v_workspace_id, v_key_id, p_model, p_provider,
              p_prompt_tokens, p_completion_tokens, v_charged, p_status, p_error_code, p_latency_ms, p_stream, p_usage_source, p_created_at, p_attempts)
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

// 1764300000100-DashboardUsage's nexo_settle, for down().
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
