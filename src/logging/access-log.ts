import type { NextFunction, Request, RequestHandler, Response } from 'express';
import type { GatewayRequest } from '../common/http/request-context';
import { routeTemplate } from '../common/http/route-template';
import { MetricsService } from '../metrics/metrics.service';
import type { AppLogger } from './app-logger';

/** What the guard attaches to a request it authenticated with an API key (keys/). */
interface KeyedRequest extends GatewayRequest {
  apiKey?: { id: string; workspaceId: string };
}

const MAX_MODEL_CHARS = 100;

/**
 * When a response has finished (or its client left: 499), one access line and the request's
 * metrics: method, route template, status, latency, request id, key and workspace ids and the
 * model asked for. Never a header, a key or a body beyond the model field. Runs after the
 * request id middleware (it reads the request's scope); the work happens after the response.
 */
export function accessLog(logger: AppLogger, metrics: MetricsService, staticPrefixes: readonly string[]): RequestHandler {
  return (req: Request, res: Response, next: NextFunction): void => {
    res.once('close', () => {
      const r = req as KeyedRequest;
      const ms = performance.now() - r.startedAt;
      const status = res.writableFinished ? res.statusCode : 499;
      const route = routeTemplate(req, staticPrefixes);
      const stream = String(res.getHeader('content-type') ?? '').startsWith('text/event-stream');
      metrics.observeRequest(req.method, route, status, ms / 1000, r.scope, stream);
      const body = req.body as { model?: unknown } | undefined;
      logger.access({
        method: req.method,
        route,
        status,
        latency_ms: Math.round(ms * 100) / 100,
        request_id: r.id,
        key_id: r.apiKey?.id,
        workspace_id: r.apiKey?.workspaceId,
        model: typeof body?.model === 'string' ? modelField(body.model) : undefined,
      });
    });
    next();
  };
}

/** The model asked for, clipped; a key pasted into the field is not written. */
function modelField(model: string): string {
  return model.includes('nxr_') ? '[redacted]' : model.slice(0, MAX_MODEL_CHARS);
}
