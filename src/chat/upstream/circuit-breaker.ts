export type CircuitState = 'closed' | 'open' | 'half_open';

/** What `CircuitBreakers.acquire` granted: an ordinary send, or the one probe of an open circuit. */
export type CircuitTicket = 'closed' | 'probe';

interface Circuit {
  consecutiveFailures: number;
  /** When it opened (or reopened after a failed probe); null while closed. */
  openedAt: number | null;
  /** A probe is in flight: other requests keep skipping the provider until it ends. */
  probing: boolean;
}

/**
 * One circuit breaker per provider, in this process. Closed, it lets everything through and
 * counts consecutive failures (a request that failed there after its retries is one);
 * `failures` of them in a row open it. Open, it lets nothing
 * through until `cooldownMs` have passed; then one request is let through as a probe
 * (half-open): its success closes the circuit, its failure opens it for another cooldown.
 */
export class CircuitBreakers {
  private readonly circuits = new Map<string, Circuit>();

  constructor(
    private readonly failures: number,
    private readonly cooldownMs: number,
    private readonly onChange: (provider: string, state: CircuitState) => void = () => undefined,
    private readonly now: () => number = Date.now,
  ) {}

  /** May a request be sent to `provider` now? null: no (open, or its probe is in flight). */
  acquire(provider: string): CircuitTicket | null {
    const circuit = this.circuits.get(provider);
    if (!circuit || circuit.openedAt === null) return 'closed';
    if (circuit.probing || this.now() - circuit.openedAt < this.cooldownMs) return null;
    circuit.probing = true;
    this.onChange(provider, 'half_open');
    return 'probe';
  }

  /** The provider answered: whoever asked, it works again. */
  success(provider: string): void {
    const circuit = this.circuits.get(provider);
    if (!circuit) return;
    const wasOpen = circuit.openedAt !== null;
    circuit.consecutiveFailures = 0;
    circuit.openedAt = null;
    circuit.probing = false;
    if (wasOpen) this.onChange(provider, 'closed');
  }

  /** The provider failed a request sent with `ticket`. */
  failure(provider: string, ticket: CircuitTicket): void {
    let circuit = this.circuits.get(provider);
    if (!circuit) this.circuits.set(provider, (circuit = { consecutiveFailures: 0, openedAt: null, probing: false }));
    if (ticket === 'probe') {
      circuit.probing = false;
      circuit.openedAt = this.now();
      this.onChange(provider, 'open');
      return;
    }
    if (circuit.openedAt !== null) return; // sent before it opened: it is open already
    circuit.consecutiveFailures++;
    if (circuit.consecutiveFailures >= this.failures) {
      circuit.openedAt = this.now();
      this.onChange(provider, 'open');
    }
  }

  /** A request ended without telling whether the provider works (the client left, the caller's 4xx). */
  release(provider: string, ticket: CircuitTicket): void {
    const circuit = this.circuits.get(provider);
    if (ticket === 'probe' && circuit?.probing) {
      circuit.probing = false; // the next request probes instead
      this.onChange(provider, 'open');
    }
  }

  state(provider: string): CircuitState {
    const circuit = this.circuits.get(provider);
    if (!circuit || circuit.openedAt === null) return 'closed';
    return circuit.probing ? 'half_open' : 'open';
  }

  /** Milliseconds until an open circuit lets a probe through (0 when it would now). */
  probeInMs(provider: string): number {
    const openedAt = this.circuits.get(provider)?.openedAt;
    return openedAt == null ? 0 : Math.max(0, openedAt + this.cooldownMs - this.now());
  }
}
