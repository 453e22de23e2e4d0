import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { TestGateway } from '../helpers/gateway';

/** The dashboard's static files (dist/web, built by the global setup) as the gateway serves them. */
describe('web dashboard serving', () => {
  let gw: TestGateway;
  const indexHtml = readFileSync(join(__dirname, '..', '..', 'dist', 'web', 'index.html'), 'utf8');

  beforeAll(async () => {
    gw = await TestGateway.start();
  });
  afterAll(() => gw.close());

  it('redirects / to the dashboard', async () => {
    const res = await gw.http().get('/').expect(302);
    expect(res.headers.location).toBe('/app/');
  });

  it('serves the app with a strict Content-Security-Policy and hardening headers', async () => {
    const res = await gw.http().get('/app/').expect(200);
    expect(res.headers['content-type']).toMatch(/^text\/html/);
    expect(res.text).toBe(indexHtml);
    const csp = res.headers['content-security-policy'];
    expect(csp).toContain("default-src 'self'");
    expect(csp).toContain("script-src 'self'");
    expect(csp).toContain("style-src 'self'");
    expect(csp).toContain("frame-ancestors 'none'");
    expect(csp).toContain("object-src 'none'");
    expect(csp).not.toMatch(/unsafe-inline|unsafe-eval|https:|\*/);
    expect(res.headers['x-content-type-options']).toBe('nosniff');
    expect(res.headers['referrer-policy']).toBe('no-referrer');
    expect(res.headers['cross-origin-opener-policy']).toBe('same-origin');
    expect(res.headers['cache-control']).toBe('no-cache');
    expect(res.headers['x-powered-by']).toBeUndefined();
  });

  it('answers index.html for the routes of the app (history fallback inside /app/ only)', async () => {
    for (const path of ['/app/keys', '/app/billing/return?session_id=cs_test_1', '/app/usage/', '/app']) {
      const res = await gw.http().get(path).redirects(1);
      expect(res.status).toBe(200);
      expect(res.text).toBe(indexHtml);
    }
  });

  it('serves hashed assets for a year and the page loads only its own files', async () => {
    const assets = [...indexHtml.matchAll(/(?:src|href)="([^"]+)"/g)].map((m) => m[1]);
    expect(assets.length).toBeGreaterThan(0);
    for (const asset of assets) {
      // no third-party script, style or font: every reference is the gateway's own /app/ file
      expect(asset.startsWith('/app/')).toBe(true);
      const res = await gw.http().get(asset).expect(200);
      if (asset.startsWith('/app/assets/')) expect(res.headers['cache-control']).toBe('public, max-age=31536000, immutable');
    }
    // no inline script: the CSP would block it
    expect(indexHtml).not.toMatch(/<script(?![^>]*\ssrc=)[^>]*>/);
  });

  it('keeps unknown files and API routes 404 in the error shape', async () => {
    for (const path of ['/app/assets/missing.js', '/app/favicon-missing.ico', '/v1/nope', '/dashboard/nope', '/apples']) {
      const res = await gw.http().get(path).expect(404);
      expect(res.body.error).toMatchObject({ code: 'not_found' });
    }
    // the API is not given the dashboard's headers
    const api = await gw.http().get('/v1/nope').expect(404);
    expect(api.headers['content-security-policy']).toBeUndefined();
  });

  it('never serves files outside dist/web', async () => {
    for (const path of ['/app/../package.json', '/app/%2e%2e/package.json', '/app/..%2f..%2fpackage.json', '/app/.build-stamp']) {
      const res = await gw.http().get(path);
      expect(res.text).not.toContain('"dependencies"');
      expect([200, 301, 302, 400, 403, 404]).toContain(res.status);
      if (res.status === 200) expect(res.text).toBe(indexHtml);
    }
  });

  it('answers HEAD and refuses other methods on the app like any unknown route', async () => {
    await gw.http().head('/app/keys').expect(200);
    const res = await gw.http().post('/app/keys').send({}).expect(404);
    expect(res.body.error.code).toBe('not_found');
  });
});
