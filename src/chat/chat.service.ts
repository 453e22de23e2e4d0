import { Injectable, Logger } from '@nestjs/common';
import type { Response } from 'express';
import { StringDecoder } from 'node:string_decoder';
import { BillingService } from '../billing/billing.service';
import { promptTokenBound } from '../billing/hold-estimate';
import { CatalogService, ResolvedProvider } from '../catalog/catalog.service';
import type { ModelEntity, ModelType } from '../catalog/model.entity';
import { ApiError, ClientClosedError, GatewayError, InvalidRequestError, ModelNotAllowedError } from '../common/errors/api-error';
import type { GatewayRequest } from '../common/http/request-context';
import { costMicros } from '../common/money';
import type { AuthenticatedKey } from '../keys/key-cache';
import { MetricsService } from '../metrics/metrics.service';
import { RateLimiter } from '../ratelimit/rate-limiter.service';
import { Recorded, UsageRecorder } from '../usage/usage-recorder.service';
import type { UsageSource } from '../usage/usage-log.entity';
import { countPromptTokens, countTextTokens } from './token-count';
import { UpstreamClient, UpstreamResponse } from './upstream/upstream.client';
import { readUsage } from './usage-report';

type Body = Record<string, unknown>;

interface Call {
  req: GatewayRequest;
  res: Response;
  key: AuthenticatedKey;
  body: Body;
  kind: ModelType;
  path: '/chat/completions' | '/embeddings';
  model?: ModelEntity;
  provider?: ResolvedProvider;
  promptBound: number;
  completionBound: number;
  holdMicros: number;
  /** A hold row exists for this request (it may be 0 micro-USD for a free model). */
  held: boolean;
  stream: boolean;
  /** Aborted when the client goes away, from the first moment of the request. */
  abort: AbortController;
}

interface Outcome {
  status: number;
  errorCode: string | null;
  promptTokens: number;
  completionTokens: number;
  usageSource: UsageSource;
  /** The exact cost; settlement charges it, capped at the hold. */
  costMicros: number;
}

const NOTHING: Pick<Outcome, 'promptTokens' | 'completionTokens' | 'usageSource' | 'costMicros'> = {
  promptTokens: 0,
  completionTokens: 0,
  usageSource: 'none',
  costMicros: 0,
};

/**
 * The public proxy: checks (model, max tokens, scope, rate, money) in CONTRACT order,
 * holds the most the request can cost, forwards it, and hands the result to settlement
 * before the client gets the last byte. A request that fails before output costs nothing.
 */
@Injectable()
export class ChatService {
  private readonly logger = new Logger(ChatService.name);

  constructor(
    private readonly catalog: CatalogService,
    private readonly billing: BillingService,
    private readonly rateLimiter: RateLimiter,
    private readonly upstream: UpstreamClient,
    private readonly usage: UsageRecorder,
    private readonly metrics: MetricsService,
  ) {}

  async handle(kind: ModelType, req: GatewayRequest, res: Response, key: AuthenticatedKey, body: Body): Promise<void> {
    const call: Call = {
      req,
      res,
      key,
      body,
      kind,
      path: kind === 'chat' ? '/chat/completions' : '/embeddings',
      promptBound: 0,
      completionBound: 0,
      holdMicros: 0,
      held: false,
      stream: kind === 'chat' && body.stream === true,
      abort: new AbortController(),
    };
    const onClose = () => call.abort.abort();
    res.once('close', onClose);
    try {
      await this.run(call);
    } catch (err) {
      const error = err instanceof ApiError ? err : null;
      if (!error) this.logger.error(`Unexpected error in ${req.id}: ${(err as Error)?.stack ?? err}`);
      const outcome: Outcome = { ...NOTHING, status: error?.status ?? 500, errorCode: error?.code ?? 'internal_error' };
      // a refusal before the hold moved no money: counted, not logged (a flood of 429s must stay cheap)
      if (call.held) await this.settle(call, outcome);
      else this.metrics.requests.inc({ endpoint: call.path, status: outcome.status });
      throw err;
    } finally {
      res.off('close', onClose);
    }
  }

