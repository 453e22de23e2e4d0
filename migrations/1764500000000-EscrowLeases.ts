import { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Escrow leases: a gateway process reserves a slice of a workspace's balance once (a lease) and
 * holds its requests against it in memory, instead of a PostgreSQL round trip per request.
 *
 * - `leases`: one row per slice (workspace, owning process, amount, state, `expires_at`). Its
 *   amount counts in `workspaces.held_micros` exactly like a hold's, taken by the same
 *   conditional update (never more than `balance - held`), and is committed synchronously.
 *   States: `open` (the owner holds requests against it), `returned` (the owner gave back its
 *   free part and takes no new requests: what is left are the holds of requests it already
 *   answered or is answering, drained by their settlements), `closed` (nothing left held). The
 *   owner renews `expires_at` while it lives and reports how much of the lease its requests in
 *   flight use (`in_use_micros`), so what the API reports as available counts the unused rest.
 *   `recall` asks the owner to give its free part back (a debit, a request refused elsewhere).
 *   `shortfall_micros`: what settlements could not charge because the lease was closed first
 *   (a dead process's lease), counted by reconcile.
 * - `lease_traces`: the requests held against a lease and not yet handed to settlement, one row
 *   per group written every 20 ms alongside the provider calls (`requests`: a JSON array of
 *   `{r: request id, k: key id, m: model, c: ms since epoch}`), deleted by the owner once every
 *   request of the group was handed over; so the requests of a process that died are still
 *   logged (outcome unknown) when its leases are closed.
 * - nexo_lease_take / _renew / _return / _recall / _close move leases; nexo_settle_leased settles
 *   a batch of leased requests in one statement per table (one lock of the workspace row for the
 *   whole batch): the usage log is the idempotency guard, and each charge moves from the lease to
 *   the balance in the same transaction as its ledger entry.
 *
 * Lock order everywhere: workspace, then leases (by id), then keys (by id); renewals lock only
 * leases, by id.
 */
export class EscrowLeases1764500000000 implements MigrationInterface {
  name = 'EscrowLeases1764500000000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`
      CREATE TABLE leases (
        id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
        workspace_id uuid NOT NULL REFERENCES workspaces(id) ON DELETE CASCADE,
        owner text NOT NULL,
        amount_micros bigint NOT NULL CHECK (amount_micros >= 0),
        in_use_micros bigint NOT NULL DEFAULT 0 CHECK (in_use_micros >= 0),
        state text NOT NULL DEFAULT 'open' CHECK (state IN ('open', 'returned', 'closed')),
        recall boolean NOT NULL DEFAULT false,
        shortfall_micros bigint NOT NULL DEFAULT 0 CHECK (shortfall_micros >= 0),
        expires_at timestamptz NOT NULL,
        created_at timestamptz NOT NULL DEFAULT now(),
        closed_at timestamptz,
        CHECK (state <> 'closed' OR amount_micros = 0)
      )`);
    await q.query(`CREATE INDEX leases_live_workspace_idx ON leases (workspace_id) WHERE state <> 'closed'`);
    await q.query(`CREATE INDEX leases_live_expiry_idx ON leases (expires_at) WHERE state <> 'closed'`);
    await q.query(`
      CREATE TABLE lease_traces (
        id bigserial PRIMARY KEY,
        lease_id uuid NOT NULL,
        workspace_id uuid NOT NULL,
        requests jsonb NOT NULL CHECK (jsonb_typeof(requests) = 'array'),
        created_at timestamptz NOT NULL DEFAULT now()
      )`);
    await q.query(`CREATE INDEX lease_traces_lease_idx ON lease_traces (lease_id)`);
    for (const fn of FUNCTIONS) await q.query(fn);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`DROP FUNCTION IF EXISTS nexo_settle_leased(jsonb)`);
    await q.query(`DROP FUNCTION IF EXISTS nexo_lease_close(uuid, integer)`);
    await q.query(`DROP FUNCTION IF EXISTS nexo_lease_recall(uuid, text)`);
    await q.query(`DROP FUNCTION IF EXISTS nexo_lease_return(uuid, text, bigint)`);
    await q.query(`DROP FUNCTION IF EXISTS nexo_lease_renew(text, uuid[], bigint[], integer)`);
    await q.query(`DROP FUNCTION IF EXISTS nexo_lease_take(uuid, uuid, text, bigint, bigint, integer)`);
    // what leases still held goes back to the balance's available part
    await q.query(`
      UPDATE workspaces w SET held_micros = w.held_micros - l.amount
        FROM (SELECT workspace_id, sum(amount_micros) AS amount FROM leases WHERE state <> 'closed' GROUP BY 1) l
       WHERE w.id = l.workspace_id`);
    await q.query(`DROP TABLE IF EXISTS lease_traces`);
    await q.query(`DROP TABLE IF EXISTS leases`);
  }
}

// Takes a new lease, or adds to the owner's open one: at most `p_want`, at most what is available
// shared among the processes holding leases on the workspace (available / (2 x processes)), and
// nothing when that is below `p_min`. Answers the lease (null when none was granted or the given
// lease is no longer open), what was granted, the lease's amount, and what is left available.
const TAKE = `
  CREATE FUNCTION nexo_lease_take(p_lease_id uuid, p_workspace_id uuid, p_owner text, p_want bigint, p_min bigint, p_ttl_ms integer)
  RETURNS TABLE (lease_id uuid, granted bigint, amount bigint, available bigint)
  LANGUAGE plpgsql AS $$
  DECLARE
    v_available bigint;
    v_owners integer;
    v_grant bigint;
    v_id uuid;
    v_amount bigint;
  BEGIN
    SELECT balance_micros - held_micros INTO v_available FROM workspaces WHERE id = p_workspace_id FOR UPDATE;
    IF NOT FOUND THEN
      RETURN QUERY SELECT NULL::uuid, 0::bigint, 0::bigint, 0::bigint;
      RETURN;
    END IF;
    SELECT count(DISTINCT l.owner) + 1 INTO v_owners FROM leases l
      WHERE l.workspace_id = p_workspace_id AND l.state = 'open' AND l.owner <> p_owner;
    v_grant := LEAST(p_want, GREATEST(v_available, 0) / (2 * v_owners));
    IF v_grant < GREATEST(p_min, 1) THEN v_grant := 0; END IF;
    IF p_lease_id IS NOT NULL THEN
      UPDATE leases l SET amount_micros = l.amount_micros + v_grant, expires_at = now() + make_interval(secs => p_ttl_ms / 1000.0)
        WHERE l.id = p_lease_id AND l.owner = p_owner AND l.state = 'open' AND NOT l.recall
        RETURNING l.id, l.amount_micros INTO v_id, v_amount;
      IF NOT FOUND THEN
        RETURN QUERY SELECT NULL::uuid, 0::bigint, 0::bigint, v_available;
        RETURN;
      END IF;
    ELSIF v_grant > 0 THEN
      INSERT INTO leases (workspace_id, owner, amount_micros, expires_at)
        VALUES (p_workspace_id, p_owner, v_grant, now() + make_interval(secs => p_ttl_ms / 1000.0))
        RETURNING id, amount_micros INTO v_id, v_amount;
    END IF;
    IF v_grant > 0 THEN
      UPDATE workspaces SET held_micros = held_micros + v_grant WHERE id = p_workspace_id;
    END IF;
    RETURN QUERY SELECT v_id, v_grant, COALESCE(v_amount, 0::bigint), v_available - v_grant;
  END
  $$`;

// The owner's heartbeat: pushes back the expiry of its live leases (by the database's clock),
// records how much of each its requests in flight use, and answers each lease's state and
// whether it is recalled. Locks leases only, in id order.
const RENEW = `
  CREATE FUNCTION nexo_lease_renew(p_owner text, p_ids uuid[], p_in_use bigint[], p_ttl_ms integer)
  RETURNS TABLE (lease_id uuid, state text, recall boolean, amount bigint)
  LANGUAGE sql AS $$
    WITH locked AS (
      SELECT l.id FROM leases l WHERE l.id = ANY(p_ids) AND l.owner = p_owner ORDER BY l.id FOR UPDATE
    ), renewed AS (
      UPDATE leases l SET
          expires_at = CASE WHEN l.state = 'closed' THEN l.expires_at ELSE now() + make_interval(secs => p_ttl_ms / 1000.0) END,
          in_use_micros = LEAST(GREATEST(u.in_use, 0), l.amount_micros)
        FROM locked, unnest(p_ids, p_in_use) AS u(id, in_use)
       WHERE l.id = locked.id AND u.id = l.id
      RETURNING l.id, l.state, l.recall, l.amount_micros
    )
    SELECT * FROM renewed
  $$`;

// The owner gives back the free part of its lease (`p_free`, what no request of its holds) and
// takes no new requests against it: the lease is 'returned' (closed once nothing is left). Only
// an open lease is returned: a second return (a retry, a recall meeting a shutdown) gives nothing.
// Answers what went back to the workspace's available balance.
const RETURN = `
  CREATE FUNCTION nexo_lease_return(p_lease_id uuid, p_owner text, p_free bigint)
  RETURNS bigint
  LANGUAGE plpgsql AS $$
  DECLARE
    v_ws uuid;
    v_amount bigint;
    v_back bigint;
  BEGIN
    SELECT workspace_id INTO v_ws FROM leases WHERE id = p_lease_id AND owner = p_owner;
    IF NOT FOUND THEN RETURN 0; END IF;
    PERFORM 1 FROM workspaces WHERE id = v_ws FOR UPDATE;
    -- once only: what is left after a return is the holds of requests already held against it
    SELECT amount_micros INTO v_amount FROM leases WHERE id = p_lease_id AND state = 'open' FOR UPDATE;
    IF NOT FOUND THEN RETURN 0; END IF;
    v_back := LEAST(GREATEST(p_free, 0), v_amount);
    UPDATE leases SET amount_micros = v_amount - v_back,
                      state = CASE WHEN v_amount - v_back = 0 THEN 'closed' ELSE 'returned' END,
                      closed_at = CASE WHEN v_amount - v_back = 0 THEN now() END,
                      in_use_micros = LEAST(in_use_micros, v_amount - v_back),
                      recall = false
      WHERE id = p_lease_id;
    UPDATE workspaces SET held_micros = held_micros - v_back WHERE id = v_ws;
    IF v_amount - v_back = 0 THEN DELETE FROM lease_traces WHERE lease_id = p_lease_id; END IF;
    RETURN v_back;
  END
  $$`;

// Asks every other process holding an open lease on the workspace to give its free part back.
// Answers how many leases were asked.
const RECALL = `
  CREATE FUNCTION nexo_lease_recall(p_workspace_id uuid, p_except_owner text)
  RETURNS integer
  LANGUAGE plpgsql AS $$
  DECLARE
    v_count integer;
  BEGIN
    PERFORM 1 FROM workspaces WHERE id = p_workspace_id FOR UPDATE;
    UPDATE leases SET recall = true
      WHERE id IN (SELECT id FROM leases WHERE workspace_id = p_workspace_id AND state = 'open'
                     AND owner IS DISTINCT FROM p_except_owner ORDER BY id FOR UPDATE);
    GET DIAGNOSTICS v_count = ROW_COUNT;
    RETURN v_count;
  END
  $$`;

// The sweeper's close of a dead process's lease: only once it expired more than
// `p_grace_seconds` ago (its owner stopped holding against it well before its expiry), checked
// under the lease's lock. Releases what it still held; answers that amount, or null when the
// lease is not closable (renewed meanwhile, or already closed).
const CLOSE = `
  CREATE FUNCTION nexo_lease_close(p_lease_id uuid, p_grace_seconds integer)
  RETURNS bigint
  LANGUAGE plpgsql AS $$
  DECLARE
    v_ws uuid;
    v_amount bigint;
  BEGIN
    SELECT workspace_id INTO v_ws FROM leases WHERE id = p_lease_id;
    IF NOT FOUND THEN RETURN NULL; END IF;
    PERFORM 1 FROM workspaces WHERE id = v_ws FOR UPDATE;
    SELECT amount_micros INTO v_amount FROM leases
      WHERE id = p_lease_id AND state <> 'closed' AND expires_at < now() - make_interval(secs => p_grace_seconds)
      FOR UPDATE SKIP LOCKED;
    IF NOT FOUND THEN RETURN NULL; END IF;
    UPDATE leases SET state = 'closed', amount_micros = 0, in_use_micros = 0, closed_at = now() WHERE id = p_lease_id;
    UPDATE workspaces SET held_micros = held_micros - v_amount WHERE id = v_ws;
    RETURN v_amount;
  END
  $$`;

// Settles a batch of leased requests: per workspace (in id order) one lock of its row, its
// leases and keys locked in id order, the charges computed in order, then one statement per
// table. A request already logged (a settlement delivered twice), or older than the logs
// retention dropped, changes nothing. A request's charge is its cost, at most what it held, and
// at most what the balance still backs once every other hold and lease is kept (a debit taken
// meanwhile: charges never exceed credits); a budget the key gained meanwhile caps it too. From
// a lease still held, the request's hold moves out of the lease and out of held_micros; from a
// lease closed before (its process died), it charges at most what is available and the rest is
// the lease's shortfall.
const SETTLE_LEASED = `
  CREATE FUNCTION nexo_settle_leased(p_items jsonb)
  RETURNS TABLE (request_id text, applied boolean, charged bigint)
  LANGUAGE plpgsql AS $$
  DECLARE
    v_ws uuid;
    v_balance bigint;
    v_held bigint;
    v_dropped timestamptz;
    v_keys uuid[];
    v_left jsonb;
    v_leases jsonb;
    r record;
    v_state text;
    v_amount bigint;
    v_cost bigint;
    v_charge bigint;
    v_used bigint;
    v_left_key bigint;
    a_req text[];
    a_charge bigint[];
    a_balance bigint[];
    a_lease uuid[];
    a_used bigint[];
    a_short bigint[];
    v_applied text[] := '{}';
  BEGIN
    SELECT dropped_before INTO v_dropped FROM usage_log_retention;
    FOR v_ws IN SELECT DISTINCT (e->>'workspaceId')::uuid FROM jsonb_array_elements(p_items) e ORDER BY 1 LOOP
      SELECT balance_micros, held_micros INTO v_balance, v_held FROM workspaces WHERE id = v_ws FOR UPDATE;
      IF NOT FOUND THEN
        RAISE EXCEPTION 'nexo_settle_leased: no workspace %', v_ws USING ERRCODE = 'foreign_key_violation';
      END IF;
      SELECT array_agg(DISTINCT (e->>'keyId')::uuid) INTO v_keys FROM jsonb_array_elements(p_items) e WHERE (e->>'workspaceId')::uuid = v_ws;
      IF (SELECT count(*) FROM api_keys WHERE id = ANY(v_keys) AND workspace_id = v_ws) <> cardinality(v_keys) THEN
        RAISE EXCEPTION 'nexo_settle_leased: a key is not in workspace %', v_ws USING ERRCODE = 'foreign_key_violation';
      END IF;
      SELECT COALESCE(jsonb_object_agg(l.id, jsonb_build_array(l.state, l.amount_micros)), '{}'::jsonb) INTO v_leases
        FROM (SELECT id, state, amount_micros FROM leases
               WHERE id IN (SELECT DISTINCT (e->>'leaseId')::uuid FROM jsonb_array_elements(p_items) e WHERE (e->>'workspaceId')::uuid = v_ws)
               ORDER BY id FOR UPDATE) l;
      -- keys with a budget (gained after their requests were leased): what each may still spend
      SELECT COALESCE(jsonb_object_agg(k.id, k.budget_micros - nexo_budget_spent(k.budget_period, k.period_start, k.period_spent_micros, k.spent_micros)), '{}'::jsonb)
        INTO v_left
        FROM (SELECT id, budget_micros, budget_period, period_start, period_spent_micros, spent_micros FROM api_keys
               WHERE id = ANY(v_keys) ORDER BY id FOR UPDATE) k
       WHERE k.budget_micros IS NOT NULL;
      a_req := '{}'; a_charge := '{}'; a_balance := '{}'; a_lease := '{}'; a_used := '{}'; a_short := '{}';
      FOR r IN
        SELECT DISTINCT ON (x."requestId") x."requestId" AS req, x."keyId" AS key_id, x."leaseId" AS lease_id,
               GREATEST(x."holdMicros", 0) AS hold, GREATEST(x."costMicros", 0) AS cost
          FROM jsonb_to_recordset(p_items) AS x("requestId" text, "workspaceId" uuid, "keyId" uuid, "leaseId" uuid, "holdMicros" bigint,
                                                "costMicros" bigint, "createdAt" double precision)
         WHERE x."workspaceId" = v_ws
           AND NOT EXISTS (SELECT 1 FROM usage_logs u WHERE u.request_id = x."requestId")
           AND to_timestamp(x."createdAt" / 1000.0) >= COALESCE(v_dropped, '-infinity'::timestamptz)
         ORDER BY x."requestId"
      LOOP
        v_state := v_leases->(r.lease_id::text)->>0;
        v_amount := (v_leases->(r.lease_id::text)->>1)::bigint;
        v_cost := LEAST(r.cost, r.hold);
        IF v_state IN ('open', 'returned') AND v_amount >= r.hold THEN
          -- the hold leaves the lease; the charge keeps every other hold backed
          v_charge := LEAST(v_cost, GREATEST(v_balance - (v_held - r.hold), 0));
          v_used := r.hold;
          v_held := v_held - r.hold;
          v_leases := jsonb_set(v_leases, ARRAY[r.lease_id::text, '1'], to_jsonb(v_amount - r.hold));
        ELSE
          v_charge := LEAST(v_cost, GREATEST(v_balance - v_held, 0));
          v_used := 0;
        END IF;
        IF v_left ? r.key_id::text THEN
          v_left_key := (v_left->>(r.key_id::text))::bigint;
          v_charge := LEAST(v_charge, GREATEST(v_left_key, 0));
          v_left := jsonb_set(v_left, ARRAY[r.key_id::text], to_jsonb(v_left_key - v_charge));
        END IF;
        v_balance := v_balance - v_charge;
        a_req := a_req || r.req;
        a_charge := a_charge || v_charge;
        a_balance := a_balance || v_balance;
        a_lease := a_lease || r.lease_id;
        a_used := a_used || v_used;
        a_short := a_short || CASE WHEN v_used = 0 THEN v_cost - v_charge ELSE 0 END;
      END LOOP;
      IF cardinality(a_req) = 0 THEN CONTINUE; END IF;

      UPDATE workspaces SET balance_micros = v_balance, held_micros = v_held WHERE id = v_ws;
      UPDATE leases l SET amount_micros = l.amount_micros - s.used,
                          in_use_micros = LEAST(GREATEST(l.in_use_micros - s.used, 0), l.amount_micros - s.used),
                          shortfall_micros = l.shortfall_micros + s.short,
                          state = CASE WHEN l.state = 'returned' AND l.amount_micros - s.used = 0 THEN 'closed' ELSE l.state END,
                          closed_at = CASE WHEN l.state = 'returned' AND l.amount_micros - s.used = 0 THEN now() ELSE l.closed_at END
        FROM (SELECT u.lease, sum(u.used) AS used, sum(u.short) AS short FROM unnest(a_lease, a_used, a_short) AS u(lease, used, short)
               WHERE u.lease IS NOT NULL GROUP BY 1) s
       WHERE l.id = s.lease AND (s.used > 0 OR s.short > 0);

      WITH items AS (
        SELECT x.*, c.charge, c.balance_after
          FROM jsonb_to_recordset(p_items) AS x("requestId" text, "workspaceId" uuid, "keyId" uuid, model text, provider text,
                                                "promptTokens" integer, "completionTokens" integer, "usageSource" text, status integer,
                                                "errorCode" text, "latencyMs" integer, stream boolean, "createdAt" double precision,
                                                attempts integer)
          JOIN unnest(a_req, a_charge, a_balance) AS c(req, charge, balance_after) ON c.req = x."requestId"
         WHERE x."workspaceId" = v_ws
      ), one AS (
        SELECT DISTINCT ON ("requestId") * FROM items ORDER BY "requestId"
      ), ledger AS (
        INSERT INTO ledger_entries (workspace_id, kind, amount_micros, balance_after_micros, reference, key_id, reason)
        SELECT v_ws, 'charge', -charge, balance_after, 'req:' || "requestId", "keyId",
               model || ': ' || "promptTokens" || ' prompt + ' || "completionTokens" || ' completion tokens'
          FROM one WHERE charge > 0
      ), logs AS (
        INSERT INTO usage_logs (request_id, workspace_id, key_id, model, provider, prompt_tokens, completion_tokens, cost_micros,
                                status, error_code, latency_ms, stream, usage_source, created_at, attempts)
        SELECT "requestId", v_ws, "keyId", model, provider, "promptTokens", "completionTokens", charge,
               status, "errorCode", "latencyMs", stream, "usageSource", to_timestamp("createdAt" / 1000.0), attempts
          FROM one
      ), keys AS (
        UPDATE api_keys k SET
            spent_micros = k.spent_micros + s.charged,
            period_spent_micros = CASE
              WHEN k.budget_period IS NULL THEN k.period_spent_micros
              WHEN k.period_start IS NULL OR k.period_start < nexo_period_start(k.budget_period, now()) THEN s.charged
              ELSE k.period_spent_micros + s.charged END,
            period_start = CASE
              WHEN k.budget_period IS NULL THEN k.period_start
              WHEN k.period_start IS NULL OR k.period_start < nexo_period_start(k.budget_period, now()) THEN nexo_period_start(k.budget_period, now())
              ELSE k.period_start END,
            last_used_at = GREATEST(k.last_used_at, s.last_used)
          FROM (SELECT "keyId" AS key_id, sum(charge) AS charged, max(to_timestamp("createdAt" / 1000.0)) AS last_used FROM one GROUP BY 1) s
         WHERE k.id = s.key_id
      )
      INSERT INTO usage_daily AS d (workspace_id, day, key_id, model, requests, prompt_tokens, completion_tokens, cost_micros)
        SELECT v_ws, (to_timestamp("createdAt" / 1000.0) AT TIME ZONE 'UTC')::date, "keyId", model,
               count(*), sum("promptTokens"), sum("completionTokens"), sum(charge)
          FROM one GROUP BY 2, 3, 4
        ON CONFLICT (workspace_id, day, key_id, model) DO UPDATE SET
          requests = d.requests + EXCLUDED.requests,
          prompt_tokens = d.prompt_tokens + EXCLUDED.prompt_tokens,
          completion_tokens = d.completion_tokens + EXCLUDED.completion_tokens,
          cost_micros = d.cost_micros + EXCLUDED.cost_micros;

      DELETE FROM lease_traces t WHERE t.lease_id IN (SELECT l.id FROM leases l WHERE l.id = ANY(a_lease) AND l.state = 'closed');
      v_applied := v_applied || a_req;
      RETURN QUERY SELECT c.req, true, c.charge FROM unnest(a_req, a_charge) AS c(req, charge);
    END LOOP;
    -- the rest were settled before (or are too old to log again): nothing changed
    RETURN QUERY SELECT DISTINCT e->>'requestId', false, 0::bigint FROM jsonb_array_elements(p_items) e
      WHERE NOT (e->>'requestId' = ANY(v_applied));
  END
  $$`;

const FUNCTIONS = [TAKE, RENEW, RETURN, RECALL, CLOSE, SETTLE_LEASED];
