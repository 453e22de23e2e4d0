import { Injectable } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { DataSource, EntityManager } from 'typeorm';
import { rowsOf } from '../database/sql';

export type CheckoutStatus = 'pending' | 'credited' | 'expired' | 'failed';

export interface CheckoutRow {
  id: string;
  workspaceId: string;
  amountCents: number;
  status: CheckoutStatus;
  creditedMicros: number | null;
  paymentIntent: string | null;
  refundedCents: number;
}

export interface WebhookEventRecord {
  eventId: string;
  type: string;
  livemode: boolean;
  objectId: string | null;
  workspaceId: string | null;
  outcome: string;
  detail: string | null;
  /** Kept only while the event's charge matches no checkout session (`unmatched_charge`), to replay it. */
  paymentIntent?: string | null;
  payload?: unknown;
}

export interface WebhookEventRow extends WebhookEventRecord {
  id: string;
  deliveries: number;
  createdAt: Date;
  lastDeliveredAt: Date;
}

interface RawCheckout {
  id: string;
  workspace_id: string;
  amount_cents: string;
  status: CheckoutStatus;
  credited_micros: string | null;
  payment_intent: string | null;
  refunded_cents: string;
}

const CHECKOUT_COLUMNS = 'id, workspace_id, amount_cents, status, credited_micros, payment_intent, refunded_cents';

function checkoutOf(r: RawCheckout): CheckoutRow {
  return {
    id: r.id,
    workspaceId: r.workspace_id,
    amountCents: Number(r.amount_cents),
    status: r.status,
    creditedMicros: r.credited_micros === null ? null : Number(r.credited_micros),
    paymentIntent: r.payment_intent,
    refundedCents: Number(r.refunded_cents),
  };
}

/** Stripe customers, checkout sessions and webhook events: every query of payments/. */
@Injectable()
export class PaymentsRepository {
  constructor(@InjectDataSource() private readonly db: DataSource) {}

  async findCustomer(workspaceId: string): Promise<string | null> {
    const rows: Array<{ customer_id: string }> = await this.db.query('SELECT customer_id FROM stripe_customers WHERE workspace_id = $1', [
      workspaceId,
    ]);
    return rows[0]?.customer_id ?? null;
  }

  /** Stores the workspace's customer unless one is stored already; the stored one wins. */
  async saveCustomer(workspaceId: string, customerId: string): Promise<string> {
    await this.db.query('INSERT INTO stripe_customers (workspace_id, customer_id) VALUES ($1, $2) ON CONFLICT DO NOTHING', [
      workspaceId,
      customerId,
    ]);
    return (await this.findCustomer(workspaceId)) ?? customerId;
  }

  /** Records a created session as pending (a replay of the same Stripe answer changes nothing). */
  async insertCheckout(id: string, workspaceId: string, amountCents: number): Promise<void> {
    await this.db.query(
      `INSERT INTO stripe_checkout_sessions (id, workspace_id, amount_cents) VALUES ($1, $2, $3) ON CONFLICT (id) DO NOTHING`,
      [id, workspaceId, amountCents],
    );
  }

  async findCheckout(id: string, workspaceId: string): Promise<CheckoutRow | null> {
    const rows: RawCheckout[] = await this.db.query(
      `SELECT ${CHECKOUT_COLUMNS} FROM stripe_checkout_sessions WHERE id = $1 AND workspace_id = $2`,
      [id, workspaceId],
    );
    return rows[0] ? checkoutOf(rows[0]) : null;
  }

  /** The session of a charge: by its id (the charge's metadata) or by its payment intent. */
  async findCheckoutForCharge(sessionId: string | null, paymentIntent: string | null): Promise<CheckoutRow | null> {
    const rows: RawCheckout[] = await this.db.query(
      `SELECT ${CHECKOUT_COLUMNS} FROM stripe_checkout_sessions
        WHERE ($1::text IS NOT NULL AND id = $1) OR ($2::text IS NOT NULL AND payment_intent = $2)
        ORDER BY (id = $1) DESC LIMIT 1`,
      [sessionId, paymentIntent],
    );
    return rows[0] ? checkoutOf(rows[0]) : null;
  }

  /**
   * The session's row, locked for the rest of the transaction: every money movement of one
   * session (its credit, refunds, disputes) is serialised by it. A session Stripe knows but
   * we never recorded (its recording failed) is recorded now, from the signed event.
   */
  async lockCheckout(tx: EntityManager, id: string, workspaceId: string, amountCents: number): Promise<CheckoutRow> {
    await rowsOf(
      tx,
      `INSERT INTO stripe_checkout_sessions (id, workspace_id, amount_cents) VALUES ($1, $2, $3) ON CONFLICT (id) DO NOTHING`,
      [id, workspaceId, amountCents],
    );
    return (await this.lockExisting(tx, id))!;
  }