  /** Checks, holds, forwards and relays; a successful relay settles before it answers. */
  private async run(call: Call): Promise<void> {
    const { body, key } = call;
    // the body is checked in full before the model (CONTRACT §3 order: 400 before 404)
    if (call.kind === 'chat') validateStop(body.stop);
    else validateEmbeddingInput(body.input);
    const { model, provider } = await this.catalog.sellable(body.model, call.kind);
    call.model = model;
    call.provider = provider;

    let maxOut = model.maxOutputTokens;
    if (call.kind === 'chat') {
      for (const param of ['max_completion_tokens', 'max_tokens'] as const) {
        const value = body[param];
        if (typeof value !== 'number') continue;
        if (value > model.maxOutputTokens) {
          throw new InvalidRequestError(
            `${param} is too large: ${value}. This model supports at most ${model.maxOutputTokens} completion tokens.`,
            param,
          );
        }
        maxOut = Math.min(maxOut, value);
      }
    }
    if (key.models && !key.models.has(model.id)) throw new ModelNotAllowedError(model.id);

    call.promptBound = promptTokenBound(body, call.req.bodyBytes);
    call.completionBound = call.kind === 'chat' ? maxOut * (typeof body.n === 'number' ? body.n : 1) : 0;
    await this.rateLimiter.check(key, call.promptBound + call.completionBound);
    call.holdMicros = await this.billing.hold(call.req.id, key, model, call.promptBound, call.completionBound);
    call.held = true;

    const payload: Body = { ...body, model: model.upstreamModel };
    if (call.kind === 'chat') {
      // the one bound held for binds the provider, in the field it honours (CONTRACT §2): a
      // provider that knows only max_tokens would ignore max_completion_tokens, and one that
      // honours the larger of two different values would produce more than was held for
      delete payload.max_tokens;
      delete payload.max_completion_tokens;
      if (provider.maxTokensField !== 'max_completion_tokens') payload.max_tokens = maxOut;
      if (provider.maxTokensField !== 'max_tokens') payload.max_completion_tokens = maxOut;
      if (call.stream) payload.stream_options = { ...(body.stream_options as object), include_usage: true };
    }

    const { abort } = call;
    // gone while we checked and held: nothing is forwarded, nothing charged
    if (abort.signal.aborted) throw new ClientClosedError();
    const started = performance.now();
    let upstream: UpstreamResponse;
    try {
      upstream = await this.upstream.post(provider, call.path, payload, abort.signal);
    } finally {
      this.metrics.upstreamLatency.observe({ provider: provider.id }, (performance.now() - started) / 1000);
    }
    if (upstream.simulated) call.res.setHeader('x-nexo-simulated', 'true');
    return call.stream && upstream.contentType.includes('text/event-stream')
      ? this.relayStream(call, upstream, abort)
      : this.relayJson(call, upstream, abort);
  }

  /** Non-streaming answer: settle first, then send the provider's body with our model id and cost. */
  private async relayJson(call: Call, upstream: UpstreamResponse, abort: AbortController): Promise<void> {
    const chunks: Buffer[] = [];
    try {
      for await (const chunk of upstream.body) chunks.push(chunk);
    } catch (err) {
      // the client left while the answer arrived (499, free), or the provider failed mid-body
      // (timeout 504, else 502)
      throw abort.signal.aborted ? new ClientClosedError('client_disconnected') : this.upstream.failure(call.provider!, err);
    }
    let parsed: Body;
    try {
      // decoded once, whole: a character split across chunks stays intact
      parsed = JSON.parse(Buffer.concat(chunks).toString('utf8')) as Body;
      if (!parsed || typeof parsed !== 'object' || Array.isArray(parsed)) throw new Error('not an object');
    } catch {
      throw new ApiError(502, 'gateway_error', 'The upstream provider sent a response that is not valid JSON.', 'api_error');
    }
    const usage = this.usageOf(call, parsed.usage, () => completionText(parsed));
    parsed.model = call.model!.id;
    // a client that hung up while the answer arrived (an SDK's timeout, about to retry) is
    // not charged for an answer it never got: let pending socket events run, then look
    await new Promise<void>((resolve) => setImmediate(resolve));
    if (clientGone(call)) throw new ClientClosedError('client_disconnected');
    const outcome: Outcome = { status: 200, errorCode: null, ...usage };
    const recorded = await this.settle(call, outcome);
    if (!recorded.ok) {
      // neither Redis nor PostgreSQL took the charge: the answer is withheld (never served
      // unbilled), and the sweeper releases the hold later
      throw new GatewayError(503, 'The gateway cannot record billing right now; the answer was not delivered. Try again shortly.', {
        'retry-after': '1',
      });
    }
    // gone while the charge was recorded: take it back if no worker has applied it yet
    if (clientGone(call) && (await this.usage.withdraw(call.req.id))) throw new ClientClosedError('client_disconnected');
    const charged = this.charged(call, outcome, recorded);
    call.res.status(200).setHeader('x-nexo-cost-micros', String(charged));
    call.res.json(parsed);
  }

