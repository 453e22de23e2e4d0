import type { Request } from 'express';
import type { AuthenticatedKey } from '../../keys/key-cache';

/** What the gateway attaches to an Express request while it is handled. */
export interface GatewayRequest extends Request {
  id: string;
  startedAt: number;
  apiKey?: AuthenticatedKey;
  /** Bytes of the body as received (after decompression); set once the body has been read. */
  bodyBytes?: number;
  /** The body's bytes, kept on public routes only (e.g. for a webhook signature). */
  rawBody?: Buffer;
}
