import type { GatewayRequest } from '../common/http/request-context';
import type { AuthenticatedKey } from './key-cache';

/** A request on an API-key route, once the guard has authenticated its key. */
export interface AuthenticatedRequest extends GatewayRequest {
  apiKey?: AuthenticatedKey;
}
