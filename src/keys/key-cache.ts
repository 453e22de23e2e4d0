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

interface Entry {
  key: AuthenticatedKey | null;
  loadedAt: number;
}

/**
 * A bounded map from key hash to the key's record (or to "unknown"). Entries are dropped by
 * invalidation messages from any gateway process (through Redis), and after a safety TTL in
 * case a message was missed while Redis was away.
 */
export class KeyCache {
  private readonly entries = new Map<string, Entry>();

  constructor(
    private readonly ttlMs = 30_000,
    private readonly maxEntries = 50_000,
  ) {}

  get(hash: string, now = Date.now()): Entry | undefined {
    const entry = this.entries.get(hash);
    if (entry && now - entry.loadedAt > this.ttlMs) {
      this.entries.delete(hash);
      return undefined;
    }
    return entry;
  }

  set(hash: string, key: AuthenticatedKey | null, now = Date.now()): void {
    if (this.entries.size >= this.maxEntries) {
      const oldest = this.entries.keys().next().value;
      if (oldest !== undefined) this.entries.delete(oldest);
    }
    this.entries.set(hash, { key, loadedAt: now });
  }

  /** Drops entries of one key id or of one workspace. */
  invalidate(match: { keyId?: string; workspaceId?: string }): void {
    for (const [hash, entry] of this.entries) {
      if (!entry.key) continue;
      if (entry.key.id === match.keyId || entry.key.workspaceId === match.workspaceId) this.entries.delete(hash);
    }
  }

  clear(): void {
    this.entries.clear();
  }
}
