import { Inject, Injectable, Logger } from '@nestjs/common';
import Stripe from 'stripe';
import type { EntityManager } from 'typeorm';
import type { LedgerPosting, LedgerTx } from '../billing/ledger.repository';
import { BillingService } from '../billing/billing.service';
import { GatewayError, InvalidRequestError, NotFoundError } from '../common/errors/api-error';
import { MAX_CREDIT_MICROS } from '../common/money';
import { decodeCursor, encodeCursor } from '../common/pagination';
import { AppConfig } from '../config/app-config';
import { WorkspacesService } from '../workspaces/workspaces.service';
import { MICROS_PER_CENT } from './checkout.service';
import { WebhookEventPageDto, WebhookReceiptDto } from './payments.dto';
import { BillingUnavailableError } from './payments.errors';
import { CheckoutRow, PaymentsRepository, WebhookEventRecord } from './payments.repository';
import { isLiveKey, STRIPE_CLIENT } from './stripe-client';

/** Stripe's default: a signature older than 5 minutes is refused (replays). */
const SIGNATURE_TOLERANCE_SECONDS = 300;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

type Outcome = Pick<WebhookEventRecord, 'outcome' | 'detail'>;
type EventBase = Omit<WebhookEventRecord, 'outcome' | 'detail'>;

const idOf = (v: string | { id: string } | null | undefined): string | null => (v == null ? null : typeof v === 'string' ? v : v.id);

/**
 * The signed Stripe webhook (CONTRACT §6). Money comes only from the verified event: every
 * movement of one Checkout Session (its credit, refunds, disputes) happens under that session's
 * row lock, in the transaction of its ledger entry, under a unique reference; so no delivery
 * pattern (repeats, concurrency, any order) credits or debits twice. Every event id is
 * recorded with its outcome for the operator.
 */
@Injectable()
export class StripeWebhookService {
  private readonly logger = new Logger(StripeWebhookService.name);

  constructor(
    @Inject(STRIPE_CLIENT) private readonly stripe: Stripe | null,
    private readonly config: AppConfig,
    private readonly payments: PaymentsRepository,
    private readonly billing: BillingService,
    private readonly workspaces: WorkspacesService,
  ) {}

  /** 400 for a missing, bad or stale signature (nothing changes); 5xx when the event could not be recorded (Stripe retries). */
  async receive(rawBody: Buffer | undefined, signature: string | undefined): Promise<WebhookReceiptDto> {
    const secret = this.config.stripe.webhookSecret;
    if (!this.stripe || !secret) throw new BillingUnavailableError();
    if (!signature) throw new InvalidRequestError('Missing Stripe-Signature header.', 'Stripe-Signature');
    if (!rawBody || rawBody.length === 0) throw new InvalidRequestError('Missing webhook body.');
    let event: Stripe.Event;
    try {
      event = this.stripe.webhooks.constructEvent(rawBody, signature, secret, SIGNATURE_TOLERANCE_SECONDS);
    } catch {
      throw new InvalidRequestError(
        'Stripe-Signature verification failed: the signature, its timestamp or the body is not valid.',
        'Stripe-Signature',
      );
    }
    try {
      await this.handle(event);
    } catch (err) {
      this.logger.error(`Stripe event ${event.id} (${event.type}) not recorded: ${(err as Error).message}`);
      await this.payments
        .recordEvent({ ...this.baseOf(event, null), outcome: 'error', detail: (err as Error).message.slice(0, 500) })
        .catch(() => undefined);
      throw new GatewayError(503, 'The event could not be recorded right now; Stripe will deliver it again.');
    }
    return { received: true };
  }

  async events(limit: number, cursor: string | undefined): Promise<WebhookEventPageDto> {
    const rows = await this.payments.listEvents(cursor === undefined ? null : decodeCursor(cursor), limit + 1);
    const page = rows.slice(0, limit).map((r) => ({
      id: r.id,
      event_id: r.eventId,
      type: r.type,
      livemode: r.livemode,
      object_id: r.objectId,
      workspace_id: r.workspaceId,
      outcome: r.outcome,
      detail: r.detail,
      deliveries: r.deliveries,
      created_at: new Date(r.createdAt).toISOString(),
      last_delivered_at: new Date(r.lastDeliveredAt).toISOString(),
    }));
    return { data: page, next_cursor: rows.length > limit ? encodeCursor(page[page.length - 1].id) : null };
  }

