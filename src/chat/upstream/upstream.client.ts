import { Injectable, Logger, OnApplicationShutdown } from '@nestjs/common';
import type { Readable } from 'node:stream';
import { Agent, errors } from 'undici';
import { AppConfig } from '../../config/app-config';
import { ApiError, ClientClosedError, GatewayError } from '../../common/errors/api-error';
import type { ResolvedProvider } from '../../catalog/catalog.service';
import { tagOf } from '../../common/http/request-scope';
import type { ClientAbort } from '../client-abort';
import { simulate } from './simulator';

/**
 * Why a send to a provider failed, for retries, fallbacks and the circuit breaker:
 * - `unreachable`: no connection (refused, reset, DNS, connect timeout): retried.
 * - `server_error`: a 5xx answer: retried.
 * - `rate_limited`: a 429 answer: retried after its Retry-After (when short), else the next provider.
 * - `timeout`: no answer within the read timeout: not retried (the provider may still be
 *   generating, at our cost), the next provider is tried.
 * - `credentials`: the provider refused our key (401/403): the next provider is tried.
 * - `busy`: every connection of this process to the provider is busy: the next provider is
 *   tried; not the provider's fault (the circuit breaker ignores it).
 */
export type UpstreamFailureReason = 'unreachable' | 'server_error' | 'rate_limited' | 'timeout' | 'credentials' | 'busy';

/** A provider failure the client would see as a 5xx gateway_error, with why (see the reasons above). */
export class UpstreamError extends GatewayError {
  constructor(
    status: 502 | 503 | 504,
    message: string,
    readonly reason: UpstreamFailureReason,
    headers: Record<string, string> = {},
    /** The provider's Retry-After, in ms (429). */
    readonly retryAfterMs: number | null = null,
  ) {
    super(status, message, headers);
  }

  get retryable(): boolean {
    return this.reason === 'unreachable' || this.reason === 'server_error' || this.reason === 'rate_limited';
  }
}

export interface UpstreamResponse {
  status: number;
  contentType: string;
  body: AsyncIterable<Buffer> & { destroy?: (err?: Error) => void };
  simulated: boolean;
}

/** One provider's in-flight requests, bounded by its max_connections. */
interface ProviderPool {
  limit: number;
  inFlight: number;
  /** Requests waiting for a slot, first come first served. */
  waiters: Array<() => void>;
}

/**
 * Forwards to OpenAI-compatible providers over pooled keep-alive connections, with the
 * provider's key (never the customer's). In development, a provider without a key is
 * answered by the built-in simulator; production never simulates.
 *
 * Each provider has its own connection pool of `max_connections` and as many requests in
 * flight at most: a request holds its slot until its response body has been consumed, has
 * failed or was destroyed (a stream for its whole life). One that cannot get a slot within
 * UPSTREAM_CONNECT_WAIT_MS answers 503 with Retry-After instead of queueing unseen.
 */
@Injectable()
export class UpstreamClient implements OnApplicationShutdown {
  private readonly logger = new Logger(UpstreamClient.name);
  private readonly agents = new Map<string, { agent: Agent; connections: number }>();
  private readonly pools = new Map<string, ProviderPool>();
  private readonly targets = new Map<string, { origin: string; pathname: string }>();
  /** A 2xx body nobody started reading within this time is destroyed, so its slot is freed. */
  private readonly unreadBodyMs: number;

  constructor(private readonly config: AppConfig) {
    this.unreadBodyMs = Math.min(config.upstreamTimeoutMs, 30_000);
  }

  /** One send of request `requestId` (its log lines carry it); `signal` aborts it when the client leaves. */
  async post(
    provider: ResolvedProvider,
    path: string,
    payload: Record<string, unknown>,
    signal: ClientAbort,
    requestId: string,
  ): Promise<UpstreamResponse> {
    if (!provider.apiKey) {
      if (this.config.isProduction) throw new UpstreamError(502, `Provider '${provider.id}' is not configured.`, 'credentials');
      this.logger.log(`Simulated ${path} for provider '${provider.id}' (no API key configured; development only)`, tagOf(requestId));
      return simulate(path, payload);
    }
    let release: (() => void) | null = null;
    let handedOver = false;
    try {
      release = await this.acquire(provider, signal, requestId);
      const { origin, pathname } = this.target(`${provider.baseUrl}${path}`);
      const res = await this.agentFor(provider).request({
        origin,
        path: pathname,
        method: 'POST',
        signal,
        headers: {
          'content-type': 'application/json',
          accept: payload.stream ? 'text/event-stream' : 'application/json',
          authorization: `Bearer ${provider.apiKey}`,
        },
        body: JSON.stringify(payload),
      });
      const contentType = String(res.headers['content-type'] ?? '');
      if (res.statusCode >= 200 && res.statusCode < 300) {
        this.releaseWhenDone(res.body, release, signal);
        handedOver = true;
        return { status: res.statusCode, contentType, body: res.body, simulated: false };
      }
      const text = await res.body.text().catch(() => '');
      throw this.mapError(provider, res.statusCode, text, res.headers['retry-after'], requestId);
    } catch (err) {
      throw this.failure(provider, err, requestId);
    } finally {
      if (!handedOver) release?.();
    }
  }

