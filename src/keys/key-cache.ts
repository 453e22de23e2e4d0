import { LRUCache } from 'lru-cache';

/** What the hot path needs to know about the calling key, cached in-process. */
export interface AuthenticatedKey {
  id: string;
  workspaceId: string;
  name: string;
  prefix: string;
  models: ReadonlySet<string> | null;
  budgetMicros: number | null;
  expiresAt: number | null;
  /** Effective limits: the key's own, else the workspace's; null = unlimited. */
  rpmLimit: number | null;
  tpmLimit: number | null;
}

/** A key that exists but may not be used (disabled or revoked): cached under its id. */
export interface InactiveKey {
  keyId: string;
  workspaceId: string;
}

export interface KeyCacheEntry {
  /** The usable key; null for a hash of no key, or of a disabled or revoked one. */
  key: AuthenticatedKey | null;
  loadedAt: number;
  /** Set for a disabled or revoked key, so that invalidating its id or workspace drops it. */
  keyId?: string;
  workspaceId?: string;
}

/**
 * From key hash to the key's record. Keys that exist (usable or not) live in an LRU; hashes of
 * no key live in a separate, smaller and shorter-lived LRU, so a flood of forged keys can never
 * evict a live one. Entries are dropped by invalidation messages from any gateway process
 * (through Redis), and after a safety TTL in case a message was missed; the caller shortens
 * that TTL (`maxAgeMs`) while invalidation messages cannot arrive.
 */
export class KeyCache {
  private readonly known: LRUCache<string, KeyCacheEntry>;
  private readonly unknown: LRUCache<string, KeyCacheEntry>;

  constructor(
    private readonly ttlMs = 30_000,
    maxEntries = 50_000,
    private readonly unknownTtlMs = Math.min(ttlMs, 10_000),
    unknownMaxEntries = Math.min(maxEntries, 10_000),
  ) {
    this.known = new LRUCache({ max: maxEntries });
    this.unknown = new LRUCache({ max: unknownMaxEntries });
  }

  get(hash: string, now = Date.now(), maxAgeMs = Number.POSITIVE_INFINITY): KeyCacheEntry | undefined {
    const known = this.known.get(hash);
    if (known) return this.fresh(this.known, hash, known, now, Math.min(maxAgeMs, this.ttlMs));
    const unknown = this.unknown.get(hash);
    if (unknown) return this.fresh(this.unknown, hash, unknown, now, Math.min(maxAgeMs, this.unknownTtlMs));
    return undefined;
  }

  /** Caches a usable key, an inactive one (null with its id), or a hash of no key (null alone). */
  set(hash: string, key: AuthenticatedKey | null, now = Date.now(), inactive?: InactiveKey): void {
    if (key || inactive) {
      this.unknown.delete(hash);
      this.known.set(
        hash,
        key ? { key, loadedAt: now } : { key: null, loadedAt: now, keyId: inactive!.keyId, workspaceId: inactive!.workspaceId },
      );
    } else {
      this.known.delete(hash);
      this.unknown.set(hash, { key: null, loadedAt: now });
    }
  }

  /** Drops entries of one key id or of one workspace, usable or not. */
  invalidate(match: { keyId?: string; workspaceId?: string }): void {
    const doomed: string[] = [];
    this.known.forEach((entry, hash) => {
      const keyId = entry.key?.id ?? entry.keyId;
      const workspaceId = entry.key?.workspaceId ?? entry.workspaceId;
      if ((match.keyId !== undefined && keyId === match.keyId) || (match.workspaceId !== undefined && workspaceId === match.workspaceId)) {
        doomed.push(hash);
      }
    });
    for (const hash of doomed) this.known.delete(hash);
  }

  clear(): void {
    this.known.clear();
    this.unknown.clear();
  }

  private fresh(
    lru: LRUCache<string, KeyCacheEntry>,
    hash: string,
    entry: KeyCacheEntry,
    now: number,
    maxAgeMs: number,
  ): KeyCacheEntry | undefined {
    if (now - entry.loadedAt <= maxAgeMs) return entry;
    lru.delete(hash);
    return undefined;
  }
}
