import type { NextFunction, Request, Response } from 'express';

/**
 * Cross-origin access to the public API (`/v1/...`), as OpenAI's own API allows it: a web page
 * of any origin may call it (the `openai` SDK with `dangerouslyAllowBrowser`, a fetch). It is
 * authenticated by a bearer key the page sends, never by cookies, so allowing an origin grants
 * it nothing it does not already hold. Preflights are answered here, before routing; every
 * answer to a page (errors and streams included) names `*` as the allowed origin and lets the
 * page read its headers (`x-request-id`, `x-nexo-cost-micros`, the rate-limit headers,
 * `retry-after`). The dashboard, admin and metrics APIs send no CORS headers: same origin only.
 * A request without an `Origin` header (an SDK on a server, curl) gets none either.
 */
export function publicApiCors(req: Request, res: Response, next: NextFunction): void {
  if (req.headers.origin === undefined || !isPublicApi(req.url)) {
    next();
    return;
  }
  res.setHeader('Access-Control-Allow-Origin', '*');
  if (req.method === 'OPTIONS' && req.headers['access-control-request-method'] !== undefined) {
    res.statusCode = 204;
    res.setHeader('Access-Control-Allow-Methods', 'GET, POST, OPTIONS');
    // whatever the page's SDK sends (the openai SDK adds x-stainless-* and openai-* headers)
    const asked = req.headers['access-control-request-headers'];
    if (asked) res.setHeader('Access-Control-Allow-Headers', asked);
    res.setHeader('Access-Control-Max-Age', '86400');
    res.setHeader('Vary', 'Access-Control-Request-Headers');
    res.end();
    return;
  }
  res.setHeader('Access-Control-Expose-Headers', '*');
  next();
}

function isPublicApi(url: string): boolean {
  return url.startsWith('/v1/') || url === '/v1' || url.startsWith('/v1?');
}
