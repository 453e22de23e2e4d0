import { CircuitBreakers, CircuitState } from '../../src/chat/upstream/circuit-breaker';
import { backoffMs } from '../../src/chat/upstream/upstream-router';

describe(CircuitBreakers.name, () => {
  let now: number;
  let changes: Array<[string, CircuitState]>;
  let breakers: CircuitBreakers;

  beforeEach(() => {
    now = 1_000_000;
    changes = [];
    breakers = new CircuitBreakers(
      3,
      10_000,
      (p, s) => changes.push([p, s]),
      () => now,
    );
  });

  it('opens after N consecutive failures of a provider, and only of that one', () => {
    breakers.failure('a', breakers.acquire('a')!);
    breakers.failure('a', breakers.acquire('a')!);
    breakers.success('a'); // a success in between starts the count again
    for (let i = 0; i < 2; i++) breakers.failure('a', breakers.acquire('a')!);
    expect(breakers.state('a')).toBe('closed');
    breakers.failure('a', breakers.acquire('a')!);
    expect(breakers.state('a')).toBe('open');
    expect(breakers.acquire('a')).toBeNull();
    expect(breakers.acquire('b')).toBe('closed');
    expect(changes).toEqual([['a', 'open']]);
  });

  it('lets one probe through after the cooldown; its failure reopens, its success closes', () => {
    for (let i = 0; i < 3; i++) breakers.failure('a', 'closed');
    now += 9_999;
    expect(breakers.acquire('a')).toBeNull();
    expect(breakers.probeInMs('a')).toBe(1);
    now += 1;
    expect(breakers.acquire('a')).toBe('probe');
    expect(breakers.acquire('a')).toBeNull(); // one probe at a time
    expect(breakers.state('a')).toBe('half_open');
    breakers.failure('a', 'probe');
    expect(breakers.state('a')).toBe('open');
    expect(breakers.probeInMs('a')).toBe(10_000);

    now += 10_000;
    expect(breakers.acquire('a')).toBe('probe');
    breakers.success('a');
    expect(breakers.state('a')).toBe('closed');
    expect(breakers.acquire('a')).toBe('closed');
    expect(changes.map(([, s]) => s)).toEqual(['open', 'half_open', 'open', 'half_open', 'closed']);
  });

  it('a probe that ends without a verdict (the client left) lets the next request probe', () => {
    for (let i = 0; i < 3; i++) breakers.failure('a', 'closed');
    now += 10_000;
    expect(breakers.acquire('a')).toBe('probe');
    breakers.release('a', 'probe');
    expect(breakers.acquire('a')).toBe('probe');
  });

  it('a late failure of a request sent before the circuit opened does not extend it', () => {
    for (let i = 0; i < 3; i++) breakers.failure('a', 'closed');
    now += 5_000;
    breakers.failure('a', 'closed');
    expect(breakers.probeInMs('a')).toBe(5_000);
  });
});

describe('backoffMs', () => {
  it('is full jitter over base × 2^(attempt-1), capped at 2 s', () => {
    expect(backoffMs(1, 100, null, () => 0.5)).toBe(50);
    expect(backoffMs(2, 100, null, () => 0.5)).toBe(100);
    expect(backoffMs(3, 100, null, () => 0.999)).toBe(399);
    expect(backoffMs(10, 100, null, () => 0.999)).toBe(1_998);
    expect(backoffMs(1, 100, null, () => 0)).toBe(0);
  });

  it("waits a provider's Retry-After when it is short, and gives up on the provider when it is long", () => {
    expect(backoffMs(1, 100, 1_000, () => 0.5)).toBe(1_000);
    expect(backoffMs(1, 100, 2_000, () => 0.5)).toBe(2_000);
    expect(backoffMs(1, 100, 5_000, () => 0.5)).toBeNull();
  });
});
