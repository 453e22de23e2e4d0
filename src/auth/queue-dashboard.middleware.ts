import type { NextFunction, Request, Response } from 'express';
import type { AppConfig } from '../config/app-config';
import { AdminAuthError, ApiError } from '../common/errors/api-error';
import { adminTokenMatches, bearerToken } from './auth.guard';

const SAFE_METHODS = new Set(['GET', 'HEAD']);

/**
 * The queue dashboard (Bull Board) is a browser page: it takes the admin token as a bearer
 * token, or as the password of HTTP basic auth (any user name) so a browser can prompt for it.
 *
 * A browser sends cached basic credentials with any request to the origin, cross-site ones
 * included (a `text/plain` form POST needs no preflight), so basic auth only opens safe
 * methods, or a state-changing one that is provably same-origin; the bearer token opens all.
 */
export function queueDashboardAuth(config: AppConfig) {
  return (req: Request, res: Response, next: NextFunction): void => {
    const header = req.headers.authorization;
    const bearer = bearerToken(header);
    let basic: string | undefined;
    if (!bearer && header?.startsWith('Basic ')) {
      const decoded = Buffer.from(header.slice(6), 'base64').toString('utf8');
      basic = decoded.slice(decoded.indexOf(':') + 1);
    }
    if (!config.adminToken) {
      const error = new ApiError(404, 'not_found', 'The admin API is disabled: ADMIN_TOKEN is not set.');
      return void res.status(error.status).json(error.toBody());
    }
    if (bearer && adminTokenMatches(config.adminToken, bearer)) return next();
    if (basic !== undefined && adminTokenMatches(config.adminToken, basic)) {
      if (SAFE_METHODS.has(req.method) || isSameOrigin(req)) return next();
      const error = new ApiError(
        403,
        'cross_site_request',
        'This change to the queue dashboard did not come from the dashboard itself. Use it from its own page, or send the admin token as a bearer token.',
      );
      return void res.status(error.status).json(error.toBody());
    }
    res.setHeader('www-authenticate', 'Basic realm="NexoRouter queues"');
    const error = new AdminAuthError();
    res.status(error.status).json(error.toBody());
  };
}

/**
 * Provably sent by a page of this origin: the browser says so (`Sec-Fetch-Site: same-origin`),
 * or the `Origin` it set names this host. Browsers set both headers themselves; a page of
 * another site cannot forge them.
 */
export function isSameOrigin(req: Request): boolean {
  const site = req.headers['sec-fetch-site'];
  if (site !== undefined) return site === 'same-origin';
  const origin = req.headers.origin;
  const host = req.headers.host;
  if (typeof origin !== 'string' || !host) return false;
  try {
    return new URL(origin).host.toLowerCase() === host.toLowerCase();
  } catch {
    return false; // includes Origin: null (sandboxed frames, some redirects)
  }
}
