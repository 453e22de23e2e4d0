import { Injectable } from '@nestjs/common';
import { InjectDataSource, InjectRepository } from '@nestjs/typeorm';
import { DataSource, Repository } from 'typeorm';
import { ApiKeyEntity } from './api-key.entity';

/** A key as the gateway authenticates it: its own settings and its workspace's limits. */
export interface KeyRecord {
  id: string;
  workspaceId: string;
  name: string;
  prefix: string;
  models: string[] | null;
  budgetMicros: number | null;
  expiresAt: Date | null;
  disabled: boolean;
  revoked: boolean;
  rpmLimit: number | null;
  tpmLimit: number | null;
  workspaceRpmLimit: number | null;
  workspaceTpmLimit: number | null;
}

/** A key's spend and its workspace's balance, as `GET /v1/key` reports them. */
export interface KeySpend {
  models: string[] | null;
  expiresAt: Date | null;
  budgetMicros: number | null;
  spentMicros: number;
  heldMicros: number;
  workspaceBalanceMicros: number;
  workspaceHeldMicros: number;
}

/** The columns an API may set on a key: never its hash, spend or holds. */
export type ApiKeyChanges = Partial<
  Pick<ApiKeyEntity, 'name' | 'disabled' | 'models' | 'budgetMicros' | 'expiresAt' | 'rpmLimit' | 'tpmLimit'>
>;

export type ApiKeyValues = Pick<
  ApiKeyEntity,
  'workspaceId' | 'name' | 'keyHash' | 'prefix' | 'lastFour' | 'models' | 'budgetMicros' | 'rpmLimit' | 'tpmLimit' | 'expiresAt'
>;

@Injectable()
export class KeysRepository {
  constructor(
    @InjectRepository(ApiKeyEntity) private readonly keys: Repository<ApiKeyEntity>,
    @InjectDataSource() private readonly db: DataSource,
  ) {}

  /** The key with this SHA-256 hash (active or not), with its workspace's limits; null when none. */
  async findByHash(hash: string): Promise<KeyRecord | null> {
    const rows: Array<{
      id: string;
      workspace_id: string;
      name: string;
      prefix: string;
      models: string[] | null;
      budget_micros: string | null;
      expires_at: Date | null;
      disabled: boolean;
      revoked_at: Date | null;
      rpm_limit: number | null;
      tpm_limit: number | null;
      ws_rpm_limit: number | null;
      ws_tpm_limit: number | null;
    }> = await this.db.query(
      `SELECT k.id, k.workspace_id, k.name, k.prefix, k.models, k.budget_micros, k.expires_at, k.disabled, k.revoked_at,
              k.rpm_limit, k.tpm_limit, w.rpm_limit AS ws_rpm_limit, w.tpm_limit AS ws_tpm_limit
         FROM api_keys k JOIN workspaces w ON w.id = k.workspace_id
        WHERE k.key_hash = $1`,
      [hash],
    );
    const row = rows[0];
    if (!row) return null;
    return {
      id: row.id,
      workspaceId: row.workspace_id,
      name: row.name,
      prefix: row.prefix,
      models: row.models,
      budgetMicros: row.budget_micros === null ? null : Number(row.budget_micros),
      expiresAt: row.expires_at,
      disabled: row.disabled,
      revoked: row.revoked_at !== null,
      rpmLimit: row.rpm_limit,
      tpmLimit: row.tpm_limit,
      workspaceRpmLimit: row.ws_rpm_limit,
      workspaceTpmLimit: row.ws_tpm_limit,
    };
  }

  /** The key's budget, spend and holds with its workspace's balance, read together. */
  async spend(keyId: string): Promise<KeySpend | null> {
    const rows: Array<{
      budget_micros: string | null;
      spent_micros: string;
      key_held: string;
      balance_micros: string;
      ws_held: string;
      models: string[] | null;
      expires_at: Date | null;
    }> = await this.db.query(
      `SELECT k.budget_micros, k.spent_micros, k.held_micros AS key_held, k.models, k.expires_at,
              w.balance_micros, w.held_micros AS ws_held
         FROM api_keys k JOIN workspaces w ON w.id = k.workspace_id WHERE k.id = $1`,
      [keyId],
    );
    const row = rows[0];
    if (!row) return null;
    return {
      models: row.models,
      expiresAt: row.expires_at,
      budgetMicros: row.budget_micros === null ? null : Number(row.budget_micros),
      spentMicros: Number(row.spent_micros),
      heldMicros: Number(row.key_held),
      workspaceBalanceMicros: Number(row.balance_micros),
      workspaceHeldMicros: Number(row.ws_held),
    };
  }

  create(values: ApiKeyValues): Promise<ApiKeyEntity> {
    return this.keys.save(this.keys.create(values));
  }

  /** Writes only the given columns; false when no key matches (`workspaceId` scopes it to one workspace). */
  async update(where: { id: string; workspaceId?: string }, changes: ApiKeyChanges): Promise<boolean> {
    const result = await this.keys.update(where, changes);
    return (result.affected ?? 0) > 0;
  }

  findOne(where: { id: string; workspaceId?: string }): Promise<ApiKeyEntity | null> {
    return this.keys.findOneBy(where);
  }

  /** Newest first. */
  listForWorkspace(workspaceId: string): Promise<ApiKeyEntity[]> {
    return this.keys.find({ where: { workspaceId }, order: { createdAt: 'DESC' } });
  }
}