  /**
   * A provider URL as undici's `request(url)` splits it (origin, then path and query), parsed
   * once rather than on every request.
   */
  private target(url: string): { origin: string; pathname: string } {
    let target = this.targets.get(url);
    if (!target) {
      const parsed = new URL(url);
      target = { origin: parsed.origin, pathname: parsed.search ? `${parsed.pathname}${parsed.search}` : parsed.pathname };
      if (this.targets.size >= MAX_TARGETS) this.targets.clear(); // base URLs changed many times: start over
      this.targets.set(url, target);
    }
    return target;
  }

  /** Requests in flight to a provider (for tests and diagnostics). */
  inFlight(providerId: string): number {
    return this.pools.get(providerId)?.inFlight ?? 0;
  }

  /**
   * A slot of the provider's pool: at once when one is free, else after waiting at most
   * UPSTREAM_CONNECT_WAIT_MS (then 503 gateway_error with Retry-After), or until the client
   * leaves. The returned function frees it, once, however often it is called.
   */
  private acquire(provider: ResolvedProvider, signal: ClientAbort, requestId: string): Promise<() => void> {
    let pool = this.pools.get(provider.id);
    if (!pool) this.pools.set(provider.id, (pool = { limit: provider.maxConnections, inFlight: 0, waiters: [] }));
    const p = pool;
    p.limit = provider.maxConnections;
    let released = false;
    const release = () => {
      if (released) return;
      released = true;
      p.inFlight--;
      grantWaiting(p);
    };
    if (signal.aborted) return Promise.reject(new ClientClosedError());
    if (p.waiters.length === 0 && p.inFlight < p.limit) {
      p.inFlight++;
      return Promise.resolve(release);
    }
    return new Promise((resolve, reject) => {
      const leave = () => {
        clearTimeout(timer);
        signal.off('abort', onAbort);
        const at = p.waiters.indexOf(grant);
        if (at >= 0) p.waiters.splice(at, 1);
      };
      const grant = () => {
        leave();
        resolve(release);
      };
      const onAbort = () => {
        leave();
        reject(new ClientClosedError());
      };
      const timer = setTimeout(() => {
        leave();
        this.logger.warn(`Provider '${provider.id}' has all its ${p.limit} connections busy: request refused with 503`, tagOf(requestId));
        reject(
          new UpstreamError(503, 'All connections to the upstream provider are busy. Retry shortly.', 'busy', {
            'retry-after': String(Math.max(1, Math.ceil(this.config.upstreamConnectWaitMs / 1000))),
          }),
        );
      }, this.config.upstreamConnectWaitMs);
      signal.once('abort', onAbort);
      p.waiters.push(grant);
      grantWaiting(p); // the limit may have been raised since
    });
  }

  /**
   * Frees the slot once the body is done with: read to its end, failed, destroyed (a relay
   * breaking out of `for await`, undici on the client's abort), or the request aborted. A body
   * nobody starts reading is destroyed after a while, so its slot cannot leak.
   */
  private releaseWhenDone(body: Readable, release: () => void, signal: ClientAbort): void {
    const done = () => {
      clearTimeout(unread);
      signal.off('abort', done);
      release();
    };
    const unread = setTimeout(() => {
      const reading = body.readableDidRead || body.listenerCount('data') > 0 || body.listenerCount('readable') > 0;
      if (!reading) body.destroy(new Error('upstream response body was never read'));
    }, this.unreadBodyMs);
    unread.unref();
    body.once('end', done);
    body.once('close', done);
    body.once('error', done);
    signal.once('abort', done);
    if (body.destroyed || body.readableEnded || signal.aborted) done();
  }

  /** The provider's own dispatcher, sized to its max_connections (replaced when that changes). */
  private agentFor(provider: ResolvedProvider): Agent {
    const current = this.agents.get(provider.id);
    if (current && current.connections === provider.maxConnections) return current.agent;
    const agent = new Agent({
      keepAliveTimeout: 30_000,
      keepAliveMaxTimeout: 300_000,
      connections: provider.maxConnections,
      pipelining: 1,
      headersTimeout: this.config.upstreamTimeoutMs,
      bodyTimeout: this.config.upstreamTimeoutMs,
      connect: { timeout: this.config.upstreamConnectTimeoutMs },
    });
    this.agents.set(provider.id, { agent, connections: provider.maxConnections });
    // requests still running on the old pool finish there; it closes after them
    if (current) void current.agent.close().catch(() => undefined);
    return agent;
  }

