import { Column, CreateDateColumn, Entity, Index, PrimaryGeneratedColumn, UpdateDateColumn } from 'typeorm';
import { bigintMicros } from '../common/money';

export const BUDGET_PERIODS = ['daily', 'weekly', 'monthly'] as const;
export type BudgetPeriod = (typeof BUDGET_PERIODS)[number];

@Entity({ name: 'api_keys' })
export class ApiKeyEntity {
  @PrimaryGeneratedColumn('uuid')
  id: string;

  @Index()
  @Column({ name: 'workspace_id', type: 'uuid' })
  workspaceId: string;

  @Column({ type: 'text' })
  name: string;

  /** SHA-256 of the full key, hex. The key itself is never stored. */
  @Column({ name: 'key_hash', type: 'text', unique: true, select: false })
  keyHash: string;

  /** First characters of the key, for people to recognise it. */
  @Column({ type: 'text' })
  prefix: string;

  @Column({ name: 'last_four', type: 'text' })
  lastFour: string;

  /** Model scope; null means every sellable model. */
  @Column({ type: 'text', array: true, nullable: true })
  models: string[] | null;

  @Column({ name: 'budget_micros', type: 'bigint', transformer: bigintMicros, nullable: true })
  budgetMicros: number | null;

  /** Moved only by the money SQL (holds and settlements), never by an ORM save. */
  @Column({ name: 'spent_micros', type: 'bigint', transformer: bigintMicros, default: 0, insert: false, update: false })
  spentMicros: number;

  @Column({ name: 'held_micros', type: 'bigint', transformer: bigintMicros, default: 0, insert: false, update: false })
  heldMicros: number;

  /** When the budget's spend starts again (UTC; weeks from Monday); null = a budget for the key's lifetime. */
  // changed only by KeysRepository.update, which recomputes the period's spend with it
  @Column({ name: 'budget_period', type: 'text', nullable: true, update: false })
  budgetPeriod: BudgetPeriod | null;

  /**
   * Spend in the period starting at `periodStart` (0 once that period is over: see
   * nexo_budget_spent). Moved only by the money SQL and by a change of period.
   */
  @Column({ name: 'period_spent_micros', type: 'bigint', transformer: bigintMicros, default: 0, insert: false, update: false })
  periodSpentMicros: number;

  @Column({ name: 'period_start', type: 'timestamptz', nullable: true, insert: false, update: false })
  periodStart: Date | null;

  /** The start of the latest settled request; set by the settlement, never on the request path. */
  @Column({ name: 'last_used_at', type: 'timestamptz', nullable: true, insert: false, update: false })
  lastUsedAt: Date | null;

  @Column({ name: 'rpm_limit', type: 'integer', nullable: true })
  rpmLimit: number | null;

  @Column({ name: 'tpm_limit', type: 'integer', nullable: true })
  tpmLimit: number | null;

  @Column({ name: 'expires_at', type: 'timestamptz', nullable: true })
  expiresAt: Date | null;

  @Column({ type: 'boolean', default: false })
  disabled: boolean;

  @Column({ name: 'revoked_at', type: 'timestamptz', nullable: true })
  revokedAt: Date | null;

  @CreateDateColumn({ name: 'created_at', type: 'timestamptz' })
  createdAt: Date;

  @UpdateDateColumn({ name: 'updated_at', type: 'timestamptz' })
  updatedAt: Date;
}
