import { Injectable, Logger } from '@nestjs/common';
import type { Express, RequestHandler, Response } from 'express';
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import { admitApiKeyRequest } from '../auth/auth.guard';
import type { ModelType } from '../catalog/model.entity';
import { OpenAiExceptionFilter } from '../common/filters/openai-exception.filter';
import { tagOf } from '../common/http/request-scope';
import { HttpDrain } from '../health/http-drain.service';
import type { AuthenticatedRequest } from '../keys/authenticated-request';
import { KeysService } from '../keys/keys.service';
import { RateLimitHeadersInterceptor } from '../ratelimit/rate-limit-headers.interceptor';
import { ChatService } from './chat.service';
import { checkChatCompletionBody, checkEmbeddingBody } from './proxy-body.pipe';

/** The routes the lane takes (POST, exact path, any query string) and what they proxy. */
const LANE_ROUTES: ReadonlyMap<string, ModelType> = new Map([
  ['/v1/chat/completions', 'chat'],
  ['/v1/embeddings', 'embedding'],
]);

type ExpressHandler = (req: IncomingMessage, res: ServerResponse) => void;

/**
 * The two proxy routes, `POST /v1/chat/completions` and `POST /v1/embeddings`, served without
 * Express's router and Nest's guard, interceptor and pipe layers: on the hot path those cost
 * more CPU than the gateway's own work (bench/README.md). Every other request, and these paths
 * asked any other way (another method, a trailing slash, other letter case), goes to Express.
 *
 * It does what the Nest route does, in the same order, with the same code: the app-wide
 * middleware (drain tracking, request id and scope, access log and metrics), the guard's
 * API-key check (401 before the body is read) and body read, the body check of ProxyBodyPipe,
 * ChatController's handler, the rate-limit headers on a refusal, and OpenAiExceptionFilter for
 * every error. The request and response get Express's prototypes, so the handler sees what it
 * would behind Express. `test/e2e` drives these routes through it; the Nest route stays for
 * what the lane leaves to Express and for the OpenAPI document.
 */
@Injectable()
export class ProxyLane {
  private readonly logger = new Logger(ProxyLane.name);
  private readonly errors = new OpenAiExceptionFilter();

  constructor(
    private readonly chat: ChatService,
    private readonly keys: KeysService,
    private readonly drain: HttpDrain,
    private readonly rateLimitHeaders: RateLimitHeadersInterceptor,
  ) {}

  /**
   * Puts the lane in front of the Express application on `server`. `middleware` is what the
   * application runs first for every request (app.factory.ts), in that order.
   */
  attach(server: Server, app: Express, middleware: readonly RequestHandler[]): void {
    const express = server.listeners('request')[0] as ExpressHandler | undefined;
    if (!express) throw new Error('ProxyLane.attach: the server has no request listener (Express) yet');
    server.removeListener('request', express);
    server.on('request', (req: IncomingMessage, res: ServerResponse) => {
      const path = req.method === 'POST' ? pathOf(req.url ?? '') : '';
      const kind = LANE_ROUTES.get(path);
      if (kind === undefined) {
        express(req, res);
        return;
      }
      // what Express's app.handle does before its router
      const request = Object.setPrototypeOf(req, app.request) as AuthenticatedRequest;
      const response = Object.setPrototypeOf(res, app.response) as Response;
      request.res = response;
      response.req = request;
      response.locals ??= Object.create(null) as Record<string, unknown>;
      // the route template of the access log and metrics, as Nest's route would set it
      (request as { route?: unknown }).route = { path };
      let i = 0;
      const next = (): void => {
        const handler = middleware[i++];
        if (handler) handler(request, response, next);
        else
          this.serve(kind, request, response).catch((err: unknown) => this.logger.error(`Proxy lane: ${String(err)}`, tagOf(request.id)));
      };
      try {
        next();
      } catch (err) {
        // as Express's router would: a middleware that throws is an error answer, not a crash
        this.errors.render(err, request, response);
      }
    });
  }

  private async serve(kind: ModelType, req: AuthenticatedRequest, res: Response): Promise<void> {
    this.drain.handlerStarted();
    let admitted = false;
    try {
      // AuthGuard's admission of an API-key route: the key first (401 before 400), then the body
      const key = await admitApiKeyRequest(this.keys, req, res);
      admitted = true;
      const body = kind === 'chat' ? checkChatCompletionBody(req.body) : checkEmbeddingBody(req.body);
      await this.chat.handle(kind, req, res, key, body as unknown as Parameters<ChatService['handle']>[4]);
    } catch (err) {
      // past the guard, as RateLimitHeadersInterceptor: a refusal says where the key's windows stand
      if (admitted && req.apiKey) await this.rateLimitHeaders.decorateRefusal(res, req.apiKey, err);
      this.errors.render(err, req, res);
    } finally {
      this.drain.handlerFinished();
    }
  }
}

function pathOf(url: string): string {
  const query = url.indexOf('?');
  return query < 0 ? url : url.slice(0, query);
}
