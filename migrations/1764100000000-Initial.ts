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
    await q.query(`
      CREATE FUNCTION nexo_place_hold(p_request_id text, p_workspace_id uuid, p_key_id uuid, p_amount bigint, p_ttl_seconds integer, p_model text)
      RETURNS TABLE (outcome text, workspace_available bigint, key_remaining bigint)
      LANGUAGE plpgsql AS $$
      DECLARE
        v_available bigint;
        v_remaining bigint;
      BEGIN
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
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`DROP FUNCTION IF EXISTS nexo_place_hold(text, uuid, uuid, bigint, integer, text)`);
    for (const table of ['usage_logs', 'holds', 'ledger_entries', 'models', 'providers', 'api_keys', 'workspaces']) {
      await q.query(`DROP TABLE IF EXISTS ${table}`);
    }
  }
}
