import { Injectable, OnModuleInit } from '@nestjs/common';
import { ApiError, ConflictError, InvalidApiKeyError, InvalidRequestError, NotFoundError } from '../common/errors/api-error';
import { AppConfig } from '../config/app-config';
import { RedisService } from '../redis/redis.service';
import { WorkspacesService } from '../workspaces/workspaces.service';
import { apiKeyChecksumMatches, generateApiKey, hashApiKey, hasApiKeyShape } from './api-key-format';
import { AuthenticatedKey, InactiveKey, KeyCache } from './key-cache';
import { ApiKeyCreateDto, ApiKeyCreatedDto, ApiKeyDto, ApiKeyUpdateDto, KeyInfoDto } from './keys.dto';
import { ApiKeyChanges, ApiKeyView, KeysRepository, KeyWhere } from './keys.repository';
import { UnknownKeyThrottle } from './unknown-key-throttle';

/** How long a cached key may be trusted while invalidation messages cannot arrive. */
export const UNSYNCED_KEY_MAX_AGE_MS = 1_000;

interface LoadedKey {
  key: AuthenticatedKey | null;
  /** Set when the key exists but is disabled or revoked. */
  inactive?: InactiveKey;
}

@Injectable()
export class KeysService implements OnModuleInit {
  private readonly cache = new KeyCache();
  /** Bumped by every invalidation: a lookup that raced one is not cached. */
  private generation = 0;
  /**
   * Lookups in flight by key hash: concurrent requests with one uncached key share one query,
   * unless an invalidation came since it started.
   */
  private readonly inflight = new Map<string, { generation: number; result: Promise<LoadedKey> }>();
  private readonly unknownKeys: UnknownKeyThrottle;

  constructor(
    private readonly keys: KeysRepository,
    private readonly workspaces: WorkspacesService,
    private readonly redis: RedisService,
    config: AppConfig,
  ) {
    this.unknownKeys = new UnknownKeyThrottle(config.unknownKeyLookupsPerMinute);
  }

  onModuleInit(): void {
    this.redis.onInvalidate(
      (message) => {
        const [kind, id] = message.split(':');
        if (kind !== 'key' && kind !== 'workspace') return;
        this.generation++;
        this.cache.invalidate(kind === 'key' ? { keyId: id } : { workspaceId: id });
      },
      () => {
        this.generation++;
        this.cache.clear();
      },
    );
  }

  /**
   * Hot path: from the bearer token to an active key, from cache when possible. A key not in
   * the cache costs a database lookup, taken from the client address's budget of unknown-key
   * lookups (refunded when the key exists): past it, 429 without touching the database.
   */
  async authenticate(token: string | undefined, clientAddress?: string): Promise<AuthenticatedKey> {
    if (!token || !hasApiKeyShape(token)) throw new InvalidApiKeyError();
    const hash = hashApiKey(token);
    // while invalidations cannot arrive, a cached entry is trusted for 1 s only
    const maxAge = this.redis.invalidationHealthy ? undefined : UNSYNCED_KEY_MAX_AGE_MS;
    const entry = this.cache.get(hash, Date.now(), maxAge);
    // a cached hash is a key's that passed its checksum; anything else is checked before the database
    if (!entry && !apiKeyChecksumMatches(token)) throw new InvalidApiKeyError();
    const key = entry ? entry.key : await this.lookup(hash, clientAddress);
    if (!key) throw new InvalidApiKeyError();
    if (key.expiresAt !== null && key.expiresAt <= Date.now()) throw new InvalidApiKeyError('This API key has expired.');
    return key;
  }

