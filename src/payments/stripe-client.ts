import type Stripe from 'stripe';
import { AppConfig } from '../config/app-config';

/** Injection token of the Stripe client; null when STRIPE_SECRET_KEY is not set. */
export const STRIPE_CLIENT = Symbol('STRIPE_CLIENT');

/**
 * A Stripe client for STRIPE_SECRET_KEY, pointed at STRIPE_API_BASE when set (tests use a local
 * fake). The SDK (some 200 modules, about 16 MB) is loaded only when Stripe is configured.
 */
export function createStripeClient(config: AppConfig): Stripe | null {
  if (!config.stripe.secretKey) return null;
  // eslint-disable-next-line @typescript-eslint/no-require-imports -- loaded only when configured
  const StripeSdk = require('stripe') as typeof Stripe;
  const base = config.stripe.apiBase ? new URL(config.stripe.apiBase) : null;
  return new StripeSdk(config.stripe.secretKey, {
    maxNetworkRetries: 1,
    timeout: 20_000,
    telemetry: false,
    ...(base
      ? {
          protocol: base.protocol === 'http:' ? 'http' : 'https',
          host: base.hostname,
          port: base.port || (base.protocol === 'http:' ? 80 : 443),
        }
      : {}),
  });
}

/** Whether the secret key is a live-mode key (events must then be live-mode, and test-mode otherwise). */
export function isLiveKey(secretKey: string): boolean {
  return /^(sk|rk)_live_/.test(secretKey);
}
