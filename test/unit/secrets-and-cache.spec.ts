import { randomBytes } from 'node:crypto';
import { SecretBox } from '../../src/common/secret-box';
import { KeyCache, AuthenticatedKey } from '../../src/keys/key-cache';
import { decodeCursor, encodeCursor } from '../../src/common/pagination';
import { ApiError } from '../../src/common/errors/api-error';

describe(SecretBox.name, () => {
  it('round-trips and never stores the plaintext', () => {
    const box = new SecretBox(randomBytes(32));
    const sealed = box.seal('sk-live-provider-secret');
    expect(sealed).not.toContain('sk-live');
    expect(box.open(sealed)).toBe('sk-live-provider-secret');
    expect(box.seal('same')).not.toBe(box.seal('same'));
  });

  it('refuses a tampered or foreign secret', () => {
    const box = new SecretBox(randomBytes(32));
    const sealed = box.seal('secret');
    const parts = sealed.split('.');
    parts[3] = Buffer.from('forged').toString('base64url');
    expect(() => box.open(parts.join('.'))).toThrow();
    expect(() => new SecretBox(randomBytes(32)).open(sealed)).toThrow();
  });
});

describe(KeyCache.name, () => {
  const key = (id: string, workspaceId: string): AuthenticatedKey => ({
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

  it('drops entries by key id, by workspace, and after its TTL', () => {
    const cache = new KeyCache(1_000);
    cache.set('h1', key('k1', 'w1'), 0);
    cache.set('h2', key('k2', 'w1'), 0);
    cache.set('h3', key('k3', 'w2'), 0);
    cache.invalidate({ keyId: 'k1' });
    expect(cache.get('h1', 10)).toBeUndefined();
    expect(cache.get('h2', 10)?.key?.id).toBe('k2');
    cache.invalidate({ workspaceId: 'w1' });
    expect(cache.get('h2', 10)).toBeUndefined();
    expect(cache.get('h3', 999)?.key?.id).toBe('k3');
    expect(cache.get('h3', 1_001)).toBeUndefined();
  });

  it('stays bounded', () => {
    const cache = new KeyCache(60_000, 3);
    for (let i = 0; i < 10; i++) cache.set(`h${i}`, null, 0);
    expect(cache.get('h0', 1)).toBeUndefined();
    expect(cache.get('h9', 1)).toEqual({ key: null, loadedAt: 0 });
  });
});

describe('pagination cursors', () => {
  it('round-trip and reject garbage with a 400', () => {
    expect(decodeCursor(encodeCursor('12345'))).toBe('12345');
    const outOfRange = Buffer.from('id:9999999999999999999').toString('base64url'); // above bigint
    for (const bad of [
      '',
      'abc',
      outOfRange,
      Buffer.from('id:-1').toString('base64url'),
      Buffer.from("id:1'; drop").toString('base64url'),
    ]) {
      let error: unknown;
      try {
        decodeCursor(bad);
      } catch (err) {
        error = err;
      }
      expect(error).toBeInstanceOf(ApiError);
      expect((error as ApiError).status).toBe(400);
    }
  });
});