  /** Provider statuses to the gateway's: caller's faults pass through, ours become gateway_error. */
  private mapError(
    provider: ResolvedProvider,
    status: number,
    text: string,
    retryAfter: string | string[] | undefined,
    requestId: string,
  ): ApiError {
    if (status === 400 || status === 404 || status === 422) {
      const message = providerMessage(text);
      return new ApiError(
        status,
        'invalid_request_error',
        message === null ? `The provider refused the request (HTTP ${status}).` : scrubProviderSecrets(message, provider).slice(0, 2_000),
      );
    }
    if (status === 401 || status === 403) {
      this.logger.error(`Provider '${provider.id}' refused our credentials (HTTP ${status})`, tagOf(requestId));
      return new UpstreamError(
        502,
        'The upstream provider rejected the gateway credentials. The operator has been notified.',
        'credentials',
      );
    }
    if (status === 429) {
      const seconds = retryAfterSeconds(retryAfter);
      return new UpstreamError(
        503,
        'The upstream provider is rate limiting requests. Retry shortly.',
        'rate_limited',
        { 'retry-after': String(seconds) },
        seconds * 1000,
      );
    }
    if (status === 408) return new UpstreamError(504, 'The upstream provider timed out.', 'timeout');
    if (status >= 500) return new UpstreamError(502, `The upstream provider failed (HTTP ${status}).`, 'server_error');
    return new GatewayError(502, `The upstream provider failed (HTTP ${status}).`);
  }

  /** A thrown transport error (or the client's abort) of request `requestId` as the answer the client gets. */
  failure(provider: ResolvedProvider, err: unknown, requestId: string): ApiError {
    if (err instanceof ApiError) return err;
    if (err instanceof errors.HeadersTimeoutError || err instanceof errors.BodyTimeoutError) {
      return new UpstreamError(504, 'The upstream provider did not answer in time.', 'timeout');
    }
    if ((err as Error)?.name === 'AbortError' || err instanceof errors.RequestAbortedError) {
      return new ClientClosedError();
    }
    this.logger.warn(
      `Provider '${provider.id}' unreachable: ${(err as { code?: string }).code ?? (err as Error)?.name ?? 'error'}`,
      tagOf(requestId),
    );
    return new UpstreamError(502, 'The upstream provider could not be reached.', 'unreachable');
  }

  async onApplicationShutdown(): Promise<void> {
    await Promise.all([...this.agents.values()].map(({ agent }) => agent.close().catch(() => undefined)));
    this.agents.clear();
  }
}

/** Provider URLs kept parsed (a few per provider). */
const MAX_TARGETS = 256;

/** Hands free slots to waiting requests, oldest first. */
function grantWaiting(pool: ProviderPool): void {
  while (pool.inFlight < pool.limit && pool.waiters.length > 0) {
    const grant = pool.waiters.shift()!;
    pool.inFlight++;
    grant();
  }
}

const REDACTED = '[redacted]';

/**
 * A provider message with the gateway's provider key and the provider's base URL (and its
 * host, and any credentials in it) replaced: a provider that echoes the request must not show
 * them to the customer (CONTRACT §3).
 */
export function scrubProviderSecrets(message: string, provider: Pick<ResolvedProvider, 'baseUrl' | 'apiKey'>): string {
  const needles = new Set<string>();
  const add = (value: string | null | undefined) => {
    if (value) needles.add(value);
  };
  if (provider.apiKey) {
    add(provider.apiKey);
    add(encodeURIComponent(provider.apiKey));
    add(JSON.stringify(provider.apiKey).slice(1, -1));
  }
  add(provider.baseUrl);
  add(provider.baseUrl.replace(/\/+$/, ''));
  try {
    const url = new URL(provider.baseUrl);
    add(url.origin);
    add(url.host);
    add(url.hostname);
    add(url.hostname.replace(/^\[|\]$/g, ''));
    add(url.username);
    add(url.password);
    add(url.username && decodeURIComponent(url.username));
    add(url.password && decodeURIComponent(url.password));
  } catch {
    // not a URL: the base URL itself was scrubbed
  }
  let scrubbed = message;
  for (const needle of [...needles].sort((a, b) => b.length - a.length)) {
    scrubbed = scrubbed.replace(new RegExp(needle.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'), 'gi'), REDACTED);
  }
  return scrubbed;
}

/** A provider's Retry-After (seconds or an HTTP date) as whole seconds, at least 1. */
export function retryAfterSeconds(value: string | string[] | undefined, now = Date.now()): number {
  const text = Array.isArray(value) ? value[0] : value;
  if (!text) return 1;
  if (/^\d{1,6}$/.test(text.trim())) return Math.max(1, Number(text.trim()));
  const date = Date.parse(text);
  return Number.isNaN(date) ? 1 : Math.min(86_400, Math.max(1, Math.ceil((date - now) / 1000)));
}

/** The provider's own error message, when its body has one (OpenAI shape or a bare string); unscrubbed. */
function providerMessage(text: string): string | null {
  try {
    const parsed = JSON.parse(text) as { error?: { message?: unknown } | string; message?: unknown };
    const candidate = typeof parsed.error === 'string' ? parsed.error : (parsed.error?.message ?? parsed.message);
    // not cut here: a secret cut in half would escape the scrubbing (cut after it)
    return typeof candidate === 'string' && candidate.length > 0 ? candidate : null;
  } catch {
    return null;
  }
}