  /** A key not in the cache: from the database, within the client address's lookup budget. */
  private async lookup(hash: string, clientAddress: string | undefined): Promise<AuthenticatedKey | null> {
    const pending = this.inflight.get(hash);
    if (pending && pending.generation === this.generation) return (await pending.result).key;
    const wait = this.unknownKeys.take(clientAddress);
    if (wait > 0) {
      const message = `Too many requests with unknown API keys from your address. Try again in ${wait}s.`;
      throw new ApiError(429, 'rate_limit_exceeded', message, 'requests', null, { 'retry-after': String(wait) });
    }
    const generation = this.generation;
    const result = this.load(hash).then((loaded) => {
      // a lookup that raced an invalidation is not cached
      if (generation === this.generation) this.cache.set(hash, loaded.key, Date.now(), loaded.inactive);
      return loaded;
    });
    const flight = { generation, result };
    this.inflight.set(hash, flight);
    try {
      const loaded = await result;
      if (loaded.key || loaded.inactive) this.unknownKeys.refund(clientAddress);
      return loaded.key;
    } finally {
      if (this.inflight.get(hash) === flight) this.inflight.delete(hash);
    }
  }

  private async load(hash: string): Promise<LoadedKey> {
    const row = await this.keys.findByHash(hash);
    if (!row) return { key: null };
    if (row.disabled || row.revoked) return { key: null, inactive: { keyId: row.id, workspaceId: row.workspaceId } };
    const key: AuthenticatedKey = {
      id: row.id,
      workspaceId: row.workspaceId,
      name: row.name,
      prefix: row.prefix,
      models: row.models ? new Set(row.models) : null,
      budgetMicros: row.budgetMicros,
      expiresAt: row.expiresAt ? row.expiresAt.getTime() : null,
      rpmLimit: row.rpmLimit ?? row.workspaceRpmLimit,
      tpmLimit: row.tpmLimit ?? row.workspaceTpmLimit,
    };
    return { key };
  }

  async create(workspaceId: string, dto: ApiKeyCreateDto): Promise<ApiKeyCreatedDto> {
    if (!(await this.workspaces.exists(workspaceId))) throw new NotFoundError(`Workspace '${workspaceId}' not found.`);
    const expiresAt = this.parseExpiry(dto.expires_at, { future: true });
    const generated = generateApiKey();
    const id = await this.keys.create({
      workspaceId,
      name: dto.name,
      keyHash: generated.hash,
      prefix: generated.prefix,
      lastFour: generated.lastFour,
      models: dto.models ?? null,
      budgetMicros: dto.budget_micros ?? null,
      budgetPeriod: dto.budget_period ?? null,
      rpmLimit: dto.rpm_limit ?? null,
      tpmLimit: dto.tpm_limit ?? null,
      expiresAt,
    });
    return { ...(await this.get(id)), key: generated.key };
  }

  /**
   * Writes only the columns the request names: spend and holds move concurrently with every
   * request of the key, and a read-modify-write of the whole row would put stale values back.
   * A revoked key is never changed again: 409 key_revoked. `workspaceId` scopes the key to one
   * workspace (another workspace's key is 404, as a missing one).
   */
  async update(id: string, dto: ApiKeyUpdateDto, workspaceId?: string): Promise<ApiKeyDto> {
    const changes: ApiKeyChanges = {};
    if (dto.name !== undefined) changes.name = dto.name;
    if (dto.disabled !== undefined) changes.disabled = dto.disabled;
    if (dto.models !== undefined) changes.models = dto.models;
    if (dto.budget_micros !== undefined) changes.budgetMicros = dto.budget_micros;
    if (dto.budget_period !== undefined) changes.budgetPeriod = dto.budget_period;
    if (dto.expires_at !== undefined) changes.expiresAt = this.parseExpiry(dto.expires_at);
    if (dto.rpm_limit !== undefined) changes.rpmLimit = dto.rpm_limit;
    if (dto.tpm_limit !== undefined) changes.tpmLimit = dto.tpm_limit;
    const where: KeyWhere = workspaceId ? { id, workspaceId } : { id };
    if (Object.keys(changes).length === 0) {
      const key = await this.get(id, workspaceId);
      if (key.revoked) throw KeysService.revokedError(id);
      return key;
    }
    const result = await this.keys.update(where, changes);
    if (result === 'not_found') throw new NotFoundError(`API key '${id}' not found.`);
    if (result === 'revoked') throw KeysService.revokedError(id);
    await this.redis.publishInvalidation(`key:${id}`);
    return this.get(id, workspaceId);
  }

