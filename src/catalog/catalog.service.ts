import { Injectable, Logger, OnModuleInit } from '@nestjs/common';
import { AppConfig } from '../config/app-config';
import { clip, InvalidRequestError, ModelNotFoundError, NotFoundError } from '../common/errors/api-error';
import { SecretBox } from '../common/secret-box';
import { RedisService } from '../redis/redis.service';
import { CatalogRepository } from './catalog.repository';
import { ModelEntity, ModelType } from './model.entity';
import { MaxTokensField, ProviderEntity } from './provider.entity';
import { ModelDto, ModelUpsertDto, ProviderDto, ProviderUpsertDto, SellableModelDto } from './catalog.dto';
import { STARTER_MODELS, STARTER_PROVIDERS } from './starter-catalog';

/** A provider as the hot path needs it: where to send, with which (decrypted) key. */
export interface ResolvedProvider {
  id: string;
  baseUrl: string;
  apiKey: string | null;
  /** Most requests in flight to it at once (its connection pool size), 1..10000. */
  maxConnections: number;
  /** The field(s) the completion bound is sent in: `max_tokens`, `max_completion_tokens` or `both`. */
  maxTokensField: MaxTokensField;
}

/** One place a model's requests can go: a provider and the model's name there. */
export interface UpstreamRoute {
  provider: ResolvedProvider;
  upstreamModel: string;
}

/** Safety net for a missed invalidation (Redis away while an operator changed a price). */
const SNAPSHOT_TTL_MS = 30_000;

interface Snapshot {
  loadedAt: number;
  models: Map<string, ModelEntity>;
  providers: Map<string, ResolvedProvider>;
}

/**
 * Models and providers, held in memory: the catalog is small and read on every request.
 * A change through the admin API reloads it in every gateway process (Redis invalidation).
 */
@Injectable()
export class CatalogService implements OnModuleInit {
  private readonly logger = new Logger(CatalogService.name);
  private readonly box: SecretBox;
  private snapshot: Snapshot | null = null;
  private loading: Promise<Snapshot> | null = null;
  /** Bumped by every invalidation: a load that raced one is used once, not kept. */
  private generation = 0;

  constructor(
    private readonly config: AppConfig,
    private readonly catalog: CatalogRepository,
    private readonly redis: RedisService,
  ) {
    this.box = new SecretBox(config.encryptionKey);
  }

  onModuleInit(): void {
    this.redis.onInvalidate(
      (message) => {
        if (message === 'catalog') this.drop();
      },
      () => this.drop(),
    );
  }

  private drop(): void {
    this.generation++;
    this.snapshot = null;
    this.loading = null;
  }

  private async current(): Promise<Snapshot> {
    const snapshot = this.snapshot;
    if (snapshot && Date.now() - snapshot.loadedAt < SNAPSHOT_TTL_MS) return snapshot;
    this.loading ??= this.startLoad();
    // only aged (not invalidated): keep serving it while the reload runs
    return snapshot ?? this.loading;
  }

  private startLoad(): Promise<Snapshot> {
    const loading = this.load().finally(() => {
      if (this.loading === loading) this.loading = null;
    });
    loading.catch((err: Error) => this.logger.warn(`Catalog reload failed: ${err.message}`));
    return loading;
  }

  private async load(): Promise<Snapshot> {
    const generation = this.generation;
    const [models, providers] = await Promise.all([this.catalog.findModels(), this.catalog.findProvidersWithKeys()]);
    const snapshot: Snapshot = {
      loadedAt: Date.now(),
      models: new Map(models.map((m) => [m.id, m])),
      providers: new Map(
        providers.map((p) => [
          p.id,
          {
            id: p.id,
            baseUrl: p.baseUrl,
            apiKey: p.apiKeyEncrypted ? this.box.open(p.apiKeyEncrypted) : null,
            maxConnections: p.maxConnections,
            maxTokensField: p.maxTokensField,
          },
        ]),
      ),
    };
    if (generation === this.generation) this.snapshot = snapshot;
    return snapshot;
  }

