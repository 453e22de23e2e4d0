import { Column, CreateDateColumn, Entity, PrimaryGeneratedColumn } from 'typeorm';
import { bigintMicros } from '../common/money';

/** Where a log's token counts came from. */
export type UsageSource = 'provider' | 'tokenizer' | 'hold' | 'none';

/**
 * Partitioned by UTC month of created_at (migration 1764400000500-UsageLogPartitions): the
 * primary key is (id, created_at), and one log per request_id is kept by nexo_settle under the
 * workspace's row lock (a partitioned table cannot make request_id alone unique).
 */
@Entity({ name: 'usage_logs' })
export class UsageLogEntity {
  @PrimaryGeneratedColumn('identity', { type: 'bigint' })
  id: string;

  /** Equal to the response's `x-request-id`. */
  @Column({ name: 'request_id', type: 'text' })
  requestId: string;

  @Column({ name: 'workspace_id', type: 'uuid' })
  workspaceId: string;

  @Column({ name: 'key_id', type: 'uuid' })
  keyId: string;

  @Column({ type: 'text' })
  model: string;

  /** The provider that answered (after any fallback), else the last one tried; null when none was. */
  @Column({ type: 'text', nullable: true })
  provider: string | null;

  /** Times the request was sent upstream, over every provider tried; null when unknown. */
  @Column({ type: 'integer', nullable: true })
  attempts: number | null;

  @Column({ name: 'prompt_tokens', type: 'integer', default: 0 })
  promptTokens: number;

  @Column({ name: 'completion_tokens', type: 'integer', default: 0 })
  completionTokens: number;

  @Column({ name: 'cost_micros', type: 'bigint', transformer: bigintMicros, default: 0 })
  costMicros: number;

  /** The HTTP status the gateway answered; null when unknown (error_code `outcome_unknown`). */
  @Column({ type: 'integer', nullable: true })
  status: number | null;

  @Column({ name: 'error_code', type: 'text', nullable: true })
  errorCode: string | null;

  @Column({ name: 'latency_ms', type: 'integer' })
  latencyMs: number;

  @Column({ type: 'boolean', default: false })
  stream: boolean;

  @Column({ name: 'usage_source', type: 'text' })
  usageSource: UsageSource;

  @CreateDateColumn({ name: 'created_at', type: 'timestamptz' })
  createdAt: Date;
}
