import { createHash } from 'node:crypto';
import {
  apiKeyChecksumMatches,
  displayPrefix,
  generateApiKey,
  hashApiKey,
  hasApiKeyShape,
  KEY_PREFIX,
} from '../../src/keys/api-key-format';

/** What KeysService.authenticate checks before any lookup: the shape on every request, the checksum on a cache miss. */
const isWellFormedApiKey = (key: string) => hasApiKeyShape(key) && apiKeyChecksumMatches(key);

describe('API key format', () => {
  it('generates prefixed keys with 256 random bits and a valid checksum', () => {
    const keys = new Set<string>();
    for (let i = 0; i < 200; i++) {
      const { key, hash, prefix, lastFour } = generateApiKey();
      expect(key.startsWith(KEY_PREFIX)).toBe(true);
      expect(key).toHaveLength(KEY_PREFIX.length + 43 + 6);
      expect(isWellFormedApiKey(key)).toBe(true);
      expect(hash).toBe(hashApiKey(key));
      expect(hash).toMatch(/^[0-9a-f]{64}$/);
      expect(prefix).toBe(displayPrefix(key));
      expect(lastFour).toBe(key.slice(-4));
      keys.add(key);
    }
    expect(keys.size).toBe(200);
  });

  it('refuses a mistyped key by its checksum, without a lookup', () => {
    const { key } = generateApiKey();
    const body = key.slice(KEY_PREFIX.length);
    for (const position of [0, 10, 42, 45]) {
      const c = body[position];
      const typo = KEY_PREFIX + body.slice(0, position) + (c === 'a' ? 'b' : 'a') + body.slice(position + 1);
      expect(isWellFormedApiKey(typo)).toBe(false);
      // the shape alone passes (checked on every request); the checksum fails (checked before any lookup)
      expect(hasApiKeyShape(typo)).toBe(true);
      expect(apiKeyChecksumMatches(typo)).toBe(false);
    }
  });

  it.each(['', 'nxr_', 'sk-proj-abc', `nxr_${'a'.repeat(48)}`, `nxr_${'a'.repeat(50)}`, `NXR_${'a'.repeat(49)}`])(
    'refuses malformed key %j',
    (key) => {
      expect(isWellFormedApiKey(key)).toBe(false);
    },
  );

  it('never stores a reversible form: the hash is SHA-256 of the key', () => {
    const { key, hash } = generateApiKey();
    expect(hash).not.toContain(key.slice(KEY_PREFIX.length, KEY_PREFIX.length + 8));
    expect(hash).toBe(createHash('sha256').update(key).digest('hex'));
  });
});
