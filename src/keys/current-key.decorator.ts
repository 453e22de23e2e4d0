import { createParamDecorator, ExecutionContext } from '@nestjs/common';
import type { AuthenticatedRequest } from './authenticated-request';
import type { AuthenticatedKey } from './key-cache';

/** The key that authenticated this request (set by the global guard on API-key routes). */
export const CurrentKey = createParamDecorator(
  (_: unknown, ctx: ExecutionContext): AuthenticatedKey => ctx.switchToHttp().getRequest<AuthenticatedRequest>().apiKey!,
);