  private async handle(event: Stripe.Event): Promise<void> {
    const live = isLiveKey(this.config.stripe.secretKey!);
    if (event.livemode !== live) {
      return this.record(this.baseOf(event, null), {
        outcome: 'livemode_mismatch',
        detail: `a ${event.livemode ? 'live' : 'test'}-mode event for a ${live ? 'live' : 'test'}-mode key`,
      });
    }
    switch (event.type) {
      case 'checkout.session.completed':
      case 'checkout.session.async_payment_succeeded':
      case 'checkout.session.async_payment_failed':
      case 'checkout.session.expired':
        return this.onSession(event, event.data.object);
      case 'charge.refunded':
        return this.onRefund(event, event.data.object);
      case 'charge.dispute.created':
      case 'charge.dispute.closed':
        return this.onDispute(event, event.data.object);
      default:
        return this.record(this.baseOf(event, null), { outcome: 'unhandled', detail: null });
    }
  }

  private async onSession(event: Stripe.Event, s: Stripe.Checkout.Session): Promise<void> {
    const workspaceId = s.client_reference_id ?? s.metadata?.workspace_id ?? null;
    const known = workspaceId !== null && (await this.workspaceExists(workspaceId));
    const base = this.baseOf(event, known ? workspaceId : null);
    if (!known)
      return this.record(base, { outcome: 'unknown_workspace', detail: `client_reference_id ${String(workspaceId).slice(0, 100)}` });
    if (s.mode !== 'payment') return this.record(base, { outcome: 'ignored', detail: `mode ${s.mode}` });
    if (s.currency?.toLowerCase() !== 'usd') return this.record(base, { outcome: 'unsupported_currency', detail: String(s.currency) });
    const cents = s.amount_total;
    if (cents === null || !Number.isSafeInteger(cents) || cents <= 0) return this.record(base, { outcome: 'ignored', detail: 'no amount' });
    const paymentIntent = idOf(s.payment_intent);
    await this.billing.withLedger(async (tx, ledger) => {
      const row = await this.payments.lockCheckout(tx, s.id, workspaceId, cents);
      if (row.workspaceId !== workspaceId) {
        return this.record(base, { outcome: 'unknown_workspace', detail: 'the session belongs to another workspace' }, tx);
      }
      if (paymentIntent) await this.payments.setPaymentIntent(tx, s.id, paymentIntent);
      let outcome: Outcome;
      if (event.type === 'checkout.session.async_payment_failed' || event.type === 'checkout.session.expired') {
        const status = event.type === 'checkout.session.expired' ? 'expired' : 'failed';
        outcome = (await this.payments.markClosed(tx, s.id, status))
          ? { outcome: status, detail: null }
          : { outcome: 'ignored', detail: `the session is already ${row.status}` };
      } else if (event.type === 'checkout.session.completed' && s.payment_status !== 'paid') {
        outcome = { outcome: 'awaiting_payment', detail: `payment_status ${s.payment_status}` };
      } else {
        outcome = await this.creditSession(tx, ledger, row, cents, paymentIntent);
      }
      await this.record(base, outcome, tx);
    });
    if (paymentIntent) await this.replayUnmatched(paymentIntent);
  }

  private async creditSession(tx: EntityManager, ledger: LedgerTx, row: CheckoutRow, cents: number, pi: string | null): Promise<Outcome> {
    if (row.status === 'credited') return { outcome: 'duplicate', detail: null };
    const amountMicros = cents * MICROS_PER_CENT;
    const result = await this.post(ledger, {
      workspaceId: row.workspaceId,
      kind: 'topup',
      amountMicros,
      reference: `stripe:cs:${row.id}`,
      reason: `Stripe Checkout top-up ${row.id}${pi ? ` (${pi})` : ''}`,
    });
    if (result.outcome === 'credited' || result.outcome === 'duplicate') await this.payments.markCredited(tx, row.id, amountMicros);
    return result;
  }

