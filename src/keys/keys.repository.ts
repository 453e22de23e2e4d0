import { Injectable } from '@nestjs/common';
import { InjectDataSource, InjectRepository } from '@nestjs/typeorm';
import { DataSource, Repository, SelectQueryBuilder } from 'typeorm';
import { safeMicros } from '../common/money';
import { ApiKeyEntity, BudgetPeriod } from './api-key.entity';

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
  budgetPeriod: BudgetPeriod | null;
  /** Spend counted against the budget: in the current period with one, else ever. */
  spentMicros: number;
  heldMicros: number;
  workspaceBalanceMicros: number;
  workspaceHeldMicros: number;
}

/** The columns an API may set on a key: never its hash, spend, holds or revocation. */
export type ApiKeyChanges = Partial<
  Pick<ApiKeyEntity, 'name' | 'disabled' | 'models' | 'budgetMicros' | 'budgetPeriod' | 'expiresAt' | 'rpmLimit' | 'tpmLimit'>
>;

export type ApiKeyValues = Pick<
  ApiKeyEntity,
  | 'workspaceId'
  | 'name'
  | 'keyHash'
  | 'prefix'
  | 'lastFour'
  | 'models'
  | 'budgetMicros'
  | 'budgetPeriod'
  | 'rpmLimit'
  | 'tpmLimit'
  | 'expiresAt'
>;

/** A key as its owners see it: the row, and what it has spent against its budget now. */
export interface ApiKeyView {
  key: ApiKeyEntity;
  /** In the current period when the budget has one (0 right after a reset), else ever. */
  budgetSpentMicros: number;
}

export type KeyUpdateResult = 'updated' | 'not_found' | 'revoked';

/** `where`: a key id, and the workspace it must belong to when given. */
export interface KeyWhere {
  id: string;
  workspaceId?: string;
}

const BUDGET_SPENT = 'nexo_budget_spent(k.budget_period, k.period_start, k.period_spent_micros, k.spent_micros)';

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
      budget_period: BudgetPeriod | null;
      budget_spent: string;
      key_held: string;
      balance_micros: string;
      ws_held: string;
      models: string[] | null;
      expires_at: Date | null;
    }> = await this.db.query(
      `SELECT k.budget_micros, k.budget_period, ${BUDGET_SPENT} AS budget_spent, k.held_micros AS key_held, k.models, k.expires_at,
              w.balance_micros,
              w.held_micros - COALESCE((SELECT sum(l.amount_micros - l.in_use_micros) FROM leases l
                                         WHERE l.workspace_id = w.id AND l.state = 'open'), 0) AS ws_held
         FROM api_keys k JOIN workspaces w ON w.id = k.workspace_id WHERE k.id = $1`,
      [keyId],
    );
    const row = rows[0];
    if (!row) return null;
    return {
      models: row.models,
      expiresAt: row.expires_at,
      budgetMicros: row.budget_micros === null ? null : Number(row.budget_micros),
      budgetPeriod: row.budget_period,
      spentMicros: Number(row.budget_spent),
      heldMicros: Number(row.key_held),
      workspaceBalanceMicros: Number(row.balance_micros),
      workspaceHeldMicros: Number(row.ws_held),
    };
  }

  async create(values: ApiKeyValues): Promise<string> {
    const saved = await this.keys.save(this.keys.create(values));
    return saved.id;
  }

  /**
   * Writes only the given columns, under the key's row lock; a revoked key is never changed
   * again. A new budget period starts now, counting what the key was charged since its start
   * (ledger entries carry the transaction time the settlement counted them in).
   */
  update(where: KeyWhere, changes: ApiKeyChanges): Promise<KeyUpdateResult> {
    const { budgetPeriod, ...columns } = changes;
    return this.keys.manager.transaction(async (tx): Promise<KeyUpdateResult> => {
      const [found] = await tx
        .getRepository(ApiKeyEntity)
        .createQueryBuilder('k')
        .select('k.id', 'id')
        .addSelect('k.revoked_at', 'revoked_at')
        .where(KeysRepository.whereSql(where), where)
        .setLock('pessimistic_write')
        .getRawMany<{ id: string; revoked_at: Date | null }>();
      if (!found) return 'not_found';
      if (found.revoked_at !== null) return 'revoked';
      if (Object.keys(columns).length > 0) await tx.getRepository(ApiKeyEntity).update({ id: where.id }, columns);
      if (budgetPeriod !== undefined) {
        await tx.query(
          `UPDATE api_keys k SET
             budget_period = $2::text,
             period_start = nexo_period_start($2::text, now()),
             period_spent_micros = CASE WHEN $2::text IS NULL THEN 0 ELSE COALESCE((
               SELECT -SUM(l.amount_micros) FROM ledger_entries l
                WHERE l.workspace_id = k.workspace_id AND l.key_id = k.id AND l.kind = 'charge'
                  AND l.created_at >= nexo_period_start($2::text, now())), 0) END,
             updated_at = now()
           WHERE k.id = $1 AND k.budget_period IS DISTINCT FROM $2::text`,
          [where.id, budgetPeriod],
        );
      }
      return 'updated';
    });
  }

  /** Sets revoked_at once (a second revocation changes nothing); false when no key matches. */
  async revoke(where: KeyWhere): Promise<boolean> {
    const result = await this.keys
      .createQueryBuilder()
      .update(ApiKeyEntity)
      .set({ revokedAt: () => 'COALESCE(revoked_at, now())' })
      .where(where.workspaceId === undefined ? { id: where.id } : { id: where.id, workspaceId: where.workspaceId })
      .execute();
    return (result.affected ?? 0) > 0;
  }

  async findView(where: KeyWhere): Promise<ApiKeyView | null> {
    const [view] = await this.views(this.keys.createQueryBuilder('k').where(KeysRepository.whereSql(where), where));
    return view ?? null;
  }

  /** Newest first, revoked keys included. */
  listViews(workspaceId: string): Promise<ApiKeyView[]> {
    return this.views(
      this.keys
        .createQueryBuilder('k')
        .where('k.workspace_id = :workspaceId', { workspaceId })
        .orderBy('k.created_at', 'DESC')
        .addOrderBy('k.id'),
    );
  }

  private async views(query: SelectQueryBuilder<ApiKeyEntity>): Promise<ApiKeyView[]> {
    const { entities, raw } = await query.addSelect(BUDGET_SPENT, 'budget_spent').getRawAndEntities<{ budget_spent: string }>();
    return entities.map((key, i) => ({ key, budgetSpentMicros: safeMicros(raw[i].budget_spent) }));
  }

  private static whereSql(where: KeyWhere, alias = 'k'): string {
    return where.workspaceId === undefined ? `${alias}.id = :id` : `${alias}.id = :id AND ${alias}.workspace_id = :workspaceId`;
  }
}
