import { Column, Entity, PrimaryColumn } from 'typeorm';
import { bigintMicros } from '../common/money';

/**
 * The usage logs summed per workspace, UTC day (of the log's created_at), key and model.
 * Written only by billing's settlement SQL (nexo_settle), in the transaction that inserts the
 * log, so the sums always equal the logs'.
 */
@Entity({ name: 'usage_daily' })
export class UsageDailyEntity {
  @PrimaryColumn({ name: 'workspace_id', type: 'uuid' })
  workspaceId: string;

  /** `YYYY-MM-DD`, UTC. */
  @PrimaryColumn({ type: 'date' })
  day: string;

  @PrimaryColumn({ name: 'key_id', type: 'uuid' })
  keyId: string;

  @PrimaryColumn({ type: 'text' })
  model: string;

  @Column({ type: 'bigint', transformer: bigintMicros, default: 0 })
  requests: number;

  @Column({ name: 'prompt_tokens', type: 'bigint', transformer: bigintMicros, default: 0 })
  promptTokens: number;

  @Column({ name: 'completion_tokens', type: 'bigint', transformer: bigintMicros, default: 0 })
  completionTokens: number;

  @Column({ name: 'cost_micros', type: 'bigint', transformer: bigintMicros, default: 0 })
  costMicros: number;
}