  /** Server-sent events, relayed chunk by chunk with our model id; usage read from the stream. */
  private async relayStream(call: Call, upstream: UpstreamResponse, abort: AbortController): Promise<void> {
    const { res } = call;
    let streaming = false;
    // headers go out with the first event: a stream that fails before any output is still a
    // plain 502/504 that costs nothing
    const startStreaming = () => {
      streaming = true;
      res.status(200);
      res.setHeader('content-type', 'text/event-stream; charset=utf-8');
      res.setHeader('cache-control', 'no-cache');
      res.setHeader('x-accel-buffering', 'no');
      res.flushHeaders();
    };
    const wantsUsage = (call.body.stream_options as { include_usage?: boolean } | undefined)?.include_usage === true;
    const decoder = new StringDecoder('utf8');
    let pending = '';
    let usage: unknown = null;
    let produced = '';
    let done = false;
    let upstreamFailed = false;

    const write = async (data: string) => {
      if (res.destroyed || res.writableEnded) return;
      if (!streaming) startStreaming();
      if (!res.write(data)) await drainOrClose(res);
    };
    const handleLine = async (line: string) => {
      if (!line.startsWith('data:')) return;
      const data = line.slice(5).trim();
      if (data === '[DONE]') {
        done = true;
        return;
      }
      let event: Body;
      try {
        event = JSON.parse(data) as Body;
      } catch {
        return;
      }
      if (event.usage) usage = event.usage;
      produced += completionText(event);
      const usageOnly = Array.isArray(event.choices) && event.choices.length === 0 && event.usage;
      if (usageOnly && !wantsUsage) return;
      if (!wantsUsage && 'usage' in event) delete event.usage;
      if ('model' in event) event.model = call.model!.id;
      await write(`data: ${JSON.stringify(event)}\n\n`);
    };

    try {
      for await (const chunk of upstream.body) {
        pending += decoder.write(chunk);
        let newline: number;
        while ((newline = pending.indexOf('\n')) >= 0) {
          const line = pending.slice(0, newline).replace(/\r$/, '');
          pending = pending.slice(newline + 1);
          await handleLine(line);
        }
        if (res.destroyed) break;
      }
      if (pending) await handleLine(pending);
    } catch (err) {
      upstreamFailed = !abort.signal.aborted;
      if (!streaming && upstreamFailed) throw this.upstream.failure(call.provider!, err);
    }
    const clientGone = res.destroyed && !res.writableFinished;
    if (clientGone) upstream.body.destroy?.();
    if (!streaming) {
      // nothing reached the client: a failed or abandoned request, free of charge
      if (clientGone) throw new ClientClosedError(done ? 'client_disconnected' : 'client_closed_request');
      if (!done) throw new GatewayError(502, 'The upstream provider ended the stream before sending anything.');
    }
    const u = this.usageOf(call, usage, () => produced);
    const errorCode = clientGone ? 'client_disconnected' : upstreamFailed || !done ? 'upstream_interrupted' : null;
    const outcome: Outcome = { status: 200, errorCode, ...u };
    const recorded = await this.settle(call, outcome);
    if (!streaming) startStreaming();
    if (!res.destroyed && !res.writableEnded) {
      res.write(`: cost_micros=${this.charged(call, outcome, recorded)}\n\n`);
      if (errorCode === 'upstream_interrupted') {
        // no [DONE]: an error event tells SDKs the answer was cut short (they raise it)
        const error = { message: 'The upstream provider ended the stream early; the answer is incomplete.', type: 'api_error', param: null, code: 'gateway_error' };
        res.end(`data: ${JSON.stringify({ error })}\n\n`);
      } else {
        res.end('data: [DONE]\n\n');
      }
    }
  }