  /**
   * A sellable model of the given type, or 404 model_not_found, with where its requests go: its
   * own provider first, then its fallbacks in order (those whose provider still exists).
   */
  async sellable(id: unknown, type: ModelType): Promise<{ model: ModelEntity; provider: ResolvedProvider; routes: UpstreamRoute[] }> {
    const snap = await this.current();
    const model = typeof id === 'string' ? snap.models.get(id) : undefined;
    const provider = model ? snap.providers.get(model.providerId) : undefined;
    if (!model || !model.sellable || model.type !== type || !provider) throw new ModelNotFoundError(String(id));
    const routes: UpstreamRoute[] = [{ provider, upstreamModel: model.upstreamModel }];
    for (const fallback of model.fallbacks ?? []) {
      const other = snap.providers.get(fallback.provider);
      if (other) routes.push({ provider: other, upstreamModel: fallback.upstream_model });
    }
    return { model, provider, routes };
  }

  async listSellable(scope: ReadonlySet<string> | null): Promise<ModelEntity[]> {
    const snap = await this.current();
    return [...snap.models.values()]
      .filter((m) => m.sellable && snap.providers.has(m.providerId) && (!scope || scope.has(m.id)))
      .sort((a, b) => a.id.localeCompare(b.id));
  }

  /**
   * A key's model scope names only models customers can use now: 400 naming the first other
   * one (`models[2]`). Checked by the callers of KeysService (keys/ sits below catalog/).
   */
  async checkScope(models: readonly string[] | null | undefined): Promise<void> {
    if (!models) return;
    const sellable = new Set((await this.listSellable(null)).map((m) => m.id));
    const i = models.findIndex((m) => !sellable.has(m));
    if (i >= 0) {
      throw new InvalidRequestError(
        `Invalid request: models[${i}] '${clip(models[i])}' is not a model you can use (see GET /v1/models).`,
        `models[${i}]`,
      );
    }
  }

  /** The price list customers see: sellable models, without their providers. */
  async sellablePrices(): Promise<SellableModelDto[]> {
    return (await this.listSellable(null)).map((m) => ({
      id: m.id,
      type: m.type,
      input_price_micros: m.inputPriceMicros,
      output_price_micros: m.outputPriceMicros,
      max_output_tokens: m.maxOutputTokens,
      context_length: m.contextLength,
    }));
  }

  async findSellable(id: string, scope: ReadonlySet<string> | null): Promise<ModelEntity> {
    const snap = await this.current();
    const model = snap.models.get(id);
    if (!model || !model.sellable || !snap.providers.has(model.providerId) || (scope && !scope.has(id))) throw new ModelNotFoundError(id);
    return model;
  }

  async upsertModel(dto: ModelUpsertDto): Promise<ModelDto> {
    if (!(await this.catalog.providerExists(dto.provider))) {
      throw new InvalidRequestError(`Unknown provider '${dto.provider}'. Create it with PUT /admin/providers first.`, 'provider');
    }
    const fallbacks = dto.fallbacks?.map((f) => ({ provider: f.provider, upstream_model: f.upstream_model }));
    for (const [i, fallback] of (fallbacks ?? []).entries()) {
      if (!(await this.catalog.providerExists(fallback.provider))) {
        throw new InvalidRequestError(
          `Unknown provider '${clip(fallback.provider)}' in fallbacks[${i}]. Create it with PUT /admin/providers first.`,
          `fallbacks[${i}].provider`,
        );
      }
    }
    const existing = await this.catalog.findModel(dto.id);
    const saved = await this.catalog.saveModel({
      ...existing,
      id: dto.id,
      providerId: dto.provider,
      upstreamModel: dto.upstream_model,
      type: dto.type,
      inputPriceMicros: dto.input_price_micros,
      outputPriceMicros: dto.output_price_micros,
      sellable: dto.sellable,
      maxOutputTokens: dto.max_output_tokens ?? existing?.maxOutputTokens ?? 4_096,
      contextLength: dto.context_length !== undefined ? dto.context_length : (existing?.contextLength ?? null),
      // omitted keeps them; null or [] removes them
      fallbacks: dto.fallbacks !== undefined ? (fallbacks ?? []) : (existing?.fallbacks ?? []),
    });
    await this.invalidate();
    return CatalogService.modelDto(saved);
  }

