import { Injectable, Logger, OnModuleInit } from '@nestjs/common';
import { JwtService } from '@nestjs/jwt';
import { LRUCache } from 'lru-cache';
import { randomUUID } from 'node:crypto';
import type { WorkspaceRole } from '../common/auth-scope';
import { GatewayError } from '../common/errors/api-error';
import { RedisService } from '../redis/redis.service';
import { InvalidSessionError } from './accounts.errors';
import { AccountsRepository, SessionState } from './accounts.repository';
import type { SessionTokenDto } from './accounts.dto';
import type { SessionPrincipal, SessionTokenRef } from './session-principal';

export const SESSION_TTL_SECONDS = 60 * 60;
export const SESSION_ISSUER = 'nexorouter';
export const SESSION_AUDIENCE = 'nexorouter-dashboard';
/** How long a user's token version and role may be trusted from this process's memory. */
export const SESSION_STATE_MAX_AGE_MS = 1_000;

/** The claims of a session token (besides iat, exp, iss, aud). */
interface SessionClaims {
  /** user id */
  sub: string;
  /** workspace id */
  wid: string;
  role: WorkspaceRole;
  /** the user's token version when it was issued */
  ver: number;
  jti: string;
  exp: number;
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/**
 * Dashboard sessions: HS256 JWTs valid for an hour, checked on every request against the
 * user's token version (bumped by logout-all: ends every session) and a Redis deny-list of
 * token ids (logout: ends one session). Versions and roles are read from PostgreSQL and kept
 * in memory for at most a second, so a logout-all or a role change reaches every process
 * within 1 s (at once where the invalidation message arrives); the deny-list is read from
 * Redis on every request, so a logout reaches every process at once.
 */
@Injectable()
export class SessionService implements OnModuleInit {
  private readonly logger = new Logger(SessionService.name);
  private readonly states = new LRUCache<string, SessionState>({ max: 10_000, ttl: SESSION_STATE_MAX_AGE_MS });
  /** Bumped by every invalidation: a read that raced one is not cached. */
  private generation = 0;

  constructor(
    private readonly jwt: JwtService,
    private readonly accounts: AccountsRepository,
    private readonly redis: RedisService,
  ) {}

  onModuleInit(): void {
    this.redis.onInvalidate(
      (message) => {
        if (!message.startsWith('user:')) return;
        this.forget(message.slice('user:'.length));
      },
      () => {
        this.generation++;
        this.states.clear();
      },
    );
  }

  async issue(userId: string, workspaceId: string, role: WorkspaceRole, tokenVersion: number): Promise<SessionTokenDto> {
    const access_token = await this.jwt.signAsync({ wid: workspaceId, role, ver: tokenVersion }, { subject: userId, jwtid: randomUUID() });
    return { access_token, token_type: 'bearer', expires_in: SESSION_TTL_SECONDS };
  }

  /** The principal of a valid session token; 401 invalid_session for anything else (an API key included). */
  async authenticate(token: string | undefined): Promise<{ principal: SessionPrincipal; token: SessionTokenRef }> {
    if (!token) throw new InvalidSessionError();
    let claims: SessionClaims;
    try {
      claims = await this.jwt.verifyAsync<SessionClaims>(token);
    } catch {
      throw new InvalidSessionError();
    }
    if (!isSessionClaims(claims)) throw new InvalidSessionError();
    const [state, denied] = await Promise.all([this.state(claims.sub, claims.wid), this.denied(claims.jti)]);
    if (denied || !state || state.tokenVersion !== claims.ver) throw new InvalidSessionError('This session has ended. Log in again.');
    if (!state.role) throw new InvalidSessionError('You are no longer a member of this workspace. Log in again.');
    return {
      principal: { userId: claims.sub, workspaceId: claims.wid, role: state.role, email: state.email },
      token: { id: claims.jti, expiresAt: claims.exp * 1000 },
    };
  }

  /**
   * Ends one session: its token id is deny-listed in Redis until the token expires. When Redis
   * cannot take it, every session of the user is ended instead, so a logout never silently fails.
   */
  async end(userId: string, token: SessionTokenRef): Promise<void> {
    const seconds = Math.max(1, Math.ceil((token.expiresAt - Date.now()) / 1000));
    try {
      await this.redis.client.set(this.denyKey(token.id), '1', 'EX', seconds);
    } catch (err) {
      this.logger.warn(`Could not deny-list session ${token.id}: ending every session of the user (${(err as Error).message})`);
      await this.endAll(userId);
    }
  }

  /** Ends every session of the user, on every process within 1 s. */
  async endAll(userId: string): Promise<void> {
    await this.accounts.bumpTokenVersion(userId);
    await this.redis.publishInvalidation(`user:${userId}`);
  }

  /** The user's token version and role in the workspace: from memory for up to a second. */
  private async state(userId: string, workspaceId: string): Promise<SessionState | null> {
    const key = `${userId}:${workspaceId}`;
    const cached = this.states.get(key);
    if (cached) return cached;
    const generation = this.generation;
    const state = await this.accounts.sessionState(userId, workspaceId);
    if (state && generation === this.generation) this.states.set(key, state);
    return state;
  }

  private async denied(jti: string): Promise<boolean> {
    try {
      return (await this.redis.client.exists(this.denyKey(jti))) === 1;
    } catch {
      // an ended session must not come back while Redis is away
      throw new GatewayError(503, 'Sessions cannot be checked right now. Try again shortly.', { 'retry-after': '1' });
    }
  }

  private forget(userId: string): void {
    this.generation++;
    for (const key of this.states.keys()) if (key.startsWith(`${userId}:`)) this.states.delete(key);
  }

  private denyKey(jti: string): string {
    return this.redis.key('session', 'ended', jti);
  }
}

function isSessionClaims(c: Partial<SessionClaims> | null): c is SessionClaims {
  return (
    typeof c === 'object' &&
    c !== null &&
    typeof c.sub === 'string' &&
    UUID.test(c.sub) &&
    typeof c.wid === 'string' &&
    UUID.test(c.wid) &&
    (c.role === 'owner' || c.role === 'member') &&
    Number.isSafeInteger(c.ver) &&
    typeof c.jti === 'string' &&
    c.jti.length > 0 &&
    c.jti.length <= 64 &&
    typeof c.exp === 'number'
  );
}
