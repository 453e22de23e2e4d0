import { generateApiKey } from '../../src/keys/api-key-format';
import { AuthenticatedKey, KeyCache } from '../../src/keys/key-cache';
import { addressBucket, UnknownKeyThrottle } from '../../src/keys/unknown-key-throttle';

const key = (id: string, workspaceId = 'w1'): AuthenticatedKey => ({
  id,
  workspaceId,
  name: id,
  prefix: 'nxr_x',
  models: null,
  budgetMicros: null,
  expiresAt: null,
  rpmLimit: null,
  tpmLimit: null,
});

describe(KeyCache.name, () => {
  it('a burst of forged keys never evicts a live key', () => {
    const cache = new KeyCache(30_000, 100, 10_000, 10);
    cache.set('live', key('k1'), 0);
    for (let i = 0; i < 10_000; i++) cache.set(generateApiKey().hash, null, 1);
    expect(cache.get('live', 2)?.key?.id).toBe('k1');
  });

  it('evicts the least recently used known key, not the oldest one', () => {
    const cache = new KeyCache(30_000, 2);
    cache.set('a', key('a'), 0);
    cache.set('b', key('b'), 0);
    cache.get('a', 1); // used: b is now the least recent
    cache.set('c', key('c'), 2);
    expect(cache.get('a', 3)?.key?.id).toBe('a');
    expect(cache.get('b', 3)).toBeUndefined();
    expect(cache.get('c', 3)?.key?.id).toBe('c');
  });

  it('keeps unknown hashes for a shorter time than known keys', () => {
    const cache = new KeyCache(30_000, 100, 5_000, 10);
    cache.set('known', key('k1'), 0);
    cache.set('unknown', null, 0);
    expect(cache.get('unknown', 5_000)).toEqual({ key: null, loadedAt: 0 });
    expect(cache.get('unknown', 5_001)).toBeUndefined();
    expect(cache.get('known', 29_000)?.key?.id).toBe('k1');
  });

  it('drops a disabled or revoked key by its id and by its workspace', () => {
    const cache = new KeyCache();
    cache.set('h1', null, 0, { keyId: 'k1', workspaceId: 'w1' });
    cache.set('h2', null, 0, { keyId: 'k2', workspaceId: 'w2' });
    expect(cache.get('h1', 1)?.key).toBeNull();
    cache.invalidate({ keyId: 'k1' });
    expect(cache.get('h1', 1)).toBeUndefined();
    cache.invalidate({ workspaceId: 'w2' });
    expect(cache.get('h2', 1)).toBeUndefined();
  });

  it('a key that turns out to exist leaves the unknown cache, and the other way round', () => {
    const cache = new KeyCache();
    cache.set('h', null, 0);
    cache.set('h', key('k1'), 1);
    expect(cache.get('h', 2)?.key?.id).toBe('k1');
    cache.invalidate({ keyId: 'k1' });
    expect(cache.get('h', 2)).toBeUndefined();
  });

  it('serves nothing older than maxAgeMs (invalidations cannot arrive)', () => {
    const cache = new KeyCache();
    cache.set('h', key('k1'), 0);
    expect(cache.get('h', 1_000, 1_000)?.key?.id).toBe('k1');
    expect(cache.get('h', 1_001, 1_000)).toBeUndefined();
  });
});

describe(UnknownKeyThrottle.name, () => {
  it('grants a burst per address, then refuses until it refills', () => {
    const throttle = new UnknownKeyThrottle(3);
    expect([0, 1, 2].map(() => throttle.take('10.0.0.1', 0))).toEqual([0, 0, 0]);
    const wait = throttle.take('10.0.0.1', 0);
    expect(wait).toBeGreaterThan(0);
    expect(wait).toBeLessThanOrEqual(20);
    expect(throttle.take('10.0.0.2', 0)).toBe(0); // another address has its own budget
    expect(throttle.take('10.0.0.1', 20_000)).toBe(0); // one lookup refilled after 20 s
  });

  it('gives back a lookup that found a key', () => {
    const throttle = new UnknownKeyThrottle(1);
    expect(throttle.take('a', 0)).toBe(0);
    throttle.refund('a', 0);
    expect(throttle.take('a', 0)).toBe(0);
    expect(throttle.take('a', 0)).toBeGreaterThan(0);
  });

  it('budgets IPv6 clients per /64 and IPv4-mapped addresses as IPv4', () => {
    expect(addressBucket('2001:db8:1:2:aaaa::1')).toBe(addressBucket('2001:db8:1:2::ffff:2'));
    expect(addressBucket('2001:db8:1:2::1')).not.toBe(addressBucket('2001:db8:1:3::1'));
    expect(addressBucket('::ffff:127.0.0.1')).toBe('127.0.0.1');
    expect(addressBucket('::1')).toBe('0:0:0:0::/64');
    expect(addressBucket(undefined)).toBe('unknown');
  });
});
