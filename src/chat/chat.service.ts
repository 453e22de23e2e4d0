import { Injectable, Logger } from '@nestjs/common';
import type { Response } from 'express';
import { BillingService } from '../billing/billing.service';
import { promptTokenBound } from '../billing/hold-estimate';
import { CatalogService, type UpstreamRoute } from '../catalog/catalog.service';
import type { ModelType } from '../catalog/model.entity';
import { ApiError, ClientClosedError, InvalidRequestError, ModelNotAllowedError } from '../common/errors/api-error';
import type { GatewayRequest } from '../common/http/request-context';
import { tagOf } from '../common/http/request-scope';
import type { AuthenticatedKey } from '../keys/key-cache';
import { MetricsService } from '../metrics/metrics.service';
import { RateLimiter } from '../ratelimit/rate-limiter.service';
import type { ChatCompletionCreateDto, EmbeddingCreateDto } from './chat.dto';
import { ProxyBody, ProxyCall } from './proxy-call';
import { JsonRelay } from './relays/json-relay';
import { SseRelay } from './relays/sse-relay';
import { UpstreamRouter } from './upstream/upstream-router';

/**
 * The public proxy's decisions: checks (model, max tokens, scope, rate, money) in CONTRACT
 * order, the hold for the most the request can cost, what is forwarded, and which relay
 * answers. A request that fails before any output reached the client costs nothing.
 */
@Injectable()
export class ChatService {
  private readonly logger = new Logger(ChatService.name);

  constructor(
    private readonly catalog: CatalogService,
    private readonly billing: BillingService,
    private readonly rateLimiter: RateLimiter,
    private readonly upstream: UpstreamRouter,
    private readonly json: JsonRelay,
    private readonly sse: SseRelay,
    private readonly metrics: MetricsService,
  ) {}

  /**
   * `body` is the client's, checked by ProxyBodyPipe: nothing stripped, copied or refused, so
   * every field the gateway does not model is forwarded as the client sent it.
   */
  async handle(
    kind: ModelType,
    req: GatewayRequest,
    res: Response,
    key: AuthenticatedKey,
    body: ChatCompletionCreateDto | EmbeddingCreateDto,
  ): Promise<void> {
    const call = new ProxyCall(kind, req, res, key, body as unknown as ProxyBody);
    const onClose = () => call.abort.abort();
    res.once('close', onClose);
    let status = 200;
    try {
      await this.run(call);
    } catch (err) {
      const error = err instanceof ApiError ? err : null;
      if (!error) this.logger.error(`Unexpected error in ${req.id}: ${(err as Error)?.stack ?? String(err)}`, tagOf(req.id));
      status = error?.status ?? 500;
      // a refusal before the hold moved no money: counted, not logged (a flood of 429s must stay cheap)
      await call.hold?.settle(call.outcome(status, error?.code ?? 'internal_error'));
      throw err;
    } finally {
      res.off('close', onClose);
      this.metrics.requests.inc({ endpoint: call.path, status });
      // the answer is out: what the request did not use of its token reservation goes back
      this.rateLimiter.giveBack(call.tokenReservation, call.usedTokens);
    }
  }

  /** Checks, holds, forwards; the relay settles before it answers. */
  private async run(call: ProxyCall): Promise<void> {
    const { body, key } = call;
    // the body is checked in full before the model (CONTRACT §3 order: 400 before 404)
    if (call.kind === 'chat') validateStop(body.stop);
    else validateEmbeddingInput(body.input);
    const { model, provider, routes } = await this.catalog.sellable(body.model, call.kind);
    call.model = model;
    call.provider = provider;
    const maxOut = call.kind === 'chat' ? completionLimit(body, model.maxOutputTokens) : 0;
    if (key.models && !key.models.has(model.id)) throw new ModelNotAllowedError(model.id);

    call.promptBound = promptTokenBound(body, call.req.bodyBytes);
    call.completionBound = maxOut * (typeof body.n === 'number' ? body.n : 1);
    const limits = await this.rateLimiter.check(key, call.promptBound + call.completionBound);
    if (limits) {
      call.tokenReservation = limits.reservation;
      // set now, so they go out with whatever answers: the JSON, the stream's first event, an error
      for (const [name, value] of Object.entries(limits.headers)) call.res.setHeader(name, value);
    }
    call.hold = await this.billing.reserve({
      requestId: call.req.id,
      workspaceId: key.workspaceId,
      keyId: key.id,
      keyHasBudget: key.budgetMicros !== null,
      model,
      promptTokens: call.promptBound,
      completionTokens: call.completionBound,
    });

    // gone while we checked and held: nothing is forwarded, nothing charged
    if (call.abort.aborted) throw new ClientClosedError();
    // retries and fallbacks happen here, before any byte reached the client; never after
    const upstream = await this.upstream.send(call, routes, (route) => this.payload(call, route, maxOut));
    if (upstream.simulated) call.res.setHeader('x-nexo-simulated', 'true');
    const relay = call.stream && upstream.contentType.includes('text/event-stream') ? this.sse : this.json;
    await relay.relay(call, upstream);
  }

  /** The client's body for one provider: the model's name there, and the one completion bound held for. */
  private payload(call: ProxyCall, route: UpstreamRoute, maxOut: number): ProxyBody {
    const payload: ProxyBody = { ...call.body, model: route.upstreamModel };
    if (call.kind !== 'chat') return payload;
    // the bound binds the provider, in the field it honours (CONTRACT §2): a provider that knows
    // only max_tokens would ignore max_completion_tokens, and one that honours the larger of two
    // different values would produce more than was held for
    delete payload.max_tokens;
    delete payload.max_completion_tokens;
    if (route.provider.maxTokensField !== 'max_completion_tokens') payload.max_tokens = maxOut;
    if (route.provider.maxTokensField !== 'max_tokens') payload.max_completion_tokens = maxOut;
    if (call.stream) payload.stream_options = { ...(call.body.stream_options as object), include_usage: true };
    return payload;
  }
}

/** The completion tokens one choice may use: the smaller of the client's bounds, else the model's cap. */
function completionLimit(body: ProxyBody, modelMax: number): number {
  let limit = modelMax;
  for (const param of ['max_completion_tokens', 'max_tokens'] as const) {
    const value = body[param];
    if (typeof value !== 'number') continue; // null means "not set"
    if (value > modelMax) {
      throw new InvalidRequestError(`${param} is too large: ${value}. This model supports at most ${modelMax} completion tokens.`, param);
    }
    limit = Math.min(limit, value);
  }
  return limit;
}

function validateStop(stop: unknown): void {
  if (stop === undefined || stop === null || typeof stop === 'string') return;
  if (Array.isArray(stop) && stop.length <= 4 && stop.every((s) => typeof s === 'string')) return;
  throw new InvalidRequestError('stop must be a string or an array of at most 4 strings.', 'stop');
}

function validateEmbeddingInput(input: unknown): void {
  const ok =
    (typeof input === 'string' && input.length > 0) ||
    (Array.isArray(input) &&
      input.length > 0 &&
      input.length <= 2048 &&
      (input.every((i) => typeof i === 'string' && i.length > 0) ||
        input.every((i) => Number.isInteger(i)) ||
        input.every((i) => Array.isArray(i) && i.length > 0 && i.every((t) => Number.isInteger(t)))));
  if (!ok) throw new InvalidRequestError('input must be a non-empty string, array of strings, or array of token arrays.', 'input');
}
