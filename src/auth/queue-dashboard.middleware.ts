import type { NextFunction, Request, Response } from 'express';
import type { AppConfig } from '../config/app-config';
import { AdminAuthError, ApiError } from '../common/errors/api-error';
import { adminTokenMatches, bearerToken } from './auth.guard';

/**
 * The queue dashboard (Bull Board) is a browser page: it takes the admin token as a bearer
 * token, or as the password of HTTP basic auth (any user name) so a browser can prompt for it.
 */
export function queueDashboardAuth(config: AppConfig) {
  return (req: Request, res: Response, next: NextFunction): void => {
    const header = req.headers.authorization;
    let presented = bearerToken(header);
    if (!presented && header?.startsWith('Basic ')) {
      const decoded = Buffer.from(header.slice(6), 'base64').toString('utf8');
      presented = decoded.slice(decoded.indexOf(':') + 1);
    }
    if (config.adminToken && adminTokenMatches(config.adminToken, presented)) return next();
    if (config.adminToken) res.setHeader('www-authenticate', 'Basic realm="NexoRouter queues"');
    const error = config.adminToken ? new AdminAuthError() : new ApiError(404, 'not_found', 'The admin API is disabled: ADMIN_TOKEN is not set.');
    res.status(error.status).json(error.toBody());
  };
}
