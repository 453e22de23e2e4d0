import type { NextFunction, Request, Response } from 'express';
import express from 'express';
import { ApiError } from '../errors/api-error';
import type { GatewayRequest } from './request-context';
import { newRequestId } from './request-id';

export const MAX_BODY_BYTES = 32 * 1024 * 1024;


/** Gives every request its id and start time before anything else runs. */
export function requestIdMiddleware(req: Request, res: Response, next: NextFunction): void {
  const r = req as GatewayRequest;
  r.id = newRequestId();
  r.startedAt = performance.now();
  res.setHeader('x-request-id', r.id);
  next();
}

/**
 * JSON bodies up to 32 MB, whatever the Content-Type (curl users forget it). A body that is
 * not JSON is not answered here: the error is kept on the request and reported after the
 * key check, so a bad key with a bad body is 401 (CONTRACT §3, check order). An oversized
 * body is 413 at once.
 */
export function jsonBodyMiddleware(): (req: Request, res: Response, next: NextFunction) => void {
  const parse = express.json({
    limit: MAX_BODY_BYTES,
    type: () => true,
    strict: false,
    verify: (req, _res, buf) => {
      (req as GatewayRequest).bodyBytes = buf.length;
    },
  });
  return (req, res, next) => {
    if (req.method === 'GET' || req.method === 'HEAD' || req.method === 'OPTIONS') return next();
    parse(req, res, (err?: unknown) => {
      if (!err) return next();
      const e = err as { type?: string; status?: number };
      if (e.type === 'entity.too.large') {
        const error = new ApiError(413, 'request_too_large', `Request body is larger than the ${MAX_BODY_BYTES / 1024 / 1024} MB limit.`);
        return void res.status(error.status).json(error.toBody());
      }
      if (e.type === 'request.aborted') return; // the client went away
      (req as GatewayRequest).bodyParseError =
        e.type === 'entity.parse.failed'
          ? 'We could not parse the JSON body of your request. Send a valid JSON object.'
          : 'The request body could not be read: send UTF-8 JSON.';
      req.body = undefined;
      next();
    });
  };
}