  /**
   * Each new refund debits once: keyed by refund id when the charge lists its refunds, else by
   * the change of the cumulative `amount_refunded`; what is debited never exceeds it.
   */
  private async onRefund(event: Stripe.Event, c: Stripe.Charge): Promise<void> {
    const matched = await this.matchCharge(event, c.currency, c.metadata?.checkout_session_id ?? null, idOf(c.payment_intent));
    if (!matched) return;
    const { base, sessionId } = matched;
    await this.billing.withLedger(async (tx, ledger) => {
      const row = (await this.payments.lockExisting(tx, sessionId))!;
      let refunded = row.refundedCents;
      const debited: string[] = [];
      let failure: Outcome | null = null;
      const debit = async (cents: number, reference: string, refundId: string) => {
        const result = await this.post(ledger, {
          workspaceId: row.workspaceId,
          kind: 'refund',
          amountMicros: -cents * MICROS_PER_CENT,
          reference,
          reason: `Stripe refund ${refundId} of charge ${c.id} (${row.id})`,
        });
        if (result.outcome === 'credited') {
          refunded += cents;
          debited.push(refundId);
        } else if (result.outcome !== 'duplicate') failure = result;
      };
      const listed = (c.refunds?.data ?? [])
        .filter((r) => r.status !== 'failed' && r.status !== 'canceled')
        .sort((a, b) => a.created - b.created);
      if (listed.length > 0) {
        for (const r of listed) {
          if (refunded + r.amount > c.amount_refunded) continue; // already debited through the cumulative amount
          await debit(r.amount, `stripe:refund:${r.id}`, r.id);
        }
      } else if (c.amount_refunded > refunded) {
        await debit(c.amount_refunded - refunded, `stripe:refund:${c.id}:${c.amount_refunded}`, `up to ${c.amount_refunded} cents`);
      }
      if (refunded !== row.refundedCents) await this.payments.setRefunded(tx, row.id, refunded);
      const outcome: Outcome =
        failure ?? (debited.length > 0 ? { outcome: 'debited', detail: debited.join(', ') } : { outcome: 'duplicate', detail: null });
      await this.record(base, outcome, tx);
    });
  }

  /** A dispute debits what it disputes; a won dispute credits back what it took (once, in any order). */
  private async onDispute(event: Stripe.Event, d: Stripe.Dispute): Promise<void> {
    const matched = await this.matchCharge(event, d.currency, null, idOf(d.payment_intent));
    if (!matched) return;
    const { base, sessionId } = matched;
    if (event.type === 'charge.dispute.closed' && d.status !== 'won')
      return this.record(base, { outcome: 'ignored', detail: `closed as ${d.status}` });
    await this.billing.withLedger(async (tx, ledger) => {
      const row = (await this.payments.lockExisting(tx, sessionId))!;
      const taken = {
        workspaceId: row.workspaceId,
        kind: 'dispute' as const,
        amountMicros: -d.amount * MICROS_PER_CENT,
        reference: `stripe:dispute:${d.id}`,
        reason: `Stripe dispute ${d.id} of charge ${idOf(d.charge)} (${row.id})`,
      };
      let outcome = await this.post(ledger, taken);
      if (event.type === 'charge.dispute.closed') {
        // won: a dispute never debited (its created event not yet seen) is debited and credited back here
        if (outcome.outcome === 'credited') outcome = { outcome: 'duplicate', detail: null };
        if (outcome.outcome === 'duplicate') {
          const amount = -((await ledger.amountOf(taken.reference)) ?? 0);
          outcome = await this.post(ledger, {
            ...taken,
            amountMicros: amount,
            reference: `stripe:dispute-won:${d.id}`,
            reason: `Won ${taken.reason}`,
          });
        }
      } else if (outcome.outcome === 'credited') {
        outcome = { outcome: 'debited', detail: null };
      }
      await this.record(base, outcome, tx);
    });
  }

