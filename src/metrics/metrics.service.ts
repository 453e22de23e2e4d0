import { Injectable } from '@nestjs/common';
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { RequestScope } from '../common/http/request-scope';

/** Buckets of latencies the gateway adds: sub-millisecond to a second. */
const OVERHEAD_BUCKETS = [0.0005, 0.001, 0.002, 0.003, 0.005, 0.0075, 0.01, 0.025, 0.05, 0.1, 0.25, 1];
const HTTP_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120];

/** Circuit breaker states, as the gauge's value. */
export const CIRCUIT_STATE = { closed: 0, half_open: 1, open: 2 } as const;
export type CircuitState = keyof typeof CIRCUIT_STATE;

/**
 * Prometheus metrics of this process, in a registry of its own (one per app instance). Label
 * values are bounded: route templates (never raw paths), catalogued model ids and provider ids
 * (never what a client sent), HTTP methods and statuses.
 */
@Injectable()
export class MetricsService {
  readonly registry = new Registry();

  readonly httpDuration = new Histogram({
    name: 'http_request_duration_seconds',
    help: 'HTTP requests by method, route template (unmatched: no route) and status; 499: the client left first',
    labelNames: ['method', 'route', 'status'] as const,
    buckets: HTTP_BUCKETS,
    registers: [this.registry],
  });

  readonly gatewayOverhead = new Histogram({
    name: 'nexo_gateway_overhead_seconds',
    help: 'Time a proxied request spent in the gateway: its duration minus the time its providers took (non-streamed answers)',
    labelNames: ['route'] as const,
    buckets: OVERHEAD_BUCKETS,
    registers: [this.registry],
  });

  readonly requests = new Counter({
    name: 'nexo_gateway_requests_total',
    help: 'Gateway requests by endpoint and answered status',
    labelNames: ['endpoint', 'status'] as const,
    registers: [this.registry],
  });

  /** Observed through `observeUpstream`, which also sums it into the request's scope. */
  readonly upstreamLatency = new Histogram({
    name: 'nexo_upstream_latency_seconds',
    help: 'Time from forwarding to the provider until its answer (headers for streams)',
    labelNames: ['provider'] as const,
    buckets: [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120],
    registers: [this.registry],
  });

  readonly upstreamErrors = new Counter({
    name: 'nexo_upstream_errors_total',
    help: 'Proxied requests answered with a gateway error (502, 503, 504) after reaching a provider, by provider and status',
    labelNames: ['provider', 'status'] as const,
    registers: [this.registry],
  });

  readonly circuitState = new Gauge({
    name: 'nexo_provider_circuit_state',
    help: 'Circuit breaker of each provider: 0 closed, 1 half open (probing), 2 open (nothing sent)',
    labelNames: ['provider'] as const,
    registers: [this.registry],
  });

  readonly upstreamAttemptFailures = new Counter({
    name: 'nexo_upstream_attempt_failures_total',
    help: 'Sends to a provider that failed, retried or not, by provider and reason (unreachable, server_error, rate_limited, timeout, credentials, busy)',
    labelNames: ['provider', 'reason'] as const,
    registers: [this.registry],
  });

  readonly holds = new Counter({
    name: 'nexo_billing_holds_total',
    help: 'Hold attempts by outcome',
    labelNames: ['outcome'] as const,
    registers: [this.registry],
  });

  readonly settlements = new Counter({
    name: 'nexo_billing_settlements_total',
    help: 'Requests handed to settlement, by path (queue, sync fallback, lost)',
    labelNames: ['path'] as const,
    registers: [this.registry],
  });

  readonly chargedMicros = new Counter({
    name: 'nexo_billing_cost_micros_total',
    help: 'Cost of answered requests in micro-USD, as reported to clients',
    labelNames: ['model'] as const,
    registers: [this.registry],
  });

  readonly tokens = new Counter({
    name: 'nexo_tokens_total',
    help: 'Tokens of the requests handed to settlement, by catalogued model and kind (prompt, completion)',
    labelNames: ['model', 'kind'] as const,
    registers: [this.registry],
  });

  readonly rateLimitCalls = new Counter({
    name: 'nexo_rate_limit_redis_calls_total',
    help: "Redis calls of the rate limiter, by kind: check (on a request's path), refill (a share of a window taken off the path), give_back (tokens or an unused share returned)",
    labelNames: ['kind'] as const,
    registers: [this.registry],
  });

  readonly rateLimitLeased = new Counter({
    name: 'nexo_rate_limit_leased_total',
    help: "Requests admitted from this process's share of their key's window, without a Redis call",
    registers: [this.registry],
  });

  constructor() {
    collectDefaultMetrics({ register: this.registry, prefix: 'nexo_' });
  }

  /**
   * One finished HTTP request: its duration by route template and, for a request that reached
   * a provider, the gateway's overhead and any gateway error, from its RequestScope.
   */
  observeRequest(method: string, route: string, status: number, seconds: number, scope: RequestScope | undefined, stream: boolean): void {
    this.httpDuration.observe({ method, route, status }, seconds);
    if (!scope?.provider) return;
    if (!stream && status < 400) this.gatewayOverhead.observe({ route }, Math.max(0, seconds - scope.upstreamSeconds));
    if (status >= 502 && status <= 504) this.upstreamErrors.inc({ provider: scope.provider, status });
  }

  /**
   * One send to a provider, also summed into the request's scope: what the providers took is
   * subtracted from the request's duration to give the gateway's own overhead.
   */
  observeUpstream(scope: RequestScope, provider: string, seconds: number): void {
    this.upstreamLatency.observe({ provider }, seconds);
    scope.upstreamSeconds += seconds;
    scope.provider = provider;
  }

  /** Tokens of one settled request (the model id is the catalog's). */
  observeTokens(model: string, promptTokens: number, completionTokens: number): void {
    if (promptTokens > 0) this.tokens.inc({ model, kind: 'prompt' }, promptTokens);
    if (completionTokens > 0) this.tokens.inc({ model, kind: 'completion' }, completionTokens);
  }

  /** For the circuit breaker: the state of one provider's circuit. */
  setCircuitState(provider: string, state: CircuitState): void {
    this.circuitState.set({ provider }, CIRCUIT_STATE[state]);
  }
}
