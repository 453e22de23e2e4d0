import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';

/** Debian's Chromium (package `chromium`); browsers cannot be downloaded on the CI machine. */
export const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';

export const SCREENSHOTS = join(__dirname, 'screenshots');

export const WIDTHS = { desktop: { width: 1280, height: 900 }, phone: { width: 390, height: 844 } } as const;

export async function launch(): Promise<Browser> {
  if (!existsSync(CHROMIUM))
    throw new Error(`Chromium is not installed at ${CHROMIUM}: apt-get install -y chromium (or set CHROMIUM_PATH)`);
  return chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--disable-dev-shm-usage',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
  });
}

/** Everything a page reported that a reviewer should see: CSP violations, script errors, failed requests to other origins. */
export interface PageProblems {
  csp: string[];
  errors: string[];
  foreignRequests: string[];
}

/** A fresh context (its own sessionStorage) whose page records problems; `allowedOrigins` may be navigated to. */
export async function openPage(
  browser: Browser,
  origin: string,
  allowedOrigins: string[] = [],
): Promise<{ context: BrowserContext; page: Page; problems: PageProblems }> {
  const context = await browser.newContext({
    viewport: WIDTHS.desktop,
    acceptDownloads: true,
    timezoneId: 'America/New_York',
    locale: 'en-US',
  });
  const page = await context.newPage();
  page.setDefaultTimeout(10_000);
  const problems: PageProblems = { csp: [], errors: [], foreignRequests: [] };
  page.on('console', (msg) => {
    const text = msg.text();
    if (/Content[- ]Security[- ]Policy/i.test(text)) problems.csp.push(text);
  });
  page.on('pageerror', (err) => problems.errors.push(err.message));
  page.on('request', (req) => {
    const url = new URL(req.url());
    if (url.protocol === 'blob:' || url.protocol === 'data:') return;
    if (url.origin !== origin && !allowedOrigins.includes(url.origin)) problems.foreignRequests.push(req.url());
  });
  return { context, page, problems };
}

/** Screenshots of the page at both widths, into test/browser/screenshots (ignored by git). */
export async function screenshots(page: Page, name: string): Promise<void> {
  mkdirSync(SCREENSHOTS, { recursive: true });
  for (const [label, size] of Object.entries(WIDTHS)) {
    await page.setViewportSize(size);
    await page.waitForTimeout(400); // charts follow their container's width
    await page.screenshot({ path: join(SCREENSHOTS, `${name}-${label}.png`), fullPage: true });
  }
  await page.setViewportSize(WIDTHS.desktop);
}
