/// <reference lib="dom" />
// page.evaluate() callbacks run in the browser: they use its globals (fetch)
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Browser } from 'playwright-core';
import { FakeProvider } from '../helpers/fake-provider';
import { TestGateway } from '../helpers/gateway';
import { closeAll, startWithFakeProvider } from '../helpers/setup';
import { launch } from './browser';

/**
 * A web page of another origin calls the public API with fetch, as the openai SDK does in a
 * browser: Chromium's own CORS checks (the preflight of an authorized JSON POST, what the page
 * may read) let it through; the dashboard API stays closed to it.
 */
describe('the public API from a page of another origin (Chromium)', () => {
  let gw: TestGateway;
  let provider: FakeProvider;
  let key: string;
  let browser: Browser;
  let site: Server;
  let siteUrl: string;

  beforeAll(async () => {
    ({ gw, provider } = await startWithFakeProvider({ providers: 'deepseek' }));
    ({ key } = await gw.workspaceWithKey());
    // another origin: another port
    site = createServer((_req, res) => res.end('<!doctype html><title>a customer app</title>'));
    await new Promise<void>((resolve) => site.listen(0, '127.0.0.1', resolve));
    siteUrl = `http://127.0.0.1:${(site.address() as AddressInfo).port}`;
    browser = await launch();
  });
  afterAll(async () => {
    await browser?.close();
    await new Promise((resolve) => site?.close(resolve));
    await closeAll(gw, provider);
  });

  it('reads a completion, its request id and its cost, and is kept out of the dashboard API', async () => {
    const page = await browser.newPage();
    await page.goto(siteUrl);
    const answer = await page.evaluate(
      async ({ baseURL, key }) => {
        const res = await fetch(`${baseURL}/chat/completions`, {
          method: 'POST',
          headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json', 'x-stainless-lang': 'js' },
          body: JSON.stringify({ model: 'deepseek-v4-flash', messages: [{ role: 'user', content: 'hi' }] }),
        });
        const body = (await res.json()) as { choices: Array<{ message: { content: string } }> };
        return {
          status: res.status,
          content: body.choices[0].message.content,
          requestId: res.headers.get('x-request-id'),
          cost: res.headers.get('x-nexo-cost-micros'),
        };
      },
      { baseURL: gw.baseURL, key },
    );
    expect(answer.status).toBe(200);
    expect(answer.content).toBe('Hello from the fake provider');
    expect(answer.requestId).toMatch(/^req_/);
    expect(Number(answer.cost)).toBeGreaterThan(0);

    const dashboard = await page.evaluate(async (url) => {
      try {
        const res = await fetch(`${url}/dashboard/keys`, { headers: { authorization: 'Bearer x' } });
        return `answered ${res.status}`;
      } catch (err) {
        return `blocked: ${(err as Error).name}`;
      }
    }, gw.url);
    expect(dashboard).toBe('blocked: TypeError');
    await page.close();
  });
});
