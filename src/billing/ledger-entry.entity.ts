import { Column, CreateDateColumn, Entity, PrimaryGeneratedColumn } from 'typeorm';
import { bigintMicros } from '../common/money';

/** `topup`, `refund` and `dispute` are Stripe's (references `stripe:…`). */
export type LedgerKind = 'credit' | 'charge' | 'refund' | 'correction' | 'topup' | 'dispute';

/** Append-only: every balance change is one row, written in the balance's transaction. */
@Entity({ name: 'ledger_entries' })
export class LedgerEntryEntity {
  @PrimaryGeneratedColumn('identity', { type: 'bigint' })
  id: string;

  @Column({ name: 'workspace_id', type: 'uuid' })
  workspaceId: string;

  @Column({ type: 'text' })
  kind: LedgerKind;

  /** Signed: credits positive, charges negative. */
  @Column({ name: 'amount_micros', type: 'bigint', transformer: bigintMicros })
  amountMicros: number;

  @Column({ name: 'balance_after_micros', type: 'bigint', transformer: bigintMicros })
  balanceAfterMicros: number;

  /**
   * Unique across the ledger: `req:<request id>`, `admin:<workspace>:<idempotency key>`,
   * `stripe:cs:<session>`, `stripe:refund:<refund>`, `stripe:dispute:<dispute>`, `stripe:dispute-won:<dispute>`.
   */
  @Column({ type: 'text', unique: true })
  reference: string;

  @Column({ name: 'key_id', type: 'uuid', nullable: true })
  keyId: string | null;

  @Column({ type: 'text', nullable: true })
  reason: string | null;

  /** SHA-256 of the request body that created it, to tell an idempotent replay from a conflict. */
  @Column({ name: 'request_hash', type: 'text', nullable: true, select: false })
  requestHash: string | null;

  @CreateDateColumn({ name: 'created_at', type: 'timestamptz' })
  createdAt: Date;
}
