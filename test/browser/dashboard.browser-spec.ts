/// <reference lib="dom" />
// page.evaluate() callbacks run in the browser: they use its globals (sessionStorage, document)
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import type { Browser, Page } from 'playwright-core';
import Stripe from 'stripe';
import { FakeProvider } from '../helpers/fake-provider';
import { FakeStripe } from '../helpers/fake-stripe';
import { TestGateway } from '../helpers/gateway';
import { closeAll, startGatewayUsing } from '../helpers/setup';
import { launch, openPage, screenshots, type PageProblems } from './browser';

/**
 * The dashboard in a real Chromium against a gateway on a fresh database, a local fake provider
 * and a local fake Stripe API: what a customer does, click by click.
 */

const WEBHOOK_SECRET = 'whsec_browser_0123456789abcdef';
const stripe = new Stripe('sk_test_signing_only');
const PASSWORD = 'correct horse battery staple';
const MODEL = 'deepseek-v4-flash';

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

/** `$1,234.567890`, as the app shows exact amounts. */
function usd(micros: number): string {
  const sign = micros < 0 ? '-' : '';
  const abs = Math.abs(micros);
  return `${sign}$${Math.floor(abs / 1e6).toLocaleString('en-US')}.${String(abs % 1e6).padStart(6, '0')}`;
}

function expectClean(problems: PageProblems): void {
  expect(problems.csp).toEqual([]);
  expect(problems.errors).toEqual([]);
  expect(problems.foreignRequests).toEqual([]);
}

async function signUp(page: Page, url: string, email: string): Promise<void> {
  await page.goto(`${url}/`);
  await page.waitForURL(/\/app\/login/);
  await page.getByRole('link', { name: 'Sign up' }).click();
  await page.getByLabel('Email').fill(email);
  await page.getByLabel('Password').fill(PASSWORD);
  await page.getByLabel('Workspace name').fill('Browser Co');
  await page.getByRole('button', { name: 'Sign up' }).click();
  await page.getByRole('heading', { name: 'Overview' }).waitFor();
}

async function goTo(page: Page, label: string): Promise<void> {
  await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: label }).click();
}

