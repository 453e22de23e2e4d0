import { Inject, Injectable, Logger } from '@nestjs/common';
import { createHash, randomUUID } from 'node:crypto';
import Stripe from 'stripe';
import type { SessionPrincipal } from '../accounts/session-principal';
import { GatewayError, InvalidRequestError, NotFoundError } from '../common/errors/api-error';
import { AppConfig } from '../config/app-config';
import { CheckoutConfigDto, CheckoutCreateDto, CheckoutCreatedDto, CheckoutStatusDto } from './payments.dto';
import { BillingUnavailableError } from './payments.errors';
import { PaymentsRepository } from './payments.repository';
import { STRIPE_CLIENT } from './stripe-client';

/** 1 US cent in micro-USD. */
export const MICROS_PER_CENT = 10_000;

/** Stripe Checkout top-ups: creates sessions (recorded as pending) and answers their local status. */
@Injectable()
export class CheckoutService {
  private readonly logger = new Logger(CheckoutService.name);

  constructor(
    @Inject(STRIPE_CLIENT) private readonly stripe: Stripe | null,
    private readonly config: AppConfig,
    private readonly payments: PaymentsRepository,
  ) {}

  /** What the dashboard's top-up form needs to know before it sends anything. */
  topupConfig(): CheckoutConfigDto {
    const { minCents, maxCents } = this.config.topup;
    return { enabled: this.stripe !== null, min_cents: minCents, max_cents: maxCents, currency: 'usd' };
  }

  /**
   * A Checkout Session for `amount_cents` of credits, for the caller's workspace and its one
   * Stripe Customer. Calls to Stripe carry idempotency keys (a client's Idempotency-Key makes
   * its retries return the same session); a Stripe failure is 502 gateway_error.
   */
  async create(session: SessionPrincipal, dto: CheckoutCreateDto, idempotencyKey: string | undefined): Promise<CheckoutCreatedDto> {
    const stripe = this.client();
    const { minCents, maxCents } = this.config.topup;
    if (!Number.isSafeInteger(dto.amount_cents) || dto.amount_cents < minCents || dto.amount_cents > maxCents) {
      throw new InvalidRequestError(
        `amount_cents must be a whole number of US cents from ${minCents} to ${maxCents} ($${(minCents / 100).toFixed(2)} to $${(maxCents / 100).toFixed(2)}).`,
        'amount_cents',
      );
    }
    if (idempotencyKey !== undefined && !/^[\x21-\x7e]{1,255}$/.test(idempotencyKey)) {
      throw new InvalidRequestError('Idempotency-Key must be 1-255 printable ASCII characters.', 'Idempotency-Key');
    }
    const workspaceId = session.workspaceId;
    const customer = await this.customer(stripe, workspaceId, session.email);
    const key = idempotencyKey
      ? createHash('sha256')
          .update(JSON.stringify([workspaceId, dto.amount_cents, idempotencyKey]))
          .digest('hex')
      : randomUUID();
    const returnUrl = `${this.config.publicUrl}/app/billing?checkout={CHECKOUT_SESSION_ID}`;
    const created = await this.callStripe('create the checkout session', () =>
      stripe.checkout.sessions.create(
        {
          mode: 'payment',
          customer,
          client_reference_id: workspaceId,
          metadata: { workspace_id: workspaceId },
          payment_intent_data: { metadata: { workspace_id: workspaceId } },
          line_items: [
            {
              quantity: 1,
              price_data: { currency: 'usd', unit_amount: dto.amount_cents, product_data: { name: 'NexoRouter credits' } },
            },
          ],
          success_url: returnUrl,
          cancel_url: `${returnUrl}&canceled=1`,
        },
        { idempotencyKey: `nexo-checkout-${key}` },
      ),
    );
    if (!created.url) throw new GatewayError(502, 'Stripe returned a checkout session without a payment page; try again.');
    await this.payments.insertCheckout(created.id, workspaceId, dto.amount_cents);
    return { id: created.id, url: created.url };
  }

  /** The local record of a session of the caller's workspace (no Stripe call); another workspace's is 404. */
  async status(session: SessionPrincipal, id: string): Promise<CheckoutStatusDto> {
    this.client();
    const row = /^cs_[A-Za-z0-9_]{1,250}$/.test(id) ? await this.payments.findCheckout(id, session.workspaceId) : null;
    if (!row) throw new NotFoundError(`Checkout session '${id.slice(0, 100)}' not found.`);
    return { status: row.status, amount_micros: row.creditedMicros ?? row.amountCents * MICROS_PER_CENT };
  }

  private client(): Stripe {
    if (!this.stripe || !this.config.stripe.webhookSecret) throw new BillingUnavailableError();
    return this.stripe;
  }

  /** The workspace's Stripe Customer, created once (an idempotency key per workspace guards a race). */
  private async customer(stripe: Stripe, workspaceId: string, email: string): Promise<string> {
    const known = await this.payments.findCustomer(workspaceId);
    if (known) return known;
    const created = await this.callStripe('create the customer', () =>
      stripe.customers.create({ email, metadata: { workspace_id: workspaceId } }, { idempotencyKey: `nexo-customer-${workspaceId}` }),
    );
    return this.payments.saveCustomer(workspaceId, created.id);
  }

  private async callStripe<T>(what: string, call: () => Promise<T>): Promise<T> {
    try {
      return await call();
    } catch (err) {
      const e = err as { type?: string; statusCode?: number; message?: string };
      this.logger.warn(`Stripe could not ${what}: ${e.type ?? 'error'} ${e.statusCode ?? ''} ${e.message ?? ''}`);
      throw new GatewayError(
        502,
        `The payment provider could not ${what} (${e.type ?? 'connection error'}); nothing was charged. Try again.`,
      );
    }
  }
}
