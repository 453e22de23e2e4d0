import { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Usage logs that scale: `usage_logs` becomes partitioned by UTC month of `created_at`.
 *
 * - The existing table and its rows move to a partitioned table of the same name and columns:
 *   one partition per month from the oldest log's to two months ahead (`usage_logs_YYYY_MM`), and
 *   `usage_logs_default` for anything no month partition takes, so an insert never fails.
 *   Indexes are per partition: (workspace_id, created_at DESC, id DESC) and (key_id, created_at
 *   DESC, id DESC) drive the listings (newest first, keyset on (created_at, id)), and
 *   (request_id, created_at) finds a request's log. The primary key becomes (id, created_at).
 * - No foreign keys: attaching a partition would lock workspaces and api_keys (SHARE ROW
 *   EXCLUSIVE) and dropping one would lock them ACCESS EXCLUSIVE, stalling every request. The
 *   only writer, nexo_settle, takes the workspace and key from the hold, or checks that the key
 *   is the workspace's when there is none (workspaces are deleted only while nothing refers to them).
 * - A partitioned table's unique keys must hold the partition key, so request_id alone can no
 *   longer be UNIQUE. nexo_settle keeps one log per request by looking for it under the row
 *   lock of the request's workspace, which it takes in both branches before writing the log (and
 *   nothing else writes usage logs): a settlement delivered twice, even concurrently, charges,
 *   counts (usage_daily) and logs once.
 * - nexo_usage_log_partition(month) creates a month's partition if it is missing (rows of that
 *   month that went to the default partition move into it); nexo_drop_usage_log_partitions(before)
 *   detaches and drops the month partitions that end at or before `before` (a UTC month start)
 *   and deletes the default partition's rows older than it. `usage_log_retention.dropped_before`
 *   remembers how far logs were dropped: reconcile compares logs with usage_daily only after it,
 *   and a settlement without a hold for a request older than it logs nothing (its first log may
 *   be gone; the charge was made by the first settlement, with the hold). usage_daily and
 *   ledger_entries are never touched.
 */
export class UsageLogPartitions1764400000500 implements MigrationInterface {
  name = 'UsageLogPartitions1764400000500';

