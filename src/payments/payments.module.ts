import { Module } from '@nestjs/common';
import { BillingModule } from '../billing/billing.module';
import { AppConfig } from '../config/app-config';
import { WorkspacesModule } from '../workspaces/workspaces.module';
import { CheckoutController } from './checkout.controller';
import { CheckoutService } from './checkout.service';
import { PaymentsRepository } from './payments.repository';
import { createStripeClient, STRIPE_CLIENT } from './stripe-client';
import { StripeWebhookController } from './stripe-webhook.controller';
import { StripeWebhookService } from './stripe-webhook.service';

/** Stripe top-ups: Checkout Sessions for the dashboard, and the signed, exactly-once webhook that credits them. */
@Module({
  imports: [BillingModule, WorkspacesModule],
  controllers: [CheckoutController, StripeWebhookController],
  providers: [
    { provide: STRIPE_CLIENT, useFactory: createStripeClient, inject: [AppConfig] },
    PaymentsRepository,
    CheckoutService,
    StripeWebhookService,
  ],
  exports: [StripeWebhookService],
})
export class PaymentsModule {}