describe('the web dashboard in Chromium', () => {
  let browser: Browser;
  let provider: FakeProvider;
  let fakeStripe: FakeStripe;
  let gw: TestGateway;
  let url: string;
  const email = `owner-${randomBytes(4).toString('hex')}@example.com`;
  // carried from one step to the next, as the customer goes
  let page: Page;
  let problems: PageProblems;
  let secret = '';
  let keyId = '';
  let requestId = '';
  let costMicros = 0;

  beforeAll(async () => {
    provider = await FakeProvider.start();
    fakeStripe = await FakeStripe.start({ hostedCheckout: true });
    const port = await freePort();
    url = `http://127.0.0.1:${port}`;
    gw = await startGatewayUsing(provider, {
      providers: ['deepseek', 'openai', 'dashscope'],
      gateway: {
        port,
        env: {
          PUBLIC_URL: url,
          STRIPE_SECRET_KEY: 'sk_test_browser_0123456789',
          STRIPE_WEBHOOK_SECRET: WEBHOOK_SECRET,
          STRIPE_API_BASE: fakeStripe.url,
          SIGNUP_CREDIT_MICROS: '1000000',
          SIGNUPS_PER_ADDRESS_PER_HOUR: '1000',
        },
      },
    });
    browser = await launch();
    ({ page, problems } = await openPage(browser, url, [fakeStripe.url]));
  });

  afterAll(async () => {
    await browser?.close();
    await closeAll(gw, provider, fakeStripe);
  });

  it('signs up and shows the overview with the sign-up credit, the base URL and a snippet', async () => {
    await signUp(page, url, email);
    await expect(page.getByTestId('balance').textContent()).resolves.toBe('$1.000000');
    await expect(page.getByTestId('available').textContent()).resolves.toBe('$1.000000');
    await expect(page.getByTestId('base-url').textContent()).resolves.toBe(`${url}/v1`);
    await expect(page.getByText(`base_url="${url}/v1"`).count()).resolves.toBe(1);
    // the token lives in sessionStorage, never in the address bar
    const token = await page.evaluate(() => sessionStorage.getItem('nexo.session'));
    expect(token).toBeTruthy();
    expect(page.url()).not.toContain(token);
    await screenshots(page, 'overview');
    expectClean(problems);
  });

  it('creates a scoped key with a budget and shows its secret once, with examples', async () => {
    await goTo(page, 'Keys');
    await page.getByRole('button', { name: 'Create key' }).click();
    const dialog = page.getByRole('dialog', { name: 'Create a key' });
    // the form validates before sending
    await dialog.getByRole('button', { name: 'Create key' }).click();
    await dialog.getByText('Give the key a name').waitFor();
    await dialog.getByLabel('Name').fill('browser key');
    await dialog.getByLabel(MODEL).check();
    await dialog.getByLabel('Budget in dollars (optional)').fill('abc');
    await dialog.getByRole('button', { name: 'Create key' }).click();
    await dialog.getByText('Enter an amount in dollars').waitFor();
    await dialog.getByLabel('Budget in dollars (optional)').fill('0.5');
    await dialog.getByLabel('Requests per minute (optional)').fill('120');
    await screenshots(page, 'keys-create');
    await dialog.getByRole('button', { name: 'Create key' }).click();

    const shown = page.getByRole('dialog', { name: 'Your new key' });
    secret = (await shown.getByTestId('new-key-secret').textContent())!;
    expect(secret).toMatch(/^nxr_/);
    await expect(shown.getByText(`Authorization: Bearer ${secret}`).count()).resolves.toBe(1);
    await expect(shown.getByText(`apiKey: '${secret}'`).count()).resolves.toBe(1);
    await screenshots(page, 'keys-secret');
    await shown.getByRole('button', { name: 'I have copied it' }).click();
    await shown.waitFor({ state: 'hidden' });
    // gone from the page and from the browser's storage once the dialog is closed
    await expect(page.content()).resolves.not.toContain(secret);
    const stored = await page.evaluate(() => JSON.stringify({ ...sessionStorage, ...localStorage }));
    expect(stored).not.toContain(secret);

    const row = page.getByTestId('key-row');
    await expect(row.count()).resolves.toBe(1);
    keyId = (await row.getAttribute('data-key-id'))!;
    await expect(row.textContent()).resolves.toContain(MODEL);
    await expect(row.textContent()).resolves.toContain('$0.00 / $0.50');
    await expect(row.textContent()).resolves.toContain('120 RPM');
    await expect(row.getAttribute('data-state')).resolves.toBe('active');
    const key = await gw.db.query('SELECT models, budget_micros, rpm_limit FROM api_keys WHERE id = $1', [keyId]);
    expect(key[0]).toMatchObject({ models: [MODEL], budget_micros: '500000', rpm_limit: 120 });
    await screenshots(page, 'keys');
    expectClean(problems);
  });

  it('the key works with the openai SDK, and the usage page shows the request with its exact cost', async () => {
    const client = gw.openai(secret);
    const { data, response } = await client.chat.completions
      .create({ model: MODEL, messages: [{ role: 'user', content: 'Hi from the browser test' }] })
      .withResponse();
    expect(data.choices[0].message.content).toBeTruthy();
    requestId = response.headers.get('x-request-id')!;
    // a model outside the key's scope is refused
    await expect(
      client.chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'x' }] }),
    ).rejects.toMatchObject({ status: 403 });
    await gw.settled();
    const [log] = await gw.db.query('SELECT cost_micros FROM usage_logs WHERE request_id = $1', [requestId]);
    costMicros = Number(log.cost_micros);
    expect(costMicros).toBeGreaterThan(0);

    await goTo(page, 'Usage');
    const row = page.locator(`[data-testid="log-row"][data-request-id="${requestId}"]`);
    await row.waitFor();
    await expect(row.getByTestId('log-cost').textContent()).resolves.toBe(usd(costMicros));
    await expect(row.textContent()).resolves.toContain('browser key');
    await expect(page.getByTestId('usage-totals').textContent()).resolves.toContain(usd(costMicros));
    await page.locator('.chart').first().waitFor();
    await screenshots(page, 'usage');

    // the overview counts it too
    await goTo(page, 'Overview');
    await expect(page.getByTestId('requests-today').textContent()).resolves.toBe('1');
    await expect(page.getByTestId('balance').textContent()).resolves.toBe(usd(1_000_000 - costMicros));
    expectClean(problems);
  });

  it('filters the logs and exports exactly the filtered logs as CSV', async () => {
    // a second request, by another key, so the filter has something to leave out
    const other = await page.evaluate(async () => {
      const res = await fetch('/dashboard/keys', {
        method: 'POST',
        headers: { authorization: `Bearer ${sessionStorage.getItem('nexo.session')}`, 'content-type': 'application/json' },
        body: JSON.stringify({ name: 'other key' }),
      });
      return (await res.json()) as { key: string; id: string };
    });
    await gw.openai(other.key).chat.completions.create({ model: MODEL, messages: [{ role: 'user', content: 'another one' }] });
    await gw.settled();

    await goTo(page, 'Usage');
    await page.getByTestId('log-row').nth(1).waitFor();
    await expect(page.getByTestId('log-row').count()).resolves.toBe(2);
    await page.getByLabel('Key', { exact: true }).selectOption(keyId);
    await page.getByRole('button', { name: 'Apply' }).click();
    await page.waitForFunction(() => document.querySelectorAll('[data-testid="log-row"]').length === 1);

    const [download] = await Promise.all([page.waitForEvent('download'), page.getByRole('button', { name: 'Export CSV' }).click()]);
    const csv = readFileSync(await download.path(), 'utf8')
      .trim()
      .split('\r\n');
    const header = csv[0].split(',');
    const rows = csv.slice(1).map((line) => Object.fromEntries(line.split(',').map((v, i) => [header[i], v])));
    const session = await page.evaluate(() => sessionStorage.getItem('nexo.session'));
    const api = await gw
      .http()
      .get(`/dashboard/usage-logs?key_id=${keyId}&limit=100`)
      .set('authorization', `Bearer ${session}`)
      .expect(200);
    expect(rows).toHaveLength(api.body.data.length);
    expect(rows.map((r) => r.request_id)).toEqual(api.body.data.map((l: any) => l.request_id));
    for (const [i, l] of api.body.data.entries()) {
      expect(rows[i]).toMatchObject({
        key_id: l.key_id,
        key_name: 'browser key',
        model: l.model,
        cost_micros: String(l.cost_micros),
        status: String(l.status),
      });
    }
    expect(rows[0].request_id).toBe(requestId);
    expectClean(problems);
  });

  it('revokes the key behind a confirmation, and the gateway refuses it', async () => {
    await goTo(page, 'Keys');
    const row = page.locator(`[data-key-id="${keyId}"]`);
    await row.getByRole('button', { name: 'Revoke key browser key' }).click();
    const confirm = page.getByRole('dialog', { name: 'Revoke this key?' });
    await confirm.getByRole('button', { name: 'Cancel' }).click();
    await expect(row.getAttribute('data-state')).resolves.toBe('active');
    await row.getByRole('button', { name: 'Revoke key browser key' }).click();
    await screenshots(page, 'keys-revoke');
    await confirm.getByRole('button', { name: 'Revoke key' }).click();
    await page.locator(`[data-key-id="${keyId}"][data-state="revoked"]`).waitFor();
    await expect(
      gw.openai(secret).chat.completions.create({ model: MODEL, messages: [{ role: 'user', content: 'x' }] }),
    ).rejects.toMatchObject({
      status: 401,
    });
    expectClean(problems);
  });

  it('tops up through Stripe Checkout and shows the credit and the new balance once the webhook arrives', async () => {
    await goTo(page, 'Billing');
    await page.getByRole('heading', { name: 'Top up' }).waitFor();
    await screenshots(page, 'billing');
    // a custom amount outside the bounds is refused before anything is sent
    await page.getByLabel('Other amount').check();
    await page.getByLabel('Amount in dollars').fill('1');
    await page.getByRole('button', { name: 'Continue to payment' }).click();
    await page.getByText('A top-up is from $5.00 to $10,000.00.').waitFor();
    expect(fakeStripe.to('/v1/checkout/sessions')).toHaveLength(0);

    await page.getByLabel('$25.00').check();
    await page.getByRole('button', { name: 'Continue to payment' }).click();
    await page.waitForURL(`${fakeStripe.url}/c/pay/**`);
    const sessionId = new URL(page.url()).pathname.split('/').pop()!;
    const created = fakeStripe.to('/v1/checkout/sessions');
    expect(created).toHaveLength(1);
    expect(created[0].form['line_items[0][price_data][unit_amount]']).toBe('2500');
    const workspaceId = created[0].form.client_reference_id;

    // the customer pays and comes back before Stripe's webhook: the page waits for it
    await page.locator('#pay').click();
    await page.waitForURL(/\/app\/billing\?checkout=/);
    await page.getByText('Waiting for Stripe to confirm your payment').waitFor();
    const before = Number((await gw.db.query('SELECT balance_micros FROM workspaces WHERE id = $1', [workspaceId]))[0].balance_micros);

    const event = {
      id: `evt_${randomBytes(10).toString('hex')}`,
      object: 'event',
      type: 'checkout.session.completed',
      livemode: false,
      created: Math.floor(Date.now() / 1000),
      data: {
        object: {
          id: sessionId,
          object: 'checkout.session',
          mode: 'payment',
          amount_total: 2500,
          currency: 'usd',
          client_reference_id: workspaceId,
          metadata: { workspace_id: workspaceId },
          payment_status: 'paid',
          payment_intent: `pi_${sessionId}`,
        },
      },
    };
    const payload = JSON.stringify(event);
    await gw
      .http()
      .post('/webhooks/stripe')
      .set('content-type', 'application/json')
      .set('stripe-signature', stripe.webhooks.generateTestHeaderString({ payload, secret: WEBHOOK_SECRET }))
      .send(payload)
      .expect(200);

    await page.getByText('$25.000000 added to your balance.').waitFor({ timeout: 15_000 });
    await expect(page.getByTestId('new-balance').textContent()).resolves.toBe(usd(before + 25_000_000));
    await page.locator('[data-testid="ledger-row"][data-kind="topup"]').waitFor();
    await expect(page.locator('[data-testid="ledger-row"][data-kind="topup"]').getByTestId('ledger-amount').textContent()).resolves.toBe(
      '$25.000000',
    );
    // two requests' charges are one row for the day
    await expect(page.locator('[data-testid="ledger-row"][data-kind="charge"]').count()).resolves.toBe(1);
    await screenshots(page, 'billing-return');
    expectClean(problems);
  });

  it('screenshots the models page and the phone layout keeps the navigation reachable', async () => {
    await goTo(page, 'Models');
    await page.getByRole('row').filter({ hasText: MODEL }).waitFor();
    await expect(page.getByRole('button', { name: `Copy model id ${MODEL}` }).count()).resolves.toBe(1);
    await screenshots(page, 'models');
    await page.setViewportSize({ width: 390, height: 844 });
    for (const label of ['Overview', 'Keys', 'Usage', 'Billing', 'Models']) {
      await expect(page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: label }).isVisible()).resolves.toBe(true);
    }
    // nothing wider than the phone's screen but the tables' own scrolling boxes
    const overflow = await page.evaluate(() => document.documentElement.scrollWidth);
    expect(overflow).toBeLessThanOrEqual(390);
    await page.setViewportSize({ width: 1280, height: 900 });
    expectClean(problems);
  });

  it('an expired session sends the user to log in and back to where they were', async () => {
    await goTo(page, 'Usage');
    await page.evaluate(() => sessionStorage.setItem('nexo.session', 'expired.or.forged'));
    await page.getByRole('button', { name: 'Apply' }).click();
    await page.waitForURL(/\/app\/login\?expired=1&next=%2Fusage/);
    await page.getByText('Your session has ended').waitFor();
    await page.getByLabel('Email').fill(email);
    await page.getByLabel('Password').fill(PASSWORD);
    await page.getByRole('button', { name: 'Log in' }).click();
    await page.waitForURL(`${url}/app/usage`);
    await page.getByRole('heading', { name: 'Usage' }).waitFor();
  });

  it('a wrong password shows the error', async () => {
    const { context, page: other, problems: otherProblems } = await openPage(browser, url);
    try {
      await other.goto(`${url}/app/login`);
      await other.getByLabel('Email').fill(email);
      await other.getByLabel('Password').fill('not the password at all');
      await other.getByRole('button', { name: 'Log in' }).click();
      await other.getByRole('alert').filter({ hasText: 'Wrong email or password.' }).waitFor();
      expect(other.url()).toContain('/app/login');
      await screenshots(other, 'login-error');
      expectClean(otherProblems);
    } finally {
      await context.close();
    }
  });

  it("a second user never sees the first one's keys or logs", async () => {
    const { context, page: second, problems: secondProblems } = await openPage(browser, url);
    try {
      await signUp(second, url, `second-${randomBytes(4).toString('hex')}@example.com`);
      await goTo(second, 'Keys');
      await second.getByText('No keys yet').waitFor();
      await goTo(second, 'Usage');
      await second.getByText('No requests match these filters.').waitFor();
      await expect(second.content()).resolves.not.toContain(requestId);
      const token = await second.evaluate(() => sessionStorage.getItem('nexo.session'));
      await gw.http().get(`/dashboard/keys/${keyId}`).set('authorization', `Bearer ${token}`).expect(404);
      await goTo(second, 'Billing');
      await second
        .getByText('No entries yet')
        .waitFor({ state: 'detached' })
        .catch(() => undefined);
      await expect(second.locator('[data-testid="ledger-row"][data-kind="topup"]').count()).resolves.toBe(0);
      await screenshots(second, 'second-user-usage');
      expectClean(secondProblems);
    } finally {
      await context.close();
    }
  });

  it('logs out: the session is ended on the server too', async () => {
    const token = await page.evaluate(() => sessionStorage.getItem('nexo.session'));
    await page.getByRole('button', { name: 'Log out' }).click();
    await page.waitForURL(/\/app\/login/);
    await expect(page.evaluate(() => sessionStorage.getItem('nexo.session'))).resolves.toBeNull();
    await gw.http().get('/dashboard/workspace').set('authorization', `Bearer ${token}`).expect(401);
  });
});

