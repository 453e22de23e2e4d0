import { Column, CreateDateColumn, Entity, PrimaryColumn, UpdateDateColumn } from 'typeorm';
import { bigintMicros } from '../common/money';

export type ModelType = 'chat' | 'embedding';

/** Where a model's requests go when its own provider fails: another provider, and the model's name there. */
export interface ModelFallback {
  provider: string;
  upstream_model: string;
}

@Entity({ name: 'models' })
export class ModelEntity {
  /** Public id, as customers send it (`Qwen/Qwen-Plus`). */
  @PrimaryColumn({ type: 'text' })
  id: string;

  @Column({ name: 'provider_id', type: 'text' })
  providerId: string;

  @Column({ name: 'upstream_model', type: 'text' })
  upstreamModel: string;

  @Column({ type: 'text' })
  type: ModelType;

  /** micro-USD per 1,000,000 prompt tokens. */
  @Column({ name: 'input_price_micros', type: 'bigint', transformer: bigintMicros })
  inputPriceMicros: number;

  /** micro-USD per 1,000,000 completion tokens. */
  @Column({ name: 'output_price_micros', type: 'bigint', transformer: bigintMicros })
  outputPriceMicros: number;

  @Column({ type: 'boolean', default: true })
  sellable: boolean;

  @Column({ name: 'max_output_tokens', type: 'integer' })
  maxOutputTokens: number;

  @Column({ name: 'context_length', type: 'integer', nullable: true })
  contextLength: number | null;

  /** Tried in order when the model's provider fails after its retries, or its circuit breaker is open. */
  @Column({ type: 'jsonb', default: () => "'[]'::jsonb" })
  fallbacks: ModelFallback[];

  @CreateDateColumn({ name: 'created_at', type: 'timestamptz' })
  createdAt: Date;

  @UpdateDateColumn({ name: 'updated_at', type: 'timestamptz' })
  updatedAt: Date;
}
