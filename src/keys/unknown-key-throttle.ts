import { LRUCache } from 'lru-cache';

interface Bucket {
  tokens: number;
  at: number;
}

/**
 * How many lookups of keys the process does not know (a database query each) one client
 * address may cause: a token bucket per address (per /64 for IPv6), `perMinute` deep and
 * refilled at `perMinute` a minute. In-process, bounded to the most recent addresses.
 */
export class UnknownKeyThrottle {
  private readonly buckets: LRUCache<string, Bucket>;

  constructor(
    private readonly perMinute: number,
    maxAddresses = 10_000,
  ) {
    this.buckets = new LRUCache({ max: maxAddresses });
  }

  /** Takes one lookup from the address's budget: 0 when granted, else the seconds to wait. */
  take(address: string | undefined, now = Date.now()): number {
    const id = addressBucket(address);
    const bucket = this.refilled(id, now);
    if (bucket.tokens >= 1) {
      bucket.tokens -= 1;
      this.buckets.set(id, bucket);
      return 0;
    }
    this.buckets.set(id, bucket);
    return Math.max(1, Math.ceil(((1 - bucket.tokens) * 60) / this.perMinute));
  }

  /** Gives back a lookup that found a key after all. */
  refund(address: string | undefined, now = Date.now()): void {
    const id = addressBucket(address);
    const bucket = this.refilled(id, now);
    bucket.tokens = Math.min(this.perMinute, bucket.tokens + 1);
    this.buckets.set(id, bucket);
  }

  private refilled(id: string, now: number): Bucket {
    const bucket = this.buckets.get(id);
    if (!bucket) return { tokens: this.perMinute, at: now };
    const tokens = Math.min(this.perMinute, bucket.tokens + (Math.max(0, now - bucket.at) * this.perMinute) / 60_000);
    return { tokens, at: now };
  }
}

/** One budget per IPv4 address, and per /64 for IPv6 (one host usually holds a whole /64). */
export function addressBucket(address: string | undefined): string {
  if (!address) return 'unknown';
  const bare = address.replace(/%.*$/, '');
  if (/^::ffff:\d+\.\d+\.\d+\.\d+$/i.test(bare)) return bare.slice(7);
  if (!bare.includes(':')) return bare;
  const [head, tail] = bare.split('::');
  const left = head ? head.split(':') : [];
  const right = tail ? tail.split(':') : [];
  const groups = tail === undefined ? left : [...left, ...Array<string>(Math.max(0, 8 - left.length - right.length)).fill('0'), ...right];
  return `${groups
    .slice(0, 4)
    .map((g) => (parseInt(g, 16) || 0).toString(16))
    .join(':')}::/64`;
}