  async lockExisting(tx: EntityManager, id: string): Promise<CheckoutRow | null> {
    const [row] = await rowsOf<RawCheckout>(tx, `SELECT ${CHECKOUT_COLUMNS} FROM stripe_checkout_sessions WHERE id = $1 FOR UPDATE`, [id]);
    return row ? checkoutOf(row) : null;
  }

  async setPaymentIntent(tx: EntityManager, id: string, paymentIntent: string): Promise<void> {
    await rowsOf(
      tx,
      `UPDATE stripe_checkout_sessions SET payment_intent = $2, updated_at = now() WHERE id = $1 AND payment_intent IS DISTINCT FROM $2`,
      [id, paymentIntent],
    );
  }

  async markCredited(tx: EntityManager, id: string, creditedMicros: number): Promise<void> {
    await rowsOf(tx, `UPDATE stripe_checkout_sessions SET status = 'credited', credited_micros = $2, updated_at = now() WHERE id = $1`, [
      id,
      creditedMicros,
    ]);
  }

  /** pending → expired or failed; a credited session keeps its status. */
  async markClosed(tx: EntityManager, id: string, status: 'expired' | 'failed'): Promise<boolean> {
    const rows = await rowsOf(
      tx,
      `UPDATE stripe_checkout_sessions SET status = $2, updated_at = now() WHERE id = $1 AND status = 'pending' RETURNING id`,
      [id, status],
    );
    return rows.length > 0;
  }

  async setRefunded(tx: EntityManager, id: string, refundedCents: number): Promise<void> {
    await rowsOf(tx, `UPDATE stripe_checkout_sessions SET refunded_cents = $2, updated_at = now() WHERE id = $1`, [id, refundedCents]);
  }

  /**
   * Records a delivery of an event: the first with its outcome, later ones count a delivery
   * (and replace only an `error` or `unmatched_charge` outcome, which the retry resolved).
   */
  async recordEvent(e: WebhookEventRecord, tx?: EntityManager): Promise<void> {
    const sql = `
      INSERT INTO stripe_webhook_events (event_id, type, livemode, object_id, workspace_id, outcome, detail, payment_intent, payload)
      VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
      ON CONFLICT (event_id) DO UPDATE SET
        payment_intent = CASE WHEN stripe_webhook_events.outcome IN ('error', 'unmatched_charge') THEN EXCLUDED.payment_intent
                              ELSE stripe_webhook_events.payment_intent END,
        payload = CASE WHEN stripe_webhook_events.outcome IN ('error', 'unmatched_charge') THEN EXCLUDED.payload
                       ELSE stripe_webhook_events.payload END,
        deliveries = stripe_webhook_events.deliveries + 1,
        last_delivered_at = now(),
        outcome = CASE WHEN stripe_webhook_events.outcome IN ('error', 'unmatched_charge') THEN EXCLUDED.outcome
                       ELSE stripe_webhook_events.outcome END,
        detail = CASE WHEN stripe_webhook_events.outcome IN ('error', 'unmatched_charge') THEN EXCLUDED.detail
                      ELSE stripe_webhook_events.detail END,
        workspace_id = COALESCE(stripe_webhook_events.workspace_id, EXCLUDED.workspace_id)`;
    const params = [
      e.eventId,
      e.type,
      e.livemode,
      e.objectId,
      e.workspaceId,
      e.outcome,
      e.detail,
      e.paymentIntent ?? null,
      e.payload === undefined || e.payload === null ? null : JSON.stringify(e.payload),
    ];
    if (tx) await rowsOf(tx, sql, params);
    else await this.db.query(sql, params);
  }

  /** The events of a payment intent that matched no checkout session when they came, oldest first. */
  async unmatchedEvents(paymentIntent: string): Promise<unknown[]> {
    const rows: Array<{ payload: unknown }> = await this.db.query(
      `SELECT payload FROM stripe_webhook_events
        WHERE payment_intent = $1 AND outcome = 'unmatched_charge' AND payload IS NOT NULL ORDER BY id`,
      [paymentIntent],
    );
    return rows.map((r) => r.payload);
  }

  /** Newest first, keyset-paginated on the id. */
  async listEvents(beforeId: string | null, limit: number): Promise<WebhookEventRow[]> {
    const rows: Array<Record<string, unknown>> = await this.db.query(
      `SELECT id, event_id, type, livemode, object_id, workspace_id, outcome, detail, deliveries, created_at, last_delivered_at
         FROM stripe_webhook_events WHERE $1::bigint IS NULL OR id < $1 ORDER BY id DESC LIMIT $2`,
      [beforeId, limit],
    );
    return rows.map((r) => ({
      id: String(r.id),
      eventId: r.event_id as string,
      type: r.type as string,
      livemode: r.livemode as boolean,
      objectId: r.object_id as string | null,
      workspaceId: r.workspace_id as string | null,
      outcome: r.outcome as string,
      detail: r.detail as string | null,
      deliveries: Number(r.deliveries),
      createdAt: r.created_at as Date,
      lastDeliveredAt: r.last_delivered_at as Date,
    }));
  }
}
