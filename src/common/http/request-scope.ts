import { AsyncLocalStorage } from 'node:async_hooks';

/**
 * What the gateway knows about the request being handled, wherever it is in the call chain:
 * its id (on every log line it causes) and the time its providers took (the gateway's own
 * overhead is the rest). Set once by the request id middleware, read by the logger and metrics.
 */
export interface RequestScope {
  readonly id: string;
  /** Seconds spent waiting for providers, summed over every attempt. */
  upstreamSeconds: number;
  /** The provider last called, if any. */
  provider: string | null;
}

export const requestScope = new AsyncLocalStorage<RequestScope>();

/** The id of the request being handled here, or undefined outside any request. */
export function currentRequestId(): string | undefined {
  return requestScope.getStore()?.id;
}
