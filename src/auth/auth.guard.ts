import { CanActivate, ExecutionContext, Injectable } from '@nestjs/common';
import { Reflector } from '@nestjs/core';
import type { Response } from 'express';
import { createHash, timingSafeEqual } from 'node:crypto';
import { PermissionDeniedError } from '../accounts/accounts.errors';
import type { SessionRequest } from '../accounts/session-request';
import { SessionService } from '../accounts/session.service';
import { AUTH_KIND, AuthKind, REQUIRED_ROLE, roleSatisfies, WorkspaceRole } from '../common/auth-scope';
import { AdminAuthError, ApiError, InvalidRequestError } from '../common/errors/api-error';
import { readJsonBody } from '../common/http/body-parser';
import { AppConfig } from '../config/app-config';
import type { GatewayRequest } from '../common/http/request-context';
import type { AuthenticatedRequest } from '../keys/authenticated-request';
import type { AuthenticatedKey } from '../keys/key-cache';
import { KeysService } from '../keys/keys.service';

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
 * The one global guard: deny by default. Routes are API-key routes unless marked @Public(),
 * @AdminOnly(), @MetricsAuth() or @SessionAuth() (common/auth-scope.ts). API keys open only
 * API-key routes, session tokens only session routes. The body is read, decompressed and parsed here, only once the key or the
 * admin token in the headers has been checked: an anonymous body costs nothing, and the check
 * order of CONTRACT §3 holds (401 before 400).
 */
@Injectable()
export class AuthGuard implements CanActivate {
  constructor(
    private readonly reflector: Reflector,
    private readonly keys: KeysService,
    private readonly config: AppConfig,
    private readonly sessions: SessionService,
  ) {}

  async canActivate(context: ExecutionContext): Promise<boolean> {
    const kind = this.reflector.getAllAndOverride<AuthKind | undefined>(AUTH_KIND, [context.getHandler(), context.getClass()]) ?? 'api-key';
    const http = context.switchToHttp();
    const req = http.getRequest<AuthenticatedRequest & SessionRequest>();
    if (kind === 'admin') {
      if (!this.config.adminToken) throw new ApiError(404, 'not_found', 'The admin API is disabled: ADMIN_TOKEN is not set.');
      if (!adminTokenMatches(this.config.adminToken, bearerToken(req.headers.authorization))) throw new AdminAuthError();
    } else if (kind === 'metrics') {
      const presented = bearerToken(req.headers.authorization);
      const allowed = [this.config.metricsToken, this.config.adminToken].some((token) => adminTokenMatches(token, presented));
      if (!allowed) throw new AdminAuthError('Incorrect or missing metrics token: send METRICS_TOKEN or ADMIN_TOKEN as a bearer token.');
    } else if (kind === 'api-key') {
      await admitApiKeyRequest(this.keys, req, http.getResponse<Response>());
      return true;
    } else if (kind === 'session') {
      const { principal, token } = await this.sessions.authenticate(bearerToken(req.headers.authorization));
      const required = this.reflector.getAllAndOverride<WorkspaceRole | undefined>(REQUIRED_ROLE, [
        context.getHandler(),
        context.getClass(),
      ]);
      if (!roleSatisfies(principal.role, required)) throw new PermissionDeniedError();
      req.session = principal;
      req.sessionToken = token;
    }
    await readBody(req, http.getResponse<Response>(), kind === 'public');
    return true;
  }
}

/**
 * An API-key route's admission, for the guard and for the proxy lane (chat/): the key from the
 * headers first (401 before anything is read), then the body.
 */
export async function admitApiKeyRequest(keys: KeysService, req: AuthenticatedRequest, res: Response): Promise<AuthenticatedKey> {
  const key = await keys.authenticate(bearerToken(req.headers.authorization), req.ip ?? req.socket.remoteAddress);
  req.apiKey = key;
  await readBody(req, res, false);
  return key;
}

/** Reads the body; a public route keeps its raw bytes (a webhook's signature) and takes any JSON, others only an object. */
async function readBody(req: GatewayRequest, res: Response, isPublic: boolean): Promise<void> {
  await readJsonBody(req, res, { keepRaw: isPublic });
  if (isPublic) return;
  if (BODY_METHODS.has(req.method) && (typeof req.body !== 'object' || req.body === null || Array.isArray(req.body))) {
    throw new InvalidRequestError('The request body must be a JSON object.');
  }
}
