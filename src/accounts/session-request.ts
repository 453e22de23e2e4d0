import type { GatewayRequest } from '../common/http/request-context';
import type { SessionPrincipal, SessionTokenRef } from './session-principal';

/** A request on a session route, once the guard has verified its session token. */
export interface SessionRequest extends GatewayRequest {
  session?: SessionPrincipal;
  sessionToken?: SessionTokenRef;
}