  async up(q: QueryRunner): Promise<void> {
    // no usage log may be written (by a process still running the old functions) while rows are copied
    await q.query(`LOCK TABLE usage_logs IN SHARE ROW EXCLUSIVE MODE`);
    await q.query(`ALTER TABLE usage_logs RENAME TO usage_logs_unpartitioned`);
    for (const index of ['pkey', 'request_id_key', 'workspace_idx', 'key_idx']) {
      await q.query(`ALTER INDEX IF EXISTS usage_logs_${index} RENAME TO usage_logs_unpartitioned_${index}`);
    }
    await q.query(`ALTER SEQUENCE IF EXISTS usage_logs_id_seq RENAME TO usage_logs_unpartitioned_id_seq`);
    await q.query(`
      CREATE TABLE usage_logs (
        id bigint GENERATED ALWAYS AS IDENTITY,
        request_id text NOT NULL,
        workspace_id uuid NOT NULL,
        key_id uuid NOT NULL,
        model text NOT NULL,
        provider text,
        prompt_tokens integer NOT NULL DEFAULT 0 CHECK (prompt_tokens >= 0),
        completion_tokens integer NOT NULL DEFAULT 0 CHECK (completion_tokens >= 0),
        cost_micros bigint NOT NULL DEFAULT 0 CHECK (cost_micros >= 0),
        status integer,
        error_code text,
        latency_ms integer NOT NULL,
        stream boolean NOT NULL DEFAULT false,
        usage_source text NOT NULL,
        created_at timestamptz NOT NULL DEFAULT now(),
        attempts integer CONSTRAINT usage_logs_attempts_check CHECK (attempts >= 0)
      ) PARTITION BY RANGE (created_at)`);
    await q.query(`CREATE TABLE usage_logs_default PARTITION OF usage_logs DEFAULT`);
    await q.query(`
      CREATE TABLE usage_log_retention (
        singleton boolean PRIMARY KEY DEFAULT true CHECK (singleton),
        dropped_before timestamptz
      )`);
    await q.query(`INSERT INTO usage_log_retention (dropped_before) VALUES (NULL)`);
    await q.query(PARTITION_FUNCTION);
    await q.query(DROP_PARTITIONS_FUNCTION);
    // a partition for every month with logs (up to ten years back: anything older, from a wrong
    // clock, goes to the default partition), the current one and two ahead
    await q.query(`
      SELECT nexo_usage_log_partition(m AT TIME ZONE 'UTC')
        FROM generate_series(
               date_trunc('month', GREATEST(LEAST((SELECT min(created_at) FROM usage_logs_unpartitioned), now()), now() - interval '10 years')
                                   AT TIME ZONE 'UTC'),
               date_trunc('month', now() AT TIME ZONE 'UTC') + interval '2 months',
               interval '1 month') AS m`);
    await q.query(`
      INSERT INTO usage_logs (id, request_id, workspace_id, key_id, model, provider, prompt_tokens, completion_tokens, cost_micros,
                              status, error_code, latency_ms, stream, usage_source, created_at, attempts)
      OVERRIDING SYSTEM VALUE
      SELECT id, request_id, workspace_id, key_id, model, provider, prompt_tokens, completion_tokens, cost_micros,
             status, error_code, latency_ms, stream, usage_source, created_at, attempts
        FROM usage_logs_unpartitioned`);
    await q.query(`SELECT setval(pg_get_serial_sequence('usage_logs', 'id'), max(id)) FROM usage_logs HAVING max(id) IS NOT NULL`);
    await q.query(`DROP TABLE usage_logs_unpartitioned`);
    // built once the rows are in (each partition's index in one pass)
    await q.query(`ALTER TABLE usage_logs ADD CONSTRAINT usage_logs_pkey PRIMARY KEY (id, created_at)`);
    await q.query(`CREATE UNIQUE INDEX usage_logs_request_idx ON usage_logs (request_id, created_at)`);
    await q.query(`CREATE INDEX usage_logs_workspace_idx ON usage_logs (workspace_id, created_at DESC, id DESC)`);
    await q.query(`CREATE INDEX usage_logs_key_idx ON usage_logs (key_id, created_at DESC, id DESC)`);
    await q.query(SETTLE_V4);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`LOCK TABLE usage_logs IN SHARE ROW EXCLUSIVE MODE`);
    await q.query(`ALTER TABLE usage_logs RENAME TO usage_logs_partitioned`);
    for (const index of ['pkey', 'request_idx', 'workspace_idx', 'key_idx']) {
      await q.query(`ALTER INDEX IF EXISTS usage_logs_${index} RENAME TO usage_logs_partitioned_${index}`);
    }
    await q.query(`ALTER SEQUENCE IF EXISTS usage_logs_id_seq RENAME TO usage_logs_partitioned_id_seq`);
    // the table as 1764100000000-Initial, 1764200000100-UsageOutcomeUnknown and 1764400000200-ProviderFailover left it
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
        status integer,
        error_code text,
        latency_ms integer NOT NULL,
        stream boolean NOT NULL DEFAULT false,
        usage_source text NOT NULL,
        created_at timestamptz NOT NULL DEFAULT now(),
        attempts integer CONSTRAINT usage_logs_attempts_check CHECK (attempts >= 0)
      )`);
    await q.query(`
      INSERT INTO usage_logs (id, request_id, workspace_id, key_id, model, provider, prompt_tokens, completion_tokens, cost_micros,
                              status, error_code, latency_ms, stream, usage_source, created_at, attempts)
      OVERRIDING SYSTEM VALUE
      SELECT id, request_id, workspace_id, key_id, model, provider, prompt_tokens, completion_tokens, cost_micros,
             status, error_code, latency_ms, stream, usage_source, created_at, attempts
        FROM usage_logs_partitioned ORDER BY id`);
    await q.query(`SELECT setval(pg_get_serial_sequence('usage_logs', 'id'), max(id)) FROM usage_logs HAVING max(id) IS NOT NULL`);
    await q.query(`DROP TABLE usage_logs_partitioned`);
    await q.query(`CREATE INDEX usage_logs_workspace_idx ON usage_logs (workspace_id, id DESC)`);
    await q.query(`CREATE INDEX usage_logs_key_idx ON usage_logs (key_id, id DESC)`);
    await q.query(SETTLE_V3);
    await q.query(`DROP FUNCTION IF EXISTS nexo_drop_usage_log_partitions(timestamptz)`);
    await q.query(`DROP FUNCTION IF EXISTS nexo_usage_log_partition(timestamptz)`);
    await q.query(`DROP TABLE IF EXISTS usage_log_retention`);
  }
}

/**
 * Creates the partition of the UTC month holding `p_month` unless it exists, moving that month's
 * rows out of the default partition, and returns its name. Partitions are named
 * usage_logs_YYYY_MM. Made as a table of its own and then attached, so the parent is never locked
 * against reads and writes (ATTACH takes SHARE UPDATE EXCLUSIVE on it; the default partition is
 * locked briefly). Serialised by an advisory lock.
 */
const PARTITION_FUNCTION = `
  CREATE FUNCTION nexo_usage_log_partition(p_month timestamptz) RETURNS text
  LANGUAGE plpgsql AS $$
  DECLARE
    v_from timestamp := date_trunc('month', p_month AT TIME ZONE 'UTC');
    v_to timestamp := date_trunc('month', p_month AT TIME ZONE 'UTC') + interval '1 month';
    v_name text := 'usage_logs_' || to_char(date_trunc('month', p_month AT TIME ZONE 'UTC'), 'YYYY_MM');
  BEGIN
    PERFORM pg_advisory_xact_lock(hashtext('nexo_usage_log_partitions'));
    IF EXISTS (SELECT 1 FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
                WHERE i.inhparent = 'usage_logs'::regclass AND c.relname = v_name) THEN
      RETURN v_name;
    END IF;
    EXECUTE format('CREATE TABLE %I (LIKE usage_logs INCLUDING DEFAULTS INCLUDING CONSTRAINTS)', v_name);
    -- the bound as a constraint: ATTACH then need not scan the new table
    EXECUTE format('ALTER TABLE %I ADD CONSTRAINT %I CHECK (created_at >= %L AND created_at < %L)',
                   v_name, v_name || '_month', v_from AT TIME ZONE 'UTC', v_to AT TIME ZONE 'UTC');
    LOCK TABLE usage_logs_default IN ACCESS EXCLUSIVE MODE;
    EXECUTE format('WITH moved AS (DELETE FROM usage_logs_default WHERE created_at >= $1 AND created_at < $2 RETURNING *)
                    INSERT INTO %I SELECT * FROM moved', v_name)
      USING v_from AT TIME ZONE 'UTC', v_to AT TIME ZONE 'UTC';
    EXECUTE format('ALTER TABLE usage_logs ATTACH PARTITION %I FOR VALUES FROM (%L) TO (%L)',
                   v_name, v_from AT TIME ZONE 'UTC', v_to AT TIME ZONE 'UTC');
    EXECUTE format('ALTER TABLE %I DROP CONSTRAINT %I', v_name, v_name || '_month');
    RETURN v_name;
  END
  $$`;

/**
 * Detaches and drops every month partition that ends at or before \`p_before\` (rounded down to a
 * UTC month start), deletes the default partition's rows older than it, records it as
 * usage_log_retention.dropped_before, and returns the names of the partitions dropped.
 */
const DROP_PARTITIONS_FUNCTION = `
  CREATE FUNCTION nexo_drop_usage_log_partitions(p_before timestamptz) RETURNS SETOF text
  LANGUAGE plpgsql AS $$
  DECLARE
    v_before timestamptz := date_trunc('month', p_before AT TIME ZONE 'UTC') AT TIME ZONE 'UTC';
    v_name text;
  BEGIN
    PERFORM pg_advisory_xact_lock(hashtext('nexo_usage_log_partitions'));
    FOR v_name IN
      SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
       WHERE i.inhparent = 'usage_logs'::regclass AND c.relname ~ '^usage_logs_[0-9]{4}_[0-9]{2}$'
         AND (to_date(substr(c.relname, 12), 'YYYY_MM') + interval '1 month') AT TIME ZONE 'UTC' <= v_before
       ORDER BY c.relname
    LOOP
      EXECUTE format('ALTER TABLE usage_logs DETACH PARTITION %I', v_name);
      EXECUTE format('DROP TABLE %I', v_name);
      RETURN NEXT v_name;
    END LOOP;
    DELETE FROM usage_logs_default WHERE created_at < v_before;
    UPDATE usage_log_retention SET dropped_before = GREATEST(dropped_before, v_before);
  END
  $$`;

// 1764400000200-ProviderFailover's nexo_settle, with one usage log per request kept under the
// workspace's row lock (no unique request_id any more), and no log for a late repeat of a
// request older than the logs retention dropped.
const SETTLE_V4 = `
  CREATE OR REPLACE FUNCTION nexo_settle(
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
    v_logged boolean := false;
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
      -- what the foreign keys checked before usage_logs was partitioned
      IF NOT FOUND OR NOT EXISTS (SELECT 1 FROM api_keys WHERE id = p_key_id AND workspace_id = p_workspace_id) THEN
        RAISE EXCEPTION 'nexo_settle: no key % in workspace %', p_key_id, p_workspace_id USING ERRCODE = 'foreign_key_violation';
      END IF;
    END IF;
    v_workspace_id := COALESCE(v_hold.workspace_id, p_workspace_id);
    v_key_id := COALESCE(v_hold.key_id, p_key_id);
    -- One usage log per request: looked for under the workspace's row lock, held by every writer
    -- of a usage log (only this function writes them) until it commits, so a settlement
    -- delivered twice, even at once, finds the first one's log (READ COMMITTED: this statement
    -- sees what committed before the lock was granted). Without a hold, a request older than
    -- the logs retention dropped is not logged again: its first log may be gone.
    IF NOT EXISTS (SELECT 1 FROM usage_logs WHERE request_id = p_request_id)
       AND (v_hold.request_id IS NOT NULL
            OR p_created_at >= COALESCE((SELECT dropped_before FROM usage_log_retention), '-infinity'::timestamptz)) THEN
      INSERT INTO usage_logs (request_id, workspace_id, key_id, model, provider, prompt_tokens, completion_tokens, cost_micros,
                              status, error_code, latency_ms, stream, usage_source, created_at, attempts)
        VALUES (p_request_id, v_workspace_id, v_key_id, p_model, p_provider,
                p_prompt_tokens, p_completion_tokens, v_charged, p_status, p_error_code, p_latency_ms, p_stream, p_usage_source, p_created_at,
                p_attempts);
      v_logged := true;
    END IF;
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

// 1764400000200-ProviderFailover's nexo_settle, for down().
const SETTLE_V3 = `
  CREATE OR REPLACE FUNCTION nexo_settle(
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
