import type { Request } from 'express';
import type { AuthenticatedKey } from '../../keys/key-cache';

/** What the gateway attaches to an Express request while it is handled. */
export interface GatewayRequest extends Request {
  id: string;
  startedAt: number;
  apiKey?: AuthenticatedKey;
  /** Bytes of the body as received (after decompression). */
  bodyBytes?: number;
  /** Set by the JSON body parser when the body was not JSON; reported after authentication. */
  bodyParseError?: string;
}
