import { GatewayError } from '../common/errors/api-error';

/** STRIPE_SECRET_KEY or STRIPE_WEBHOOK_SECRET is not set: the billing routes answer 503 (CONTRACT §1). */
export class BillingUnavailableError extends GatewayError {
  constructor() {
    super(503, 'Billing is not configured on this gateway: STRIPE_SECRET_KEY and STRIPE_WEBHOOK_SECRET must be set to take payments.');
  }
}
