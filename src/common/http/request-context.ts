import type { Request } from 'express';

/**
 * What the gateway attaches to an Express request while it is handled. The key that
 * authenticated it is added by the guard (`AuthenticatedRequest` in keys/).
 */
export interface GatewayRequest extends Request {
  id: string;
  startedAt: number;
  /** Bytes of the body as received (after decompression); set once the body has been read. */
  bodyBytes?: number;
  /** The body's bytes, kept on public routes only (e.g. for a webhook signature). */
  rawBody?: Buffer;
}
