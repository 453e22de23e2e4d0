import { MigrationInterface, QueryRunner } from 'typeorm';

export class Initial1764100000000 implements MigrationInterface {
  name = 'Initial1764100000000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`
      CREATE TABLE workspaces (
        id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
        name text NOT NULL,
        balance_micros bigint NOT NULL DEFAULT 0,
        held_micros bigint NOT NULL DEFAULT 0 CHECK (held_micros >= 0),
        rpm_limit integer CHECK (rpm_limit > 0),
        tpm_limit integer CHECK (tpm_limit > 0),
        created_at timestamptz NOT NULL DEFAULT now(),
        updated_at timestamptz NOT NULL DEFAULT now()
      )`);
    await q.query(`
      CREATE TABLE api_keys (
        id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
        workspace_id uuid NOT NULL REFERENCES workspaces(id) ON DELETE CASCADE,
        name text NOT NULL,
        key_hash text NOT NULL UNIQUE,
        prefix text NOT NULL,
        last_four text NOT NULL,
        models text[],
        budget_micros bigint CHECK (budget_micros >= 0),
        spent_micros bigint NOT NULL DEFAULT 0 CHECK (spent_micros >= 0),
        held_micros bigint NOT NULL DEFAULT 0 CHECK (held_micros >= 0),
        rpm_limit integer CHECK (rpm_limit > 0),
        tpm_limit integer CHECK (tpm_limit > 0),
        expires_at timestamptz,
        disabled boolean NOT NULL DEFAULT false,
        revoked_at timestamptz,
        created_at timestamptz NOT NULL DEFAULT now(),
        updated_at timestamptz NOT NULL DEFAULT now()
      )`);
    await q.query(`CREATE INDEX api_keys_workspace_id_idx ON api_keys (workspace_id)`);
    await q.query(`
      CREATE TABLE providers (
        id text PRIMARY KEY,
        base_url text NOT NULL,
        api_key_encrypted text,
        created_at timestamptz NOT NULL DEFAULT now(),
        updated_at timestamptz NOT NULL DEFAULT now()
      )`);
    await q.query(`
      CREATE TABLE models (
        id text PRIMARY KEY,
        provider_id text NOT NULL REFERENCES providers(id),
        upstream_model text NOT NULL,
        type text NOT NULL CHECK (type IN ('chat', 'embedding')),
        input_price_micros bigint NOT NULL CHECK (input_price_micros >= 0),
        output_price_micros bigint NOT NULL CHECK (output_price_micros >= 0),
        sellable boolean NOT NULL DEFAULT true,
        max_output_tokens integer NOT NULL CHECK (max_output_tokens > 0),
        context_length integer CHECK (context_length > 0),
        created_at timestamptz NOT NULL DEFAULT now(),
        updated_at timestamptz NOT NULL DEFAULT now()
      )`);
    await q.query(`
      CREATE TABLE ledger_entries (
        id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        workspace_id uuid NOT NULL REFERENCES workspaces(id) ON DELETE CASCADE,
        kind text NOT NULL CHECK (kind IN ('credit', 'charge', 'refund', 'correction')),
        amount_micros bigint NOT NULL,
        balance_after_micros bigint NOT NULL,
        reference text NOT NULL UNIQUE,
        key_id uuid REFERENCES api_keys(id) ON DELETE SET NULL,
        reason text,
        request_hash text,
        created_at timestamptz NOT NULL DEFAULT now()
      )`);
    await q.query(`CREATE INDEX ledger_entries_workspace_idx ON ledger_entries (workspace_id, id DESC)`);
    await q.query(`
      CREATE TABLE holds (
        request_id text PRIMARY KEY,
        workspace_id uuid NOT NULL REFERENCES workspaces(id) ON DELETE CASCADE,
        key_id uuid NOT NULL REFERENCES api_keys(id) ON DELETE CASCADE,
        model text NOT NULL,
        amount_micros bigint NOT NULL CHECK (amount_micros >= 0),
        expires_at timestamptz NOT NULL,
        created_at timestamptz NOT NULL DEFAULT now()
      )`);
    await q.query(`CREATE INDEX holds_expires_at_idx ON holds (expires_at)`);
    await q.query(`
      CREATE TABLE usage_logs (
        id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        request_id text NOT NULL UNIQUE,
        workspace_id uuid NOT NULL REFERENCES workspaces(id) ON DELETE CASCADE,
        key_id uuid NOT NULL REFERENCES api_keys(id) ON DELETE CASCADE,
        model text NOT NULL,
        provider text,
        prompt_tokens integer NOT NULL DEFAULT 0 CHECK (prompt_tokens >= 0),
        completion_tokens integer NOT NULL DEFAULT 0 CHECK (completion_tokens >= 0),
        cost_micros bigint NOT NULL DEFAULT 0 CHECK (cost_micros >= 0),
        status integer NOT NULL,
        error_code text,
        latency_ms integer NOT NULL,
        stream boolean NOT NULL DEFAULT false,
        usage_source text NOT NULL,
        created_at timestamptz NOT NULL DEFAULT now()
      )`);
    await q.query(`CREATE INDEX usage_logs_workspace_idx ON usage_logs (workspace_id, id DESC)`);
    await q.query(`CREATE INDEX usage_logs_key_idx ON usage_logs (key_id, id DESC)`);

    // One round trip places a hold atomically against the workspace's available balance and
    // the key's remaining budget. Row locks are always taken workspace first, then key (the
    // settlement does the same), so concurrent holds and settlements cannot deadlock.
    // A hold commits without waiting for its WAL flush: if PostgreSQL crashed before the
    // flush, the hold is gone and its request settles at no charge (revenue lost, never an
    // overdraw); every settlement commits synchronously and flushes earlier holds with it.
    await q.query(`
      CREATE FUNCTION nexo_place_hold(p_request_id text, p_workspace_id uuid, p_key_id uuid, p_amount bigint, p_ttl_seconds integer, p_model text)
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
      $$`);

    // One round trip settles a request: the hold (if still there) becomes the charge, capped
    // at the hold, with its ledger entry and the usage log, in this statement's transaction.
    // Idempotent: the hold row is deleted under lock, and the usage log is unique per request.
    await q.query(`
      CREATE FUNCTION nexo_settle(
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
      $$`);
    // Many settlements in one transaction (one WAL flush for all of them), in the order
    // given: the caller sorts by workspace then key, the global lock order, so batches running
    // side by side cannot deadlock.
    await q.query(`
      CREATE FUNCTION nexo_settle_many(p_items jsonb)
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
            (v_item->>'stream')::boolean, to_timestamp((v_item->>'createdAt')::double precision / 1000.0));
          request_id := v_item->>'requestId';
          applied := v_result.applied;
          charged := v_result.charged;
          RETURN NEXT;
        END LOOP;
      END
      $$`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`DROP FUNCTION IF EXISTS nexo_settle_many(jsonb)`);
    await q.query(
      `DROP FUNCTION IF EXISTS nexo_settle(text, uuid, uuid, text, text, integer, integer, bigint, text, integer, text, integer, boolean, timestamptz)`,
    );
    await q.query(`DROP FUNCTION IF EXISTS nexo_place_hold(text, uuid, uuid, bigint, integer, text)`);
    for (const table of ['usage_logs', 'holds', 'ledger_entries', 'models', 'providers', 'api_keys', 'workspaces']) {
      await q.query(`DROP TABLE IF EXISTS ${table}`);
    }
  }
}
