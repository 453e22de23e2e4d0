import { CallHandler, ExecutionContext, Injectable, NestInterceptor } from '@nestjs/common';
import type { Response } from 'express';
import type { Observable } from 'rxjs';
import type { AuthenticatedRequest } from '../keys/authenticated-request';
import { RateLimiter } from './rate-limiter.service';

/**
 * The `x-ratelimit-*` headers on the other `/v1` answers of a limited key (`GET /v1/models`,
 * `GET /v1/key`): where its current windows stand, read without counting the request. The
 * proxied requests set theirs from their own check (ChatService), in the same round trip.
 */
@Injectable()
export class RateLimitHeadersInterceptor implements NestInterceptor {
  constructor(private readonly limiter: RateLimiter) {}

  async intercept(ctx: ExecutionContext, next: CallHandler): Promise<Observable<unknown>> {
    if (ctx.getType() !== 'http') return next.handle();
    const req = ctx.switchToHttp().getRequest<AuthenticatedRequest>();
    const key = req.apiKey;
    if (!key || req.method !== 'GET' || (key.rpmLimit === null && key.tpmLimit === null)) return next.handle();
    const headers = await this.limiter.peek(key);
    const res = ctx.switchToHttp().getResponse<Response>();
    if (headers) for (const [name, value] of Object.entries(headers)) res.setHeader(name, value);
    return next.handle();
  }
}
