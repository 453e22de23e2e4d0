import { createServer, IncomingMessage, Server, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { randomBytes } from 'node:crypto';

/** What the fake Stripe API saw of one request; `form` is the form-encoded body, keys as sent (`line_items[0][quantity]`). */
export interface StripeRequest {
  method: string;
  path: string;
  headers: IncomingMessage['headers'];
  idempotencyKey: string | undefined;
  form: Record<string, string>;
}

/** An error Stripe's API may answer with. */
export interface StripeFailure {
  status: number;
  type: string;
  message: string;
}

/**
 * A local stand-in for Stripe's API (STRIPE_API_BASE): creates Customers and Checkout Sessions
 * as Stripe answers them, replays the first answer for a repeated Idempotency-Key, records
 * every request, and can be told to fail.
 */
export class FakeStripe {
  readonly requests: StripeRequest[] = [];
  /** Answer the next requests with this error (until cleared). */
  failure: StripeFailure | null = null;
  private server: Server;
  private readonly replies = new Map<string, { status: number; body: unknown }>();
  url: string;

  /** Checkout Sessions' `url`: Stripe's address, or (hosted) a page of this fake that pays by a link to success_url. */
  private hosted = false;
  private readonly sessions = new Map<string, { success_url: string; cancel_url: string }>();

  static async start(options: { hostedCheckout?: boolean } = {}): Promise<FakeStripe> {
    const fake = new FakeStripe();
    fake.hosted = options.hostedCheckout ?? false;
    fake.server = createServer((req, res) => void fake.handle(req, res));
    await new Promise<void>((resolve) => fake.server.listen(0, '127.0.0.1', resolve));
    fake.url = `http://127.0.0.1:${(fake.server.address() as AddressInfo).port}`;
    return fake;
  }

  /** The recorded requests to one path (`/v1/checkout/sessions`). */
  to(path: string): StripeRequest[] {
    return this.requests.filter((r) => r.path === path);
  }

  reset(): void {
    this.requests.length = 0;
    this.failure = null;
  }

  async close(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    const path = (req.url ?? '').split('?')[0];
    const page = /^\/c\/pay\/(cs_test_[0-9a-f]+)$/.exec(path);
    if (req.method === 'GET' && page) return this.checkoutPage(res, page[1]);
    const form = Object.fromEntries(new URLSearchParams(Buffer.concat(chunks).toString('utf8')));
    const idempotencyKey = req.headers['idempotency-key'] as string | undefined;
    this.requests.push({ method: req.method ?? '', path, headers: req.headers, idempotencyKey, form });
    const reply = (status: number, body: unknown) => {
      res.writeHead(status, { 'content-type': 'application/json', 'request-id': `req_${randomBytes(6).toString('hex')}` });
      res.end(JSON.stringify(body));
    };
    if (this.failure) {
      const { status, type, message } = this.failure;
      return reply(status, { error: { type, message } });
    }
    const replayKey = idempotencyKey ? `${path}:${idempotencyKey}` : null;
    const replayed = replayKey ? this.replies.get(replayKey) : undefined;
    if (replayed) return reply(replayed.status, replayed.body);
    const answer = this.answer(req.method ?? '', path, form);
    if (replayKey) this.replies.set(replayKey, answer);
    reply(answer.status, answer.body);
  }

  private answer(method: string, path: string, form: Record<string, string>): { status: number; body: unknown } {
    if (method === 'POST' && path === '/v1/customers') {
      return {
        status: 200,
        body: { id: `cus_${randomBytes(7).toString('hex')}`, object: 'customer', email: form.email ?? null, livemode: false },
      };
    }
    if (method === 'POST' && path === '/v1/checkout/sessions') {
      const id = `cs_test_${randomBytes(12).toString('hex')}`;
      this.sessions.set(id, { success_url: form.success_url, cancel_url: form.cancel_url });
      const amount = Number(form['line_items[0][price_data][unit_amount]']) * Number(form['line_items[0][quantity]'] ?? 1);
      return {
        status: 200,
        body: {
          id,
          object: 'checkout.session',
          mode: form.mode,
          amount_total: amount,
          currency: form['line_items[0][price_data][currency]'],
          client_reference_id: form.client_reference_id ?? null,
          customer: form.customer ?? null,
          metadata: { workspace_id: form['metadata[workspace_id]'] },
          payment_status: 'unpaid',
          status: 'open',
          success_url: form.success_url,
          cancel_url: form.cancel_url,
          url: this.hosted ? `${this.url}/c/pay/${id}` : `https://checkout.stripe.com/c/pay/${id}`,
          livemode: false,
        },
      };
    }
    return { status: 404, body: { error: { type: 'invalid_request_error', message: `Unrecognized request URL (${method}: ${path}).` } } };
  }

  /** The hosted page of a Checkout Session: "Pay" returns to success_url (the test then delivers the webhook), "Back" to cancel_url. */
  private checkoutPage(res: ServerResponse, id: string): void {
    const session = this.sessions.get(id);
    if (!session) {
      res.writeHead(404, { 'content-type': 'text/plain' });
      res.end('No such checkout session');
      return;
    }
    const escape = (s: string) => s.replace(/&/g, '&amp;').replace(/"/g, '&quot;').replace(/</g, '&lt;');
    const href = (url: string) => escape(url.replace('{CHECKOUT_SESSION_ID}', id));
    res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
    res.end(
      `<!doctype html><html><head><title>Fake Stripe Checkout</title></head><body><h1>Fake Stripe Checkout ${id}</h1>` +
        `<a id="pay" href="${href(session.success_url)}">Pay</a> <a id="back" href="${href(session.cancel_url)}">Back</a></body></html>`,
    );
  }
}