describe('the web dashboard without Stripe keys', () => {
  let browser: Browser;
  let gw: TestGateway;

  beforeAll(async () => {
    gw = await TestGateway.start({ env: { SIGNUP_CREDIT_MICROS: '1000000', SIGNUPS_PER_ADDRESS_PER_HOUR: '1000' } });
    browser = await launch();
  });
  afterAll(async () => {
    await browser?.close();
    await gw?.close();
  });

  it('says plainly that top-ups are not configured, and everything else works', async () => {
    const { context, page, problems } = await openPage(browser, gw.url);
    try {
      await signUp(page, gw.url, `nostripe-${randomBytes(4).toString('hex')}@example.com`);
      await goTo(page, 'Billing');
      await expect(page.getByTestId('topups-disabled').textContent()).resolves.toContain('Top-ups are not configured');
      await expect(page.getByRole('button', { name: 'Continue to payment' }).count()).resolves.toBe(0);
      await page.locator('[data-testid="ledger-row"][data-kind="credit"]').waitFor();
      await screenshots(page, 'billing-not-configured');
      await goTo(page, 'Keys');
      await page.getByRole('button', { name: 'Create key' }).click();
      await page.getByRole('dialog', { name: 'Create a key' }).getByLabel('Name').fill('works anyway');
      await page.getByRole('dialog', { name: 'Create a key' }).getByRole('button', { name: 'Create key' }).click();
      await page.getByTestId('new-key-secret').waitFor();
      expectClean(problems);
    } finally {
      await context.close();
    }
  });
});
