import { Injectable } from '@nestjs/common';
import { InjectDataSource, InjectRepository } from '@nestjs/typeorm';
import { DataSource, Repository } from 'typeorm';
import { ModelEntity } from './model.entity';
import { DEFAULT_MAX_CONNECTIONS, MaxTokensField, ProviderEntity } from './provider.entity';
import type { StarterModel } from './starter-catalog';

export interface ProviderUpsert {
  id: string;
  baseUrl: string;
  /** The new key, sealed; null clears it (when `keyGiven`). */
  sealedKey: string | null;
  /** The request named api_key (a value or null); else the stored key is kept while the base URL is. */
  keyGiven: boolean;
  /** null keeps the stored value (the default for a new provider). */
  maxConnections: number | null;
  maxTokensField: MaxTokensField | null;
}

/** Models and providers. */
@Injectable()
export class CatalogRepository {
  constructor(
    @InjectRepository(ModelEntity) private readonly models: Repository<ModelEntity>,
    @InjectRepository(ProviderEntity) private readonly providers: Repository<ProviderEntity>,
    @InjectDataSource() private readonly db: DataSource,
  ) {}

  findModels(): Promise<ModelEntity[]> {
    return this.models.find();
  }

  findModel(id: string): Promise<ModelEntity | null> {
    return this.models.findOneBy({ id });
  }

  saveModel(model: Partial<ModelEntity>): Promise<ModelEntity> {
    return this.models.save(this.models.create(model));
  }

  /** Every provider with its sealed key (the one column not selected by default). */
  findProvidersWithKeys(): Promise<ProviderEntity[]> {
    return this.providers.createQueryBuilder('p').addSelect('p.apiKeyEncrypted').getMany();
  }

  findProviderWithKey(id: string): Promise<ProviderEntity | null> {
    return this.providers.createQueryBuilder('p').addSelect('p.apiKeyEncrypted').where('p.id = :id', { id }).getOne();
  }

  providerExists(id: string): Promise<boolean> {
    return this.providers.existsBy({ id });
  }

  async insertProvider(values: Partial<ProviderEntity>): Promise<void> {
    await this.providers.insert(values);
  }

  async updateProvider(id: string, values: Partial<ProviderEntity>): Promise<void> {
    await this.providers.update({ id }, values);
  }

  /**
   * Creates or updates a provider in one statement. A key is never sent to a host it was not
   * given for: a new base URL without a new key clears the stored key (CONTRACT §4).
   */
  async upsertProvider(p: ProviderUpsert): Promise<void> {
    await this.db.query(
      `INSERT INTO providers (id, base_url, api_key_encrypted, max_connections, max_tokens_field)
       VALUES ($1, $2, $3, COALESCE($5::integer, $7::integer), COALESCE($6::text, 'both'))
       ON CONFLICT (id) DO UPDATE SET
         base_url = EXCLUDED.base_url,
         api_key_encrypted = CASE
           WHEN $4::boolean THEN EXCLUDED.api_key_encrypted
           WHEN providers.base_url = EXCLUDED.base_url THEN providers.api_key_encrypted
           ELSE NULL END,
         max_connections = COALESCE($5::integer, providers.max_connections),
         max_tokens_field = COALESCE($6::text, providers.max_tokens_field),
         updated_at = now()`,
      [p.id, p.baseUrl, p.sealedKey, p.keyGiven, p.maxConnections, p.maxTokensField, DEFAULT_MAX_CONNECTIONS],
    );
  }

  /** A starter provider, unless one with its id exists (an operator's changes are kept). */
  async insertStarterProvider(p: { id: string; baseUrl: string; maxTokensField: MaxTokensField }): Promise<void> {
    await this.db.query(`INSERT INTO providers (id, base_url, max_tokens_field) VALUES ($1, $2, $3) ON CONFLICT (id) DO NOTHING`, [
      p.id,
      p.baseUrl,
      p.maxTokensField,
    ]);
  }

  /** A starter model, sellable, unless one with its id exists. */
  async insertStarterModel(m: StarterModel): Promise<void> {
    await this.db.query(
      `INSERT INTO models (id, provider_id, upstream_model, type, input_price_micros, output_price_micros, sellable,
                           max_output_tokens, context_length)
       VALUES ($1, $2, $3, $4, $5, $6, true, $7, $8) ON CONFLICT (id) DO NOTHING`,
      [m.id, m.providerId, m.upstreamModel, m.type, m.inputPriceMicros, m.outputPriceMicros, m.maxOutputTokens, m.contextLength],
    );
  }
}
