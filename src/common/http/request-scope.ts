import { AsyncLocalStorage } from 'node:async_hooks';
import type { NextFunction, Request, Response } from 'express';

/**
 * What the gateway knows about the request being handled: its id (on every log line it causes)
 * and the time its providers took (the gateway's own overhead is the rest). Made by the request
 * id middleware and kept on the request (`GatewayRequest.scope`).
 */
export interface RequestScope {
  readonly id: string;
  /** Seconds spent waiting for providers, summed over every attempt. */
  upstreamSeconds: number;
  /** The provider last called, if any. */
  provider: string | null;
}

/**
 * The scope of the Express request being handled, for the log lines its handlers cause deep
 * down. The two proxy routes do not use it: on Node 20 an enabled AsyncLocalStorage runs a
 * promise hook for every promise in the process (about a tenth of the CPU a proxied request
 * costs), so the proxy passes its request id to whatever logs instead, and the storage is
 * disabled whenever no Express request is in flight.
 */
export const requestScope = new AsyncLocalStorage<RequestScope>();

/** The id of the Express request being handled here, or undefined outside one. */
export function currentRequestId(): string | undefined {
  return requestScope.getStore()?.id;
}

/** What tags a log line with a request's id: the last parameter but its context, `logger.warn(message, tagOf(id))`. */
export interface RequestTag {
  request_id: string;
}

/** The tag of a request's log lines, for code of the proxy routes, which run outside the storage. */
export function tagOf(requestId: string): RequestTag {
  return { request_id: requestId };
}

/** Express requests now in their scope. */
let scoped = 0;

/** Express requests in their scope now (for tests). */
export function scopedRequests(): number {
  return scoped;
}

/**
 * Runs the rest of an Express request's handling in its scope (after the request id middleware),
 * until its response closes. Once no Express request is in flight the storage is disabled, so
 * the promise hook stops until the next one.
 */
export function requestScopeMiddleware(req: Request, res: Response, next: NextFunction): void {
  const scope = (req as Request & { scope?: RequestScope }).scope;
  if (!scope) return next();
  scoped++;
  res.once('close', leave);
  requestScope.run(scope, next);
}

function leave(): void {
  if (--scoped === 0) requestScope.disable();
}
