import { randomBytes } from 'node:crypto';
import Stripe from 'stripe';
import { reconcile } from '../../src/billing/reconcile';
import { FakeStripe } from '../helpers/fake-stripe';
import { TestGateway } from '../helpers/gateway';
import { closeAll } from '../helpers/setup';

/**
 * Stripe top-ups (CONTRACT §5, §6): Checkout Sessions created through the `stripe` package
 * against a local fake Stripe API, and webhook events signed with the real package's test
 * signatures. No delivery pattern loses or doubles money.
 */

const SECRET = 'whsec_test_0123456789abcdef';
const stripe = new Stripe('sk_test_signing_only');

interface Customer {
  token: string;
  workspaceId: string;
}

describe('Stripe top-ups (end to end)', () => {
  let gw: TestGateway;
  let fake: FakeStripe;

  beforeAll(async () => {
    fake = await FakeStripe.start();
    gw = await TestGateway.start({
      env: {
        STRIPE_SECRET_KEY: 'sk_test_nexo_0123456789',
        STRIPE_WEBHOOK_SECRET: SECRET,
        STRIPE_API_BASE: fake.url,
        PUBLIC_URL: 'https://nexo.example.com/',
        SIGNUP_CREDIT_MICROS: '0',
        SIGNUPS_PER_ADDRESS_PER_HOUR: '1000',
      },
    });
  });
  afterAll(() => closeAll(gw, fake));
  beforeEach(() => fake.reset());

  async function signup(): Promise<Customer> {
    const res = await gw
      .http()
      .post('/auth/signup')
      .send({ email: `s-${randomBytes(6).toString('hex')}@example.com`, password: 'correct horse battery staple', workspace_name: 'Acme' })
      .expect(201);
    return { token: res.body.access_token, workspaceId: res.body.workspace.id };
  }

  const as = (c: Customer) => ({
    get: (path: string) => gw.http().get(path).set('authorization', `Bearer ${c.token}`),
    post: (path: string) => gw.http().post(path).set('authorization', `Bearer ${c.token}`),
  });

  const balance = async (c: Customer): Promise<number> => (await as(c).get('/dashboard/workspace').expect(200)).body.balance_micros;
  const ledger = async (c: Customer) =>
    (await as(c).get('/dashboard/ledger?limit=100').expect(200)).body.data as Array<Record<string, any>>;
  const eventCount = async (): Promise<number> => (await gw.db.query('SELECT count(*)::int AS n FROM stripe_webhook_events'))[0].n;

  async function checkout(c: Customer, amountCents: number): Promise<string> {
    const res = await as(c).post('/dashboard/billing/checkout').send({ amount_cents: amountCents }).expect(201);
    return res.body.id;
  }

  const evtId = () => `evt_${randomBytes(10).toString('hex')}`;

  function sessionEvent(
    type: string,
    id: string,
    c: Customer,
    amountCents: number,
    extra: Record<string, unknown> = {},
  ): Record<string, unknown> {
    return {
      id: evtId(),
      object: 'event',
      type,
      livemode: false,
      created: Math.floor(Date.now() / 1000),
      data: {
        object: {
          id,
          object: 'checkout.session',
          mode: 'payment',
          amount_total: amountCents,
          currency: 'usd',
          client_reference_id: c.workspaceId,
          metadata: { workspace_id: c.workspaceId },
          payment_status: 'paid',
          payment_intent: `pi_${id}`,
          ...extra,
        },
      },
    };
  }

  function chargeEvent(type: string, object: Record<string, unknown>): Record<string, unknown> {
    return { id: evtId(), object: 'event', type, livemode: false, created: Math.floor(Date.now() / 1000), data: { object } };
  }

  function deliver(event: Record<string, unknown>, opts: { timestamp?: number; secret?: string; body?: string } = {}) {
    const payload = JSON.stringify(event);
    const header = stripe.webhooks.generateTestHeaderString({ payload, secret: opts.secret ?? SECRET, timestamp: opts.timestamp });
    return gw
      .http()
      .post('/webhooks/stripe')
      .set('content-type', 'application/json')
      .set('stripe-signature', header)
      .send(opts.body ?? payload);
  }

  /** A customer whose `amountCents` top-up was paid and credited; returns its session id. */
  async function paidTopUp(c: Customer, amountCents: number): Promise<string> {
    const id = await checkout(c, amountCents);
    await deliver(sessionEvent('checkout.session.completed', id, c, amountCents)).expect(200);
    return id;
  }

  describe('checkout', () => {
    it('creates a session with the right amount, currency, workspace and idempotency key, and reuses one customer', async () => {
      const c = await signup();
      const res = await as(c).post('/dashboard/billing/checkout').send({ amount_cents: 2500 }).expect(201);
      expect(res.body).toEqual({
        id: expect.stringMatching(/^cs_test_/),
        url: expect.stringMatching(/^https:\/\/checkout\.stripe\.com\//),
      });

      const [customer] = fake.to('/v1/customers');
      expect(customer.form['metadata[workspace_id]']).toBe(c.workspaceId);
      expect(customer.idempotencyKey).toBeTruthy();
      const [session] = fake.to('/v1/checkout/sessions');
      expect(session.headers.authorization).toBe('Bearer sk_test_nexo_0123456789');
      expect(session.idempotencyKey).toMatch(/\S{16,}/);
      expect(session.form).toMatchObject({
        mode: 'payment',
        client_reference_id: c.workspaceId,
        'metadata[workspace_id]': c.workspaceId,
        'line_items[0][quantity]': '1',
        'line_items[0][price_data][currency]': 'usd',
        'line_items[0][price_data][unit_amount]': '2500',
        'line_items[0][price_data][product_data][name]': 'NexoRouter credits',
        success_url: expect.stringMatching(/^https:\/\/nexo\.example\.com\/.*\{CHECKOUT_SESSION_ID\}/),
        cancel_url: expect.stringMatching(/^https:\/\/nexo\.example\.com\/.*\{CHECKOUT_SESSION_ID\}/),
      });
      const customerId = session.form.customer;
      expect(customerId).toMatch(/^cus_/);

      // pending in the local record, no credit yet
      expect((await as(c).get(`/dashboard/billing/checkout/${res.body.id}`).expect(200)).body).toEqual({
        status: 'pending',
        amount_micros: 25_000_000,
      });
      expect(await balance(c)).toBe(0);

      // the second checkout reuses the customer and has its own idempotency key
      fake.reset();
      await checkout(c, 600);
      expect(fake.to('/v1/customers')).toHaveLength(0);
      const [second] = fake.to('/v1/checkout/sessions');
      expect(second.form.customer).toBe(customerId);
      expect(second.idempotencyKey).not.toBe(session.idempotencyKey);
    });

    it("a client's Idempotency-Key makes a retry return the same session", async () => {
      const c = await signup();
      const first = await as(c)
        .post('/dashboard/billing/checkout')
        .set('idempotency-key', 'retry-1')
        .send({ amount_cents: 700 })
        .expect(201);
      const again = await as(c)
        .post('/dashboard/billing/checkout')
        .set('idempotency-key', 'retry-1')
        .send({ amount_cents: 700 })
        .expect(201);
      expect(again.body.id).toBe(first.body.id);
      const keys = fake.to('/v1/checkout/sessions').map((r) => r.idempotencyKey);
      expect(keys[0]).toBe(keys[1]);
    });

    it.each([[499], [1_000_001], [0], [-500], [12.5], ['1000'], [null]])(
      'refuses amount_cents %p with 400, calling no Stripe API',
      async (amount) => {
        const c = await signup();
        const res = await as(c).post('/dashboard/billing/checkout').send({ amount_cents: amount }).expect(400);
        expect(res.body.error.param).toBe('amount_cents');
        expect(fake.requests.filter((r) => r.path === '/v1/checkout/sessions')).toHaveLength(0);
      },
    );

    it('accepts the bounds themselves, which the dashboard reads before it sends', async () => {
      const c = await signup();
      const config = await as(c).get('/dashboard/billing/config').expect(200);
      expect(config.body).toEqual({ enabled: true, min_cents: 500, max_cents: 1_000_000, currency: 'usd' });
      await checkout(c, 500);
      await checkout(c, 1_000_000);
    });

    it('answers 502 gateway_error in the error shape when Stripe fails, and records nothing', async () => {
      const c = await signup();
      fake.failure = { status: 400, type: 'invalid_request_error', message: 'No such price' };
      const res = await as(c).post('/dashboard/billing/checkout').send({ amount_cents: 1000 }).expect(502);
      expect(res.body.error).toMatchObject({ code: 'gateway_error', type: 'api_error' });
      expect(res.text).not.toContain('sk_test_nexo');
      const rows = await gw.db.query('SELECT count(*)::int AS n FROM stripe_checkout_sessions WHERE workspace_id = $1', [c.workspaceId]);
      expect(rows[0].n).toBe(0);
    });

    it("another workspace's session is 404, like one that does not exist", async () => {
      const a = await signup();
      const b = await signup();
      const id = await checkout(a, 1000);
      await as(b).get(`/dashboard/billing/checkout/${id}`).expect(404);
      await as(a).get('/dashboard/billing/checkout/cs_test_nope').expect(404);
      await gw.http().get(`/dashboard/billing/checkout/${id}`).expect(401);
    });
  });

  describe('webhook', () => {
    it('a paid session credits exactly amount_total × 10,000 micros, with its Stripe reference in the ledger', async () => {
      const c = await signup();
      const id = await checkout(c, 1234);
      await deliver(sessionEvent('checkout.session.completed', id, c, 1234)).expect(200, { received: true });
      expect(await balance(c)).toBe(12_340_000);
      expect((await as(c).get(`/dashboard/billing/checkout/${id}`).expect(200)).body).toEqual({
        status: 'credited',
        amount_micros: 12_340_000,
      });
      const [entry] = await ledger(c);
      expect(entry).toMatchObject({ kind: 'topup', amount_micros: 12_340_000, reference: `stripe:cs:${id}` });
    });

    it('credits the signed amount, never what the checkout asked for', async () => {
      const c = await signup();
      const id = await checkout(c, 1000);
      await deliver(sessionEvent('checkout.session.completed', id, c, 900)).expect(200);
      expect(await balance(c)).toBe(9_000_000);
    });

    it('the same event ten times, five at once, credits once and is acknowledged every time', async () => {
      const c = await signup();
      const id = await checkout(c, 5000);
      const event = sessionEvent('checkout.session.completed', id, c, 5000);
      const concurrent = await Promise.all(Array.from({ length: 5 }, () => deliver(event)));
      for (const res of concurrent) expect(res.status).toBe(200);
      for (let i = 0; i < 5; i++) await deliver(event).expect(200);
      expect(await balance(c)).toBe(50_000_000);
      expect((await ledger(c)).filter((e) => e.reference === `stripe:cs:${id}`)).toHaveLength(1);
      const [row] = await gw.db.query('SELECT outcome, deliveries FROM stripe_webhook_events WHERE event_id = $1', [event.id]);
      expect(row).toEqual({ outcome: 'credited', deliveries: 10 });
    });

    it('two different events for one session credit once, even at once', async () => {
      const c = await signup();
      const id = await checkout(c, 800);
      const completed = sessionEvent('checkout.session.completed', id, c, 800);
      const succeeded = sessionEvent('checkout.session.async_payment_succeeded', id, c, 800);
      const again = sessionEvent('checkout.session.completed', id, c, 800);
      const results = await Promise.all([deliver(completed), deliver(succeeded), deliver(again)]);
      expect(results.map((r) => r.status)).toEqual([200, 200, 200]);
      expect(await balance(c)).toBe(8_000_000);
    });

    it('an unpaid session credits nothing until its async success', async () => {
      const c = await signup();
      const id = await checkout(c, 1500);
      await deliver(sessionEvent('checkout.session.completed', id, c, 1500, { payment_status: 'unpaid' })).expect(200);
      expect(await balance(c)).toBe(0);
      expect((await as(c).get(`/dashboard/billing/checkout/${id}`).expect(200)).body.status).toBe('pending');
      await deliver(sessionEvent('checkout.session.async_payment_succeeded', id, c, 1500)).expect(200);
      expect(await balance(c)).toBe(15_000_000);
      expect((await as(c).get(`/dashboard/billing/checkout/${id}`).expect(200)).body.status).toBe('credited');
    });

    it('an unpaid session whose async payment fails credits nothing, and says failed', async () => {
      const c = await signup();
      const id = await checkout(c, 1500);
      await deliver(sessionEvent('checkout.session.completed', id, c, 1500, { payment_status: 'unpaid' })).expect(200);
      await deliver(sessionEvent('checkout.session.async_payment_failed', id, c, 1500, { payment_status: 'unpaid' })).expect(200);
      expect(await balance(c)).toBe(0);
      expect((await as(c).get(`/dashboard/billing/checkout/${id}`).expect(200)).body).toEqual({
        status: 'failed',
        amount_micros: 15_000_000,
      });
    });

    it('an expired session says expired and credits nothing', async () => {
      const c = await signup();
      const id = await checkout(c, 900);
      await deliver(sessionEvent('checkout.session.expired', id, c, 900, { payment_status: 'unpaid', payment_intent: null })).expect(200);
      expect((await as(c).get(`/dashboard/billing/checkout/${id}`).expect(200)).body.status).toBe('expired');
      expect(await balance(c)).toBe(0);
    });

    it('a bad signature, a stale timestamp, a tampered body or no signature is 400 and changes nothing', async () => {
      const c = await signup();
      const id = await checkout(c, 1000);
      const event = sessionEvent('checkout.session.completed', id, c, 1000);
      const before = await eventCount();
      await deliver(event, { secret: 'whsec_wrong' }).expect(400);
      await deliver(event, { timestamp: Math.floor(Date.now() / 1000) - 301 }).expect(400);
      const tampered = JSON.stringify(sessionEvent('checkout.session.completed', id, c, 1_000_000)).replace(
        /"id":"evt_\w+"/,
        `"id":"${String(event.id)}"`,
      );
      await deliver(event, { body: tampered }).expect(400);
      const res = await gw.http().post('/webhooks/stripe').set('content-type', 'application/json').send(JSON.stringify(event)).expect(400);
      expect(res.body.error).toMatchObject({ code: 'invalid_request_error' });
      expect(await balance(c)).toBe(0);
      expect(await eventCount()).toBe(before);
      expect((await as(c).get(`/dashboard/billing/checkout/${id}`).expect(200)).body.status).toBe('pending');
    });

    it('a credit that cannot be recorded answers 5xx so Stripe retries, and the retry credits once', async () => {
      const c = await signup();
      const id = await checkout(c, 1000);
      const event = sessionEvent('checkout.session.completed', id, c, 1000);
      await gw.db.query(`
        CREATE OR REPLACE FUNCTION nexo_test_refuse_entry() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN RAISE EXCEPTION 'ledger unavailable'; END $$`);
      await gw.db.query(`
        CREATE TRIGGER nexo_test_refuse_entry BEFORE INSERT ON ledger_entries FOR EACH ROW
        WHEN (NEW.reference = 'stripe:cs:${id}') EXECUTE FUNCTION nexo_test_refuse_entry()`);
      try {
        const res = await deliver(event);
        expect(res.status).toBeGreaterThanOrEqual(500);
        expect(res.body.error.code).toBe('gateway_error');
        expect(await balance(c)).toBe(0);
        expect((await as(c).get(`/dashboard/billing/checkout/${id}`).expect(200)).body.status).toBe('pending');
      } finally {
        await gw.db.query('DROP TRIGGER nexo_test_refuse_entry ON ledger_entries');
        await gw.db.query('DROP FUNCTION nexo_test_refuse_entry()');
      }
      await deliver(event).expect(200);
      await deliver(event).expect(200);
      expect(await balance(c)).toBe(10_000_000);
      const [row] = await gw.db.query('SELECT outcome, deliveries FROM stripe_webhook_events WHERE event_id = $1', [event.id]);
      expect(row).toEqual({ outcome: 'credited', deliveries: 3 });
    });

    it('a livemode event for a test key credits nothing', async () => {
      const c = await signup();
      const id = await checkout(c, 1000);
      await deliver({ ...sessionEvent('checkout.session.completed', id, c, 1000), livemode: true }).expect(200);
      expect(await balance(c)).toBe(0);
    });

    it('unknown types, unknown workspaces and other currencies are 200, recorded for the operator', async () => {
      const c = await signup();
      const unhandled = chargeEvent('customer.created', { id: 'cus_x', object: 'customer' });
      await deliver(unhandled).expect(200);
      const stranger = sessionEvent(
        'checkout.session.completed',
        'cs_test_stranger',
        { ...c, workspaceId: '00000000-0000-4000-8000-000000000000' },
        1000,
      );
      await deliver(stranger).expect(200);
      const euros = sessionEvent('checkout.session.completed', 'cs_test_euros', c, 1000, { currency: 'eur' });
      await deliver(euros).expect(200);
      expect(await balance(c)).toBe(0);

      const list = await gw.admin().get('/admin/webhook-events?limit=100').expect(200);
      const outcome = (id: unknown) => list.body.data.find((e: { event_id: string }) => e.event_id === id)?.outcome;
      expect(outcome(unhandled.id)).toBe('unhandled');
      expect(outcome(stranger.id)).toBe('unknown_workspace');
      expect(outcome(euros.id)).toBe('unsupported_currency');
      const page = await gw.admin().get('/admin/webhook-events?limit=1').expect(200);
      expect(page.body.data).toHaveLength(1);
      expect(page.body.next_cursor).toEqual(expect.any(String));
      await gw.http().get('/admin/webhook-events').expect(401);
    });

    describe('refunds and disputes', () => {
      const charge = (id: string, amountRefunded: number, refunds: Array<[string, number]> | null) => ({
        id: `ch_${id}`,
        object: 'charge',
        amount: 10_000,
        currency: 'usd',
        payment_intent: `pi_${id}`,
        amount_refunded: amountRefunded,
        refunded: amountRefunded === 10_000,
        ...(refunds === null
          ? {}
          : {
              refunds: {
                object: 'list',
                has_more: false,
                data: refunds.map(([rid, amount], i) => ({
                  id: rid,
                  object: 'refund',
                  amount,
                  currency: 'usd',
                  status: 'succeeded',
                  created: 1_700_000_000 + i,
                })),
              },
            }),
      });

      it('a partial refund debits once even when delivered twice; a second one debits only its part', async () => {
        const c = await signup();
        const id = await paidTopUp(c, 10_000);
        const first = chargeEvent('charge.refunded', charge(id, 2_000, [['re_1' + id, 2_000]]));
        await deliver(first).expect(200);
        await deliver(first).expect(200);
        await deliver(chargeEvent('charge.refunded', charge(id, 2_000, [['re_1' + id, 2_000]]))).expect(200);
        expect(await balance(c)).toBe(80_000_000);
        const second = chargeEvent(
          'charge.refunded',
          charge(id, 5_000, [
            ['re_1' + id, 2_000],
            ['re_2' + id, 3_000],
          ]),
        );
        await Promise.all([deliver(second), deliver(second)]);
        expect(await balance(c)).toBe(50_000_000);
        const refunds = (await ledger(c)).filter((e) => e.kind === 'refund');
        expect(refunds.map((e) => [e.reference, e.amount_micros]).sort()).toEqual([
          [`stripe:refund:re_1${id}`, -20_000_000],
          [`stripe:refund:re_2${id}`, -30_000_000],
        ]);
      });

      it('without the refund list, debits each change of the cumulative amount_refunded once, in any order', async () => {
        const c = await signup();
        const id = await paidTopUp(c, 10_000);
        const later = chargeEvent('charge.refunded', charge(id, 6_000, null));
        const earlier = chargeEvent('charge.refunded', charge(id, 1_000, null));
        await deliver(later).expect(200);
        await deliver(earlier).expect(200);
        await deliver(later).expect(200);
        expect(await balance(c)).toBe(40_000_000);
      });

      it('a refund may take the balance below zero', async () => {
        const c = await signup();
        const id = await paidTopUp(c, 10_000);
        await gw
          .admin()
          .post(`/admin/workspaces/${c.workspaceId}/credits`)
          .send({ amount_micros: -90_000_000, reason: 'spent' })
          .expect(201);
        await deliver(chargeEvent('charge.refunded', charge(id, 10_000, [['re_all' + id, 10_000]]))).expect(200);
        expect(await balance(c)).toBe(-90_000_000);
      });

      it('a refund delivered before its session completed is debited once the session completes', async () => {
        const c = await signup();
        const id = await checkout(c, 10_000);
        const refund = chargeEvent('charge.refunded', charge(id, 4_000, [['re_early' + id, 4_000]]));
        await deliver(refund).expect(200);
        expect(await balance(c)).toBe(0); // nothing credited, nothing to refund yet
        const events = await gw.admin().get('/admin/webhook-events?limit=100').expect(200);
        expect(events.body.data.find((e: { event_id: string }) => e.event_id === refund.id)?.outcome).toBe('unmatched_charge');

        await deliver(sessionEvent('checkout.session.completed', id, c, 10_000)).expect(200);
        expect(await balance(c)).toBe(100_000_000 - 40_000_000);
        await deliver(refund).expect(200); // Stripe's own retry changes nothing more
        await deliver(sessionEvent('checkout.session.completed', id, c, 10_000)).expect(200);
        expect(await balance(c)).toBe(60_000_000);
        const after = await gw.admin().get('/admin/webhook-events?limit=100').expect(200);
        expect(after.body.data.find((e: { event_id: string }) => e.event_id === refund.id)?.outcome).toBe('debited');
        expect((await ledger(c)).filter((e) => e.kind === 'refund').map((e) => e.reference)).toEqual([`stripe:refund:re_early${id}`]);
      });

      it('a refund of an unknown charge is 200 and moves nothing', async () => {
        const c = await signup();
        await paidTopUp(c, 1_000);
        await deliver(chargeEvent('charge.refunded', charge('unknown', 1_000, null))).expect(200);
        expect(await balance(c)).toBe(10_000_000);
      });

      const dispute = (id: string, status: string, amount = 10_000) => ({
        id: `dp_${id}`,
        object: 'dispute',
        amount,
        currency: 'usd',
        charge: `ch_${id}`,
        payment_intent: `pi_${id}`,
        status,
      });

      it('a dispute debits what it disputes, and a won dispute credits it back, once each', async () => {
        const c = await signup();
        const id = await paidTopUp(c, 10_000);
        const created = chargeEvent('charge.dispute.created', dispute(id, 'needs_response'));
        await deliver(created).expect(200);
        await deliver(created).expect(200);
        expect(await balance(c)).toBe(0);
        const won = chargeEvent('charge.dispute.closed', dispute(id, 'won'));
        await Promise.all([deliver(won), deliver(won)]);
        await deliver(won).expect(200);
        expect(await balance(c)).toBe(100_000_000);
        const refs = (await ledger(c)).filter((e) => e.kind === 'dispute').map((e) => [e.reference, e.amount_micros]);
        expect(refs.sort()).toEqual([
          [`stripe:dispute-won:dp_${id}`, 100_000_000],
          [`stripe:dispute:dp_${id}`, -100_000_000],
        ]);
      });

      it('a lost dispute keeps its debit; a won dispute seen before its creation nets to zero', async () => {
        const c = await signup();
        const lost = await paidTopUp(c, 2_000);
        await deliver(chargeEvent('charge.dispute.created', dispute(lost, 'needs_response', 2_000))).expect(200);
        await deliver(chargeEvent('charge.dispute.closed', dispute(lost, 'lost', 2_000))).expect(200);
        expect(await balance(c)).toBe(0);

        const early = await paidTopUp(c, 3_000);
        await deliver(chargeEvent('charge.dispute.closed', dispute(early, 'won', 3_000))).expect(200);
        await deliver(chargeEvent('charge.dispute.created', dispute(early, 'needs_response', 3_000))).expect(200);
        expect(await balance(c)).toBe(30_000_000);
      });
    });
  });

  it('without Stripe keys the billing routes answer 503 and the rest works', async () => {
    const plain = await TestGateway.start({ shareWith: gw, env: { SIGNUPS_PER_ADDRESS_PER_HOUR: '1000' } });
    try {
      const res = await plain
        .http()
        .post('/auth/signup')
        .send({ email: `p-${randomBytes(6).toString('hex')}@example.com`, password: 'correct horse battery staple', workspace_name: 'P' })
        .expect(201);
      const auth = `Bearer ${res.body.access_token}`;
      const refused = await plain
        .http()
        .post('/dashboard/billing/checkout')
        .set('authorization', auth)
        .send({ amount_cents: 1000 })
        .expect(503);
      expect(refused.body.error.message).toMatch(/STRIPE_SECRET_KEY/);
      await plain.http().get('/dashboard/billing/checkout/cs_test_x').set('authorization', auth).expect(503);
      await plain.http().post('/webhooks/stripe').set('stripe-signature', 't=1,v1=x').send('{}').expect(503);
      await plain.http().get('/dashboard/workspace').set('authorization', auth).expect(200);
      // the dashboard asks first, so it can say top-ups are not configured before anyone clicks
      const config = await plain.http().get('/dashboard/billing/config').set('authorization', auth).expect(200);
      expect(config.body).toEqual({ enabled: false, min_cents: 500, max_cents: 1_000_000, currency: 'usd' });
      await plain.http().get('/dashboard/billing/config').expect(401);
    } finally {
      await plain.close();
    }
  });

  it('leaves the books reconciled', async () => {
    expect(await reconcile(gw.db)).toEqual([]);
  });
});
