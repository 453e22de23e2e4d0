import { CallHandler, ExecutionContext, Injectable, NestInterceptor } from '@nestjs/common';
import type { Response } from 'express';
import { catchError, from, mergeMap, Observable, throwError } from 'rxjs';
import { ApiError } from '../common/errors/api-error';
import type { AuthenticatedRequest } from '../keys/authenticated-request';
import type { AuthenticatedKey } from '../keys/key-cache';
import { RateLimiter } from './rate-limiter.service';

/**
 * The `x-ratelimit-*` headers on every `/v1` answer of a limited key. A proxied request sets
 * them from its own check (ChatService), in the check's one round trip (none when admitted from
 * the process's share of the window); the others get where the key's windows stand, read
 * without counting: `GET` answers (`/v1/models`, `/v1/key`) before their handler, and a proxied
 * request refused before its check (400, 404, 403 model_not_allowed) on its way out, so the hot
 * path of an accepted request pays nothing here.
 */
@Injectable()
export class RateLimitHeadersInterceptor implements NestInterceptor {
  constructor(private readonly limiter: RateLimiter) {}

  async intercept(ctx: ExecutionContext, next: CallHandler): Promise<Observable<unknown>> {
    if (ctx.getType() !== 'http') return next.handle();
    const req = ctx.switchToHttp().getRequest<AuthenticatedRequest>();
    const res = ctx.switchToHttp().getResponse<Response>();
    const key = req.apiKey;
    if (!key || (key.rpmLimit === null && key.tpmLimit === null)) return next.handle();
    if (req.method === 'GET') {
      await this.decorate(res, key);
      return next.handle();
    }
    return next
      .handle()
      .pipe(catchError((err: unknown) => from(this.decorateRefusal(res, key, err)).pipe(mergeMap(() => throwError(() => err)))));
  }

  /**
   * A limited key's request refused after authentication: the headers of where its windows
   * stand, unless the refusal is the check's own 429, which carries them (a flood of those costs
   * no second round trip). Also called by the proxy lane (chat/), which runs outside Nest.
   */
  async decorateRefusal(res: Response, key: AuthenticatedKey, err: unknown): Promise<void> {
    if (key.rpmLimit === null && key.tpmLimit === null) return;
    if (err instanceof ApiError && ('x-ratelimit-limit-requests' in err.headers || 'x-ratelimit-limit-tokens' in err.headers)) return;
    await this.decorate(res, key);
  }

  /** Sets the headers unless the answer has them (or has gone out) already. */
  private async decorate(res: Response, key: AuthenticatedKey): Promise<void> {
    if (res.headersSent || res.hasHeader('x-ratelimit-limit-requests') || res.hasHeader('x-ratelimit-limit-tokens')) return;
    const headers = await this.limiter.peek(key);
    if (!headers || res.headersSent) return;
    for (const [name, value] of Object.entries(headers)) res.setHeader(name, value);
  }
}