  /** The checkout session a charge belongs to, or null once the event is recorded as unmatched. */
  private async matchCharge(
    event: Stripe.Event,
    currency: string,
    sessionId: string | null,
    paymentIntent: string | null,
  ): Promise<{ base: EventBase; sessionId: string } | null> {
    const row = await this.payments.findCheckoutForCharge(sessionId, paymentIntent);
    const base = this.baseOf(event, row?.workspaceId ?? null);
    if (!row) {
      // Not ours, or not yet: a refund or dispute delivered before its checkout session completed.
      // Answered 200 (CONTRACT §6) and kept with its payload: the session's completion replays it,
      // so a refund is never lost while the later credit is kept.
      await this.record(base, { outcome: 'unmatched_charge', detail: `payment_intent ${paymentIntent ?? 'none'}` }, undefined, {
        paymentIntent,
        payload: event,
      });
      return null;
    }
    if (currency.toLowerCase() !== 'usd') {
      await this.record(base, { outcome: 'unsupported_currency', detail: currency });
      return null;
    }
    return { base, sessionId: row.id };
  }

  /** Posts a ledger entry: `credited` for any applied entry (the caller names a debit), `duplicate` when it exists. */
  private async post(ledger: LedgerTx, p: LedgerPosting): Promise<Outcome> {
    if (p.amountMicros === 0) return { outcome: 'ignored', detail: 'zero amount' };
    if (Math.abs(p.amountMicros) > MAX_CREDIT_MICROS) return { outcome: 'out_of_range', detail: `${p.amountMicros} micros in one entry` };
    const result = await ledger.post(p);
    switch (result.outcome) {
      case 'applied':
        return { outcome: 'credited', detail: p.reference };
      case 'duplicate_reference':
        return { outcome: 'duplicate', detail: null };
      case 'workspace_not_found':
        return { outcome: 'unknown_workspace', detail: null };
      case 'out_of_range':
        this.logger.error(`Stripe ${p.reference} would take workspace ${p.workspaceId} outside the balance range; not applied`);
        return { outcome: 'out_of_range', detail: `balance ${result.balanceMicros}` };
    }
  }

  private async workspaceExists(id: string): Promise<boolean> {
    if (!UUID.test(id)) return false;
    try {
      await this.workspaces.get(id.toLowerCase());
      return true;
    } catch (err) {
      if (err instanceof NotFoundError) return false;
      throw err;
    }
  }

  private baseOf(event: Stripe.Event, workspaceId: string | null): EventBase {
    const object = event.data.object as { id?: unknown };
    return {
      eventId: event.id,
      type: event.type,
      livemode: event.livemode,
      objectId: typeof object.id === 'string' ? object.id : null,
      workspaceId,
    };
  }

  private async record(
    base: EventBase,
    outcome: Outcome,
    tx?: EntityManager,
    unmatched?: { paymentIntent: string | null; payload: Stripe.Event },
  ): Promise<void> {
    if (outcome.outcome !== 'credited' && outcome.outcome !== 'debited' && outcome.outcome !== 'duplicate') {
      this.logger.log(`Stripe event ${base.eventId} (${base.type}): ${outcome.outcome}${outcome.detail ? ` (${outcome.detail})` : ''}`);
    }
    await this.payments.recordEvent(
      { ...base, ...outcome, paymentIntent: unmatched?.paymentIntent ?? null, payload: unmatched?.payload ?? null },
      tx,
    );
  }

  /**
   * Refunds and disputes of this payment intent that arrived before its session was ours,
   * handled again now that they match. A failure answers 5xx, so Stripe delivers the session's
   * event again and the replay is retried (the credit itself is not repeated).
   */
  private async replayUnmatched(paymentIntent: string): Promise<void> {
    for (const payload of await this.payments.unmatchedEvents(paymentIntent)) {
      const event = payload as Stripe.Event; // verified when it was delivered
      this.logger.log(`Stripe event ${event.id} (${event.type}): replayed, its charge now matches a checkout session`);
      await this.handle(event);
    }
  }
}
