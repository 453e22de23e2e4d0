import { createParamDecorator, ExecutionContext } from '@nestjs/common';
import type { SessionPrincipal, SessionTokenRef } from './session-principal';
import type { SessionRequest } from './session-request';

/** The signed-in user and workspace of this request (set by the global guard on session routes). */
export const CurrentSession = createParamDecorator(
  (_: unknown, ctx: ExecutionContext): SessionPrincipal => ctx.switchToHttp().getRequest<SessionRequest>().session!,
);

/** The session token of this request (its id and expiry), for logout. */
export const CurrentSessionToken = createParamDecorator(
  (_: unknown, ctx: ExecutionContext): SessionTokenRef => ctx.switchToHttp().getRequest<SessionRequest>().sessionToken!,
);
