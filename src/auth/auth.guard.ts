import { CanActivate, ExecutionContext, Injectable } from '@nestjs/common';
import { Reflector } from '@nestjs/core';
import { createHash, timingSafeEqual } from 'node:crypto';
import { AppConfig } from '../config/app-config';
import { AdminAuthError, ApiError, InvalidRequestError } from '../common/errors/api-error';
import type { GatewayRequest } from '../common/http/request-context';
import { KeysService } from '../keys/keys.service';
import { AUTH_KIND, AuthKind } from './auth.decorators';

const BODY_METHODS = new Set(['POST', 'PUT', 'PATCH']);

export function bearerToken(header: string | undefined): string | undefined {
  if (!header) return undefined;
  const match = /^Bearer\s+(\S+)\s*$/i.exec(header);
  return match?.[1];
}

/** Constant-time comparison of a presented admin token with ADMIN_TOKEN. */
export function adminTokenMatches(expected: string | null, presented: string | undefined): boolean {
  if (!expected || !presented) return false;
  const a = createHash('sha256').update(expected).digest();
  const b = createHash('sha256').update(presented).digest();
  return timingSafeEqual(a, b);
}

/**
 * The one global guard: deny by default. Routes are API-key routes unless marked @Public()
 * or @AdminOnly(). A body that failed to parse is reported here, after authentication, so
 * the check order of CONTRACT §3 holds (401 before 400).
 */
@Injectable()
export class AuthGuard implements CanActivate {
  constructor(
    private readonly reflector: Reflector,
    private readonly keys: KeysService,
    private readonly config: AppConfig,
  ) {}

  async canActivate(context: ExecutionContext): Promise<boolean> {
    const kind =
      this.reflector.getAllAndOverride<AuthKind | undefined>(AUTH_KIND, [context.getHandler(), context.getClass()]) ?? 'api-key';
    const req = context.switchToHttp().getRequest<GatewayRequest>();
    if (kind === 'public') return true;
    if (kind === 'admin') {
      if (!this.config.adminToken) throw new ApiError(404, 'not_found', 'The admin API is disabled: ADMIN_TOKEN is not set.');
      if (!adminTokenMatches(this.config.adminToken, bearerToken(req.headers.authorization))) throw new AdminAuthError();
    } else {
      req.apiKey = await this.keys.authenticate(bearerToken(req.headers.authorization));
    }
    if (req.bodyParseError) throw new InvalidRequestError(req.bodyParseError);
    if (BODY_METHODS.has(req.method) && (typeof req.body !== 'object' || req.body === null || Array.isArray(req.body))) {
      throw new InvalidRequestError('The request body must be a JSON object.');
    }
    return true;
  }
}
