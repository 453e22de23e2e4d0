import type { Request } from 'express';

/** The route label of a request no route matched (an unknown path: 404 whatever was asked). */
export const UNMATCHED_ROUTE = 'unmatched';

/**
 * The template of the route that handled a request (`/dashboard/keys/:id`, `/v1/models/*id`),
 * never its raw path: ids, keys and client-made model ids stay out of metric labels. A request
 * no route took is `unmatched`, or `<prefix>/*` when a static-file mount under a known prefix
 * answered it.
 */
export function routeTemplate(req: Request, staticPrefixes: readonly string[] = []): string {
  const path = (req as { route?: { path?: unknown } }).route?.path;
  if (typeof path === 'string') return `${req.baseUrl ?? ''}${path}` || '/';
  const url = req.originalUrl ?? req.url;
  for (const prefix of staticPrefixes) {
    if (url === prefix || url.startsWith(`${prefix}/`) || url.startsWith(`${prefix}?`)) return `${prefix}/*`;
  }
  return UNMATCHED_ROUTE;
}