  /**
   * Revokes a key for good: every gateway process refuses it within 1 s (the invalidation
   * message; the cache's safety TTL when Redis is away). Revoking it again changes nothing.
   */
  async revoke(id: string, workspaceId?: string): Promise<ApiKeyDto> {
    if (!(await this.keys.revoke(workspaceId ? { id, workspaceId } : { id }))) throw new NotFoundError(`API key '${id}' not found.`);
    await this.redis.publishInvalidation(`key:${id}`);
    return this.get(id, workspaceId);
  }

  /** One key (never its secret); `workspaceId` scopes it to one workspace. */
  async get(id: string, workspaceId?: string): Promise<ApiKeyDto> {
    const view = await this.keys.findView(workspaceId ? { id, workspaceId } : { id });
    if (!view) throw new NotFoundError(`API key '${id}' not found.`);
    return KeysService.toDto(view);
  }

  /** Newest first, revoked keys included (as revoked). */
  async listForWorkspace(workspaceId: string): Promise<ApiKeyDto[]> {
    const views = await this.keys.listViews(workspaceId);
    return views.map((v) => KeysService.toDto(v));
  }

  private static revokedError(id: string): ConflictError {
    return new ConflictError(`API key '${id}' is revoked: a revoked key can never be changed or enabled again.`, 'key_revoked');
  }

  /** A new key must not be born expired; an update may set a past date to expire a key at once. */
  private parseExpiry(value: string | null | undefined, options: { future?: boolean } = {}): Date | null {
    if (value === undefined || value === null) return null;
    const date = new Date(value);
    if (Number.isNaN(date.getTime())) throw new InvalidRequestError('expires_at must be an ISO 8601 date-time.', 'expires_at');
    if (options.future && date.getTime() <= Date.now()) {
      throw new InvalidRequestError('expires_at must be in the future: this key would be expired at creation.', 'expires_at');
    }
    return date;
  }

  /** `GET /v1/key`: the calling key, its spend, and what it can still spend. */
  async info(key: AuthenticatedKey): Promise<KeyInfoDto> {
    const spend = await this.keys.spend(key.id);
    if (!spend) throw new InvalidApiKeyError();
    const available = spend.workspaceBalanceMicros - spend.workspaceHeldMicros;
    const budget = spend.budgetMicros;
    const spent = spend.spentMicros;
    const budgetLeft = budget === null ? Number.POSITIVE_INFINITY : budget - spent - spend.heldMicros;
    return {
      id: key.id,
      name: key.name,
      prefix: key.prefix,
      models: spend.models,
      budget_micros: budget,
      budget_period: spend.budgetPeriod,
      spent_micros: spent,
      remaining_micros: Math.max(0, Math.min(budgetLeft, available)),
      expires_at: spend.expiresAt ? spend.expiresAt.toISOString() : null,
      workspace: { id: key.workspaceId, balance_micros: spend.workspaceBalanceMicros, available_micros: available },
    };
  }

  static toDto({ key: k, budgetSpentMicros }: ApiKeyView): ApiKeyDto {
    return {
      id: k.id,
      workspace_id: k.workspaceId,
      name: k.name,
      prefix: k.prefix,
      last_four: k.lastFour,
      models: k.models,
      budget_micros: k.budgetMicros,
      budget_period: k.budgetPeriod,
      spent_micros: budgetSpentMicros,
      rpm_limit: k.rpmLimit,
      tpm_limit: k.tpmLimit,
      expires_at: k.expiresAt ? k.expiresAt.toISOString() : null,
      disabled: k.disabled,
      revoked: k.revokedAt !== null,
      last_used_at: k.lastUsedAt ? k.lastUsedAt.toISOString() : null,
      created_at: k.createdAt.toISOString(),
    };
  }
}