  /**
   * Creates or updates a provider in one statement. A key is never sent to a host it was not
   * given for: a new base_url without a new api_key clears the stored key (CONTRACT §4).
   * Settings the request omits keep their stored values (defaults for a new provider).
   */
  async upsertProvider(dto: ProviderUpsertDto): Promise<ProviderDto> {
    const keyGiven = dto.api_key !== undefined;
    const sealed = dto.api_key === undefined || dto.api_key === null ? null : this.box.seal(dto.api_key);
    await this.catalog.upsertProvider({
      id: dto.id,
      baseUrl: normalizeBaseUrl(dto.base_url),
      sealedKey: sealed,
      keyGiven,
      maxConnections: dto.max_connections ?? null,
      maxTokensField: dto.max_tokens_field ?? null,
    });
    await this.invalidate();
    return this.providerDto(dto.id);
  }

  async listProviders(): Promise<ProviderDto[]> {
    const snap = await this.current();
    return [...snap.providers.values()].map((p) => CatalogService.toProviderDto(p));
  }

  private async providerDto(id: string): Promise<ProviderDto> {
    const provider = (await this.current()).providers.get(id);
    if (!provider) throw new NotFoundError(`Provider '${id}' not found.`);
    return CatalogService.toProviderDto(provider);
  }

  private static toProviderDto(p: ResolvedProvider): ProviderDto {
    return {
      id: p.id,
      base_url: p.baseUrl,
      has_api_key: p.apiKey !== null,
      max_connections: p.maxConnections,
      max_tokens_field: p.maxTokensField,
    };
  }

  async listAllModels(): Promise<ModelDto[]> {
    const snap = await this.current();
    return [...snap.models.values()].sort((a, b) => a.id.localeCompare(b.id)).map((m) => CatalogService.modelDto(m));
  }

  private async invalidate(): Promise<void> {
    this.drop();
    await this.redis.publishInvalidation('catalog');
  }

  /**
   * Seeds the starter catalog without touching rows an operator changed, then applies
   * PROVIDER_<ID>_BASE_URL / _API_KEY, which win over stored values at every start.
   */
  async seed(): Promise<void> {
    for (const p of STARTER_PROVIDERS) await this.catalog.insertStarterProvider(p);
    for (const m of STARTER_MODELS) await this.catalog.insertStarterModel(m);
    for (const [id, override] of Object.entries(this.config.providerOverrides)) {
      const existing = await this.catalog.findProviderWithKey(id);
      if (!existing && !override.baseUrl) {
        this.logger.warn(`PROVIDER_${id.toUpperCase()}_API_KEY is set but provider '${id}' does not exist and has no base URL: ignored`);
        continue;
      }
      const values: Partial<ProviderEntity> = { id };
      if (override.baseUrl) values.baseUrl = normalizeBaseUrl(override.baseUrl);
      if (override.apiKey) values.apiKeyEncrypted = this.box.seal(override.apiKey);
      else if (existing && values.baseUrl !== undefined && values.baseUrl !== existing.baseUrl) {
        // a key is never sent to a host it was not given for
        values.apiKeyEncrypted = null;
        const env = `PROVIDER_${id.toUpperCase()}`;
        if (existing.apiKeyEncrypted) {
          this.logger.warn(
            `${env}_BASE_URL changed the base URL of provider '${id}' without ${env}_API_KEY: its stored API key was cleared. ` +
              `Set ${env}_API_KEY (or PUT /admin/providers) to give it a key for the new URL.`,
          );
        }
      }
      if (existing) await this.catalog.updateProvider(id, values);
      else await this.catalog.insertProvider(values);
    }
    await this.invalidate();
    const snap = await this.current();
    for (const provider of snap.providers.values()) {
      if (provider.apiKey) continue;
      if (this.config.isProduction) this.logger.warn(`Provider '${provider.id}' has no API key: its models answer 502 until one is set`);
      else this.logger.log(`Provider '${provider.id}' has no API key: its models answer from the built-in development simulator`);
    }
  }

  static modelDto(m: ModelEntity): ModelDto {
    return {
      id: m.id,
      provider: m.providerId,
      upstream_model: m.upstreamModel,
      type: m.type,
      input_price_micros: m.inputPriceMicros,
      output_price_micros: m.outputPriceMicros,
      sellable: m.sellable,
      max_output_tokens: m.maxOutputTokens,
      context_length: m.contextLength,
      fallbacks: (m.fallbacks ?? []).map((f) => ({ provider: f.provider, upstream_model: f.upstream_model })),
    };
  }
}

/** Base URLs are stored without trailing slashes, so `…/v1` and `…/v1/` are the same host and path. */
function normalizeBaseUrl(url: string): string {
  return url.replace(/\/+$/, '');
}
