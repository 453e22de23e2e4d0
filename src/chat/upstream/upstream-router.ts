import { Injectable, Logger } from '@nestjs/common';
import type { UpstreamRoute } from '../../catalog/catalog.service';
import { ApiError, ClientClosedError, GatewayError } from '../../common/errors/api-error';
import { AppConfig } from '../../config/app-config';
import { MetricsService } from '../../metrics/metrics.service';
import type { ClientAbort } from '../client-abort';
import type { ProxyBody, ProxyCall } from '../proxy-call';
import { CircuitBreakers } from './circuit-breaker';
import { UpstreamClient, UpstreamError, UpstreamResponse } from './upstream.client';

/** The longest wait between two attempts (a provider's longer Retry-After sends us to the next provider instead). */
const MAX_BACKOFF_MS = 2_000;

/**
 * Sends a request to the first of its routes (the model's provider, then its fallbacks) that
 * answers, before any byte has reached the client:
 *
 * - each route gets up to UPSTREAM_MAX_ATTEMPTS sends; connection errors, 5xx and 429 are
 *   retried after a jittered exponential backoff (full jitter: a random wait up to
 *   UPSTREAM_RETRY_BASE_MS × 2^(n-1), at most 2 s; a 429's Retry-After when it says longer);
 * - a timeout, a refusal of our credentials, a busy pool, or the retries used up: the next route;
 * - the caller's own fault (400, 404, 422 from the provider) or the client leaving ends it at once;
 * - a provider whose circuit is open is skipped without sending anything (see CircuitBreakers); a
 *   request whose sends to a provider all failed counts as one failure of its circuit.
 *
 * Every send counts in `call.attempts`, and `call.provider` is the provider sent to last (the one
 * that answered, on success). Once the router returns, nothing is ever sent again: a failure
 * after that (mid-stream) is the relay's, and is never retried.
 */
@Injectable()
export class UpstreamRouter {
  private readonly logger = new Logger(UpstreamRouter.name);
  readonly breakers: CircuitBreakers;

  constructor(
    private readonly upstream: UpstreamClient,
    private readonly config: AppConfig,
    private readonly metrics: MetricsService,
  ) {
    this.breakers = new CircuitBreakers(config.circuitBreaker.failures, config.circuitBreaker.cooldownMs, (provider, state) => {
      if (state === 'open') this.logger.warn(`Provider '${provider}' circuit open: nothing is sent to it for a while`);
      else if (state === 'closed') this.logger.log(`Provider '${provider}' circuit closed: it answers again`);
      this.metrics.setCircuitState(provider, state);
    });
  }

  async send(call: ProxyCall, routes: UpstreamRoute[], payloadFor: (route: UpstreamRoute) => ProxyBody): Promise<UpstreamResponse> {
    let lastError: ApiError | null = null;
    for (const route of routes) {
      const id = route.provider.id;
      let ticket = this.breakers.acquire(id);
      if (!ticket) continue;
      const payload = payloadFor(route);
      for (let attempt = 1; ; attempt++) {
        if (call.abort.aborted) {
          this.breakers.release(id, ticket);
          throw new ClientClosedError();
        }
        call.provider = route.provider;
        call.attempts++;
        let error: ApiError;
        const started = performance.now();
        try {
          const response = await this.upstream.post(route.provider, call.path, payload, call.abort, call.req.id);
          this.breakers.success(id);
          return response;
        } catch (err) {
          error = err instanceof ApiError ? err : this.upstream.failure(route.provider, err, call.req.id);
        } finally {
          this.metrics.observeUpstream(call.req.scope, id, (performance.now() - started) / 1000);
        }
        if (!(error instanceof UpstreamError)) {
          // the client left, or the provider refused the request itself: no other provider would do better
          this.breakers.release(id, ticket);
          throw error;
        }
        lastError = error;
        this.metrics.upstreamAttemptFailures.inc({ provider: id, reason: error.reason });
        const wait = backoffMs(attempt, this.config.upstreamRetryBaseMs, error.retryAfterMs);
        // a probe gets one send; anything else its retries, and fails the circuit once they are used up
        if (!error.retryable || attempt >= this.config.upstreamMaxAttempts || wait === null || ticket === 'probe') {
          if (error.reason === 'busy') this.breakers.release(id, ticket);
          else this.breakers.failure(id, ticket);
          break;
        }
        await sleep(wait, call.abort);
        const next = this.breakers.acquire(id); // other requests may have opened it meanwhile
        if (!next) break;
        ticket = next;
      }
    }
    if (lastError) throw lastError;
    // every route was skipped: their circuits are open
    const probeIn = Math.min(...routes.map((r) => this.breakers.probeInMs(r.provider.id)));
    throw new GatewayError(503, 'The upstream provider is unavailable (it failed repeatedly). Retry shortly.', {
      'retry-after': String(Math.max(1, Math.ceil(probeIn / 1000))),
    });
  }
}

/**
 * The wait before attempt `attempt + 1`: full jitter over base × 2^(attempt-1), or the provider's
 * Retry-After when longer; null when that is more than MAX_BACKOFF_MS (better try another provider).
 */
export function backoffMs(attempt: number, baseMs: number, retryAfterMs: number | null, random = Math.random): number | null {
  if (retryAfterMs !== null && retryAfterMs > MAX_BACKOFF_MS) return null;
  const jittered = Math.floor(random() * Math.min(MAX_BACKOFF_MS, baseMs * 2 ** (attempt - 1)));
  return Math.max(jittered, retryAfterMs ?? 0);
}

/** Resolves after `ms`, or at once when `signal` aborts (the caller checks it). */
function sleep(ms: number, signal: ClientAbort): Promise<void> {
  if (ms <= 0 || signal.aborted) return Promise.resolve();
  return new Promise((resolve) => {
    const done = () => {
      clearTimeout(timer);
      signal.off('abort', done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal.once('abort', done);
  });
}
