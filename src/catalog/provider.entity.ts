import { Column, CreateDateColumn, Entity, PrimaryColumn, UpdateDateColumn } from 'typeorm';

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

  @CreateDateColumn({ name: 'created_at', type: 'timestamptz' })
  createdAt: Date;

  @UpdateDateColumn({ name: 'updated_at', type: 'timestamptz' })
  updatedAt: Date;
}
