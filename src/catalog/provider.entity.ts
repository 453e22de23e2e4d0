import { Column, CreateDateColumn, Entity, PrimaryColumn, UpdateDateColumn } from 'typeorm';

/** Which request field carries the completion bound to this provider. */
export const MAX_TOKENS_FIELDS = ['max_tokens', 'max_completion_tokens', 'both'] as const;
export type MaxTokensField = (typeof MAX_TOKENS_FIELDS)[number];

export const DEFAULT_MAX_CONNECTIONS = 256;
export const MAX_CONNECTIONS_LIMIT = 10_000;

@Entity({ name: 'providers' })
export class ProviderEntity {
  @PrimaryColumn({ type: 'text' })
  id: string;

  /** OpenAI-compatible base URL, ending before `/chat/completions`. */
  @Column({ name: 'base_url', type: 'text' })
  baseUrl: string;

  /** The provider key, AES-256-GCM encrypted with NEXO_ENCRYPTION_KEY; write-only through the API. */
  @Column({ name: 'api_key_encrypted', type: 'text', nullable: true, select: false })
  apiKeyEncrypted: string | null;

  /** Most requests in flight to this provider (and the size of its connection pool). */
  @Column({ name: 'max_connections', type: 'integer', default: DEFAULT_MAX_CONNECTIONS })
  maxConnections: number;

  /** `max_tokens`, `max_completion_tokens` or `both`: where the completion bound goes. */
  @Column({ name: 'max_tokens_field', type: 'text', default: 'both' })
  maxTokensField: MaxTokensField;

  @CreateDateColumn({ name: 'created_at', type: 'timestamptz' })
  createdAt: Date;

  @UpdateDateColumn({ name: 'updated_at', type: 'timestamptz' })
  updatedAt: Date;
}