  /**
   * The provider's usage when well formed and within the bounds; a real tokenizer (capped at
   * the bounds) when it is missing or malformed; the bound when a well-formed report exceeds it.
   */
  private usageOf(call: Call, reported: unknown, completion: () => string): Omit<Outcome, 'status' | 'errorCode'> {
    const model = call.model!;
    const read = readUsage(reported, { promptTokens: call.promptBound, completionTokens: call.completionBound }, call.kind === 'chat');
    let prompt: number;
    let completionTokens: number;
    let source: UsageSource;
    if (read === 'over_bound') {
      this.logger.warn(`Usage from provider '${model.providerId}' for ${call.req.id} exceeds the request's bound: charged at the bound`);
      return { promptTokens: call.promptBound, completionTokens: call.completionBound, usageSource: 'hold', costMicros: call.holdMicros };
    }
    if (read === 'missing') {
      prompt = Math.min(call.promptBound, countPromptTokens(call.body));
      completionTokens = Math.min(call.completionBound, countTextTokens(completion()));
      source = 'tokenizer';
    } else {
      prompt = read.promptTokens;
      completionTokens = read.completionTokens;
      source = read.source;
    }
    const cost = costMicros(prompt, completionTokens, model.inputPriceMicros, model.outputPriceMicros);
    return { promptTokens: prompt, completionTokens, usageSource: source, costMicros: cost };
  }

  /**
   * What the client is told it was charged (`x-nexo-cost-micros`, `: cost_micros=`): the
   * settlement's own figure when it was applied synchronously (always, for a key with a
   * budget, whose charge a lowered budget may cap); otherwise the cost capped at the hold,
   * which is exactly what the queued settlement charges.
   */
  private charged(call: Call, outcome: Outcome, recorded: Recorded): number {
    const charged = recorded.chargedMicros ?? Math.min(outcome.costMicros, call.holdMicros);
    this.metrics.chargedMicros.inc({ model: call.model!.id }, charged);
    return charged;
  }

  /** Hands the outcome to settlement; `ok` is false when it could not be recorded anywhere. */
  private async settle(call: Call, outcome: Outcome): Promise<Recorded> {
    const status = outcome.status;
    this.metrics.requests.inc({ endpoint: call.path, status });
    try {
      return await this.usage.record(
        {
          requestId: call.req.id,
          workspaceId: call.key.workspaceId,
          keyId: call.key.id,
          model: call.model!.id,
          provider: call.provider!.id,
          promptTokens: outcome.promptTokens,
          completionTokens: outcome.completionTokens,
          costMicros: outcome.costMicros,
          usageSource: outcome.usageSource,
          status,
          errorCode: outcome.errorCode,
          latencyMs: Math.round(performance.now() - call.req.startedAt),
          stream: call.stream,
          createdAt: Date.now() - Math.round(performance.now() - call.req.startedAt),
        },
        // a budgeted key settles at once, so what the client is told is what was charged
        { synchronous: call.key.budgetMicros !== null && outcome.status === 200 },
      );
    } finally {
      // queued or settled: from here the hold is the settlement's to remove, not ours to keep alive
      this.billing.handedOver(call.req.id);
    }
  }
}

/** Text the model produced in a completion or a stream chunk, for the tokenizer fallback. */
function completionText(event: Body): string {
  if (!Array.isArray(event.choices)) return '';
  let text = '';
  for (const choice of event.choices as Array<{ message?: Body; delta?: Body }>) {
    const part = choice?.message ?? choice?.delta;
    if (!part) continue;
    for (const field of ['content', 'reasoning_content', 'refusal']) if (typeof part[field] === 'string') text += part[field];
    if (Array.isArray(part.tool_calls)) text += JSON.stringify(part.tool_calls);
  }
  return text;
}

/**
 * The client's connection closed (or began to close) before its answer was complete. The
 * response's 'close' event comes a loop phase after the client's FIN is read, so the socket's
 * own state is looked at too: an HTTP client does not half-close a connection it still reads.
 */
function clientGone(call: Call): boolean {
  if (call.res.writableFinished) return false;
  const socket = call.req.socket;
  return call.abort.signal.aborted || socket.destroyed || socket.readableEnded || !socket.writable;
}

/** Resolves on 'drain' or 'close', whichever comes first, leaving no listener behind. */
function drainOrClose(res: Response): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      res.off('drain', done);
      res.off('close', done);
      resolve();
    };
    res.on('drain', done);
    res.on('close', done);
  });
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
