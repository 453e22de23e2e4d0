import { Column, CreateDateColumn, Entity, PrimaryGeneratedColumn, UpdateDateColumn } from 'typeorm';
import { bigintMicros } from '../common/money';

@Entity({ name: 'workspaces' })
export class WorkspaceEntity {
  @PrimaryGeneratedColumn('uuid')
  id: string;

  @Column({ type: 'text' })
  name: string;

  /** Settled balance: credits minus settled charges. Changed only with a ledger entry, in SQL. */
  @Column({ name: 'balance_micros', type: 'bigint', transformer: bigintMicros, default: 0, insert: false, update: false })
  balanceMicros: number;

  /** Money held for requests in flight; moved only by the hold and settlement SQL. */
  @Column({ name: 'held_micros', type: 'bigint', transformer: bigintMicros, default: 0, insert: false, update: false })
  heldMicros: number;

  @Column({ name: 'rpm_limit', type: 'integer', nullable: true })
  rpmLimit: number | null;

  @Column({ name: 'tpm_limit', type: 'integer', nullable: true })
  tpmLimit: number | null;

  @CreateDateColumn({ name: 'created_at', type: 'timestamptz' })
  createdAt: Date;

  @UpdateDateColumn({ name: 'updated_at', type: 'timestamptz' })
  updatedAt: Date;
}
