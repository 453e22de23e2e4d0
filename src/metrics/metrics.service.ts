import { Injectable } from '@nestjs/common';
import { Counter, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

/** Prometheus metrics of this process, in a registry of its own (one per app instance). */
@Injectable()
export class MetricsService {
  readonly registry = new Registry();

  readonly requests = new Counter({
    name: 'nexo_gateway_requests_total',
    help: 'Gateway requests by endpoint and answered status',
    labelNames: ['endpoint', 'status'] as const,
    registers: [this.registry],
  });

  readonly upstreamLatency = new Histogram({
    name: 'nexo_upstream_latency_seconds',
    help: 'Time from forwarding to the provider until its answer (headers for streams)',
    labelNames: ['provider'] as const,
    buckets: [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120],
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

  constructor() {
    collectDefaultMetrics({ register: this.registry, prefix: 'nexo_' });
  }
}
