import { Column, CreateDateColumn, Entity, PrimaryColumn } from 'typeorm';
import { bigintMicros } from '../common/money';

/** Money reserved for one request in flight; removed when the request settles or expires. */
@Entity({ name: 'holds' })
export class HoldEntity {
  @PrimaryColumn({ name: 'request_id', type: 'text' })
  requestId: string;

  @Column({ name: 'workspace_id', type: 'uuid' })
  workspaceId: string;

  @Column({ name: 'key_id', type: 'uuid' })
  keyId: string;

  @Column({ type: 'text' })
  model: string;

  @Column({ name: 'amount_micros', type: 'bigint', transformer: bigintMicros })
  amountMicros: number;

  @Column({ name: 'expires_at', type: 'timestamptz' })
  expiresAt: Date;

  @CreateDateColumn({ name: 'created_at', type: 'timestamptz' })
  createdAt: Date;
}
