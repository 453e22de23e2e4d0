import type { Request } from 'express';
import type { RequestScope } from './request-scope';

/**
 * What the gateway attaches to an Express request while it is handled. The key that
 * authenticated it is added by the guard (`AuthenticatedRequest` in keys/).
 */
export interface GatewayRequest extends Request {
  id: string;
  startedAt: number;
  /** Its id and the time its providers took (the access line and metrics read it). */
  scope: RequestScope;
  /** Bytes of the body as received (after decompression); set once the body has been read. */
  bodyBytes?: number;
  /** The body's bytes, kept on public routes only (e.g. for a webhook signature). */
  rawBody?: Buffer;
}
