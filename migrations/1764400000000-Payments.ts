import { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Stripe top-ups (payments/):
 *
 * - `stripe_customers`: one Stripe Customer per workspace, reused by every checkout.
 * - `stripe_checkout_sessions`: each Checkout Session, recorded as pending when created and moved
 *   (credited, expired, failed) by the signed webhook, under its row lock and in the transaction
 *   of its ledger entry. `payment_intent` maps later charge, refund and dispute events to it;
 *   `refunded_cents` is what refunds have debited so far.
 * - `stripe_webhook_events`: every verified event id once (unique), with its outcome, for the
 *   operator.
 * - ledger kinds `topup` and `dispute` (refunds use the existing `refund`).
 */
export class Payments1764400000000 implements MigrationInterface {
  name = 'Payments1764400000000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`ALTER TABLE ledger_entries DROP CONSTRAINT ledger_entries_kind_check`);
    await q.query(`
      ALTER TABLE ledger_entries ADD CONSTRAINT ledger_entries_kind_check
        CHECK (kind IN ('credit', 'charge', 'refund', 'correction', 'topup', 'dispute'))`);
    await q.query(`
      CREATE TABLE stripe_customers (
        workspace_id uuid PRIMARY KEY REFERENCES workspaces(id) ON DELETE CASCADE,
        customer_id text NOT NULL UNIQUE,
        created_at timestamptz NOT NULL DEFAULT now()
      )`);
    await q.query(`
      CREATE TABLE stripe_checkout_sessions (
        id text PRIMARY KEY,
        workspace_id uuid NOT NULL REFERENCES workspaces(id) ON DELETE CASCADE,
        amount_cents bigint NOT NULL CHECK (amount_cents > 0),
        status text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'credited', 'expired', 'failed')),
        credited_micros bigint CHECK (credited_micros >= 0),
        payment_intent text UNIQUE,
        refunded_cents bigint NOT NULL DEFAULT 0 CHECK (refunded_cents >= 0),
        created_at timestamptz NOT NULL DEFAULT now(),
        updated_at timestamptz NOT NULL DEFAULT now()
      )`);
    await q.query(`CREATE INDEX stripe_checkout_sessions_workspace_idx ON stripe_checkout_sessions (workspace_id, created_at DESC)`);
    await q.query(`
      CREATE TABLE stripe_webhook_events (
        id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        event_id text NOT NULL UNIQUE,
        type text NOT NULL,
        livemode boolean NOT NULL,
        object_id text,
        workspace_id uuid,
        outcome text NOT NULL,
        detail text,
        deliveries integer NOT NULL DEFAULT 1 CHECK (deliveries > 0),
        -- kept only while the event's charge matches no checkout session, to replay it then
        payment_intent text,
        payload jsonb,
        created_at timestamptz NOT NULL DEFAULT now(),
        last_delivered_at timestamptz NOT NULL DEFAULT now()
      )`);
    await q.query(`
      CREATE INDEX stripe_webhook_events_unmatched_idx ON stripe_webhook_events (payment_intent)
        WHERE outcome = 'unmatched_charge'`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`DROP TABLE stripe_webhook_events`);
    await q.query(`DROP TABLE stripe_checkout_sessions`);
    await q.query(`DROP TABLE stripe_customers`);
    // entries are kept (balances are their sum): as the nearest older kinds
    await q.query(
      `UPDATE ledger_entries SET kind = CASE kind WHEN 'topup' THEN 'credit' ELSE 'correction' END WHERE kind IN ('topup', 'dispute')`,
    );
    await q.query(`ALTER TABLE ledger_entries DROP CONSTRAINT ledger_entries_kind_check`);
    await q.query(`
      ALTER TABLE ledger_entries ADD CONSTRAINT ledger_entries_kind_check
        CHECK (kind IN ('credit', 'charge', 'refund', 'correction'))`);
  }
}
