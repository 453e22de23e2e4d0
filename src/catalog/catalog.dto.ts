import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { Type } from 'class-transformer';
import {
  ArrayMaxSize,
  IsArray,
  IsBoolean,
  IsIn,
  IsInt,
  IsOptional,
  IsString,
  Length,
  Matches,
  Max,
  Min,
  ValidateIf,
  ValidateNested,
} from 'class-validator';
import { DEFAULT_MAX_CONNECTIONS, MAX_CONNECTIONS_LIMIT, MAX_TOKENS_FIELDS } from './provider.entity';
import type { MaxTokensField } from './provider.entity';

/** Most fallbacks one model may have. */
export const MAX_FALLBACKS = 8;

export class ModelFallbackDto {
  @ApiProperty({ example: 'openai' })
  @IsString()
  @Length(1, 64)
  provider: string;

  @ApiProperty({ example: 'gpt-4o-mini' })
  @IsString()
  @Length(1, 200)
  upstream_model: string;
}

export class ModelUpsertDto {
  @ApiProperty({ example: 'Qwen/Qwen-Plus' })
  @IsString()
  @Length(1, 200)
  @Matches(/^[A-Za-z0-9][A-Za-z0-9._:/-]*$/, { message: 'id may contain letters, digits and . _ : / -' })
  id: string;

  @ApiProperty({ example: 'dashscope' })
  @IsString()
  @Length(1, 64)
  provider: string;

  @ApiProperty({ example: 'qwen-plus' })
  @IsString()
  @Length(1, 200)
  upstream_model: string;

  @IsIn(['chat', 'embedding'])
  type: 'chat' | 'embedding';

  /** micro-USD per 1M prompt tokens */
  @IsInt()
  @Min(0)
  @Max(1_000_000_000_000)
  input_price_micros: number;

  /** micro-USD per 1M completion tokens */
  @IsInt()
  @Min(0)
  @Max(1_000_000_000_000)
  output_price_micros: number;

  @IsBoolean()
  sellable: boolean;

  /** Completion cap when a request sets none */
  @IsOptional()
  @IsInt()
  @Min(1)
  @Max(10_000_000)
  max_output_tokens?: number;

  @ValidateIf((_, v) => v !== null)
  @IsOptional()
  @IsInt()
  @Min(1)
  @Max(100_000_000)
  context_length?: number | null;

  /**
   * Tried in order when the model's provider fails after its retries (or its circuit breaker is
   * open); each provider must exist. Omitted: unchanged; `[]` removes them.
   */
  @ApiPropertyOptional({ type: [ModelFallbackDto] })
  @IsOptional()
  @IsArray()
  @ArrayMaxSize(MAX_FALLBACKS)
  @ValidateNested({ each: true })
  @Type(() => ModelFallbackDto)
  fallbacks?: ModelFallbackDto[];
}

export class ProviderUpsertDto {
  @ApiProperty({ example: 'deepseek' })
  @IsString()
  @Matches(/^[a-z0-9][a-z0-9_-]{0,63}$/, { message: 'id must be lower-case letters, digits, - or _' })
  id: string;

  @ApiProperty({ example: 'https://api.deepseek.com/v1' })
  @IsString()
  @Matches(/^https?:\/\/[^\s]+$/, { message: 'base_url must be an http(s) URL' })
  base_url: string;

  /** Write-only; stored encrypted. null removes it. */
  @ValidateIf((_, v) => v !== null)
  @IsOptional()
  @IsString()
  @Length(1, 4096)
  api_key?: string | null;

  /** Most requests in flight to this provider; more wait briefly, then answer 503. Omitted: unchanged. */
  @ApiPropertyOptional({ default: DEFAULT_MAX_CONNECTIONS })
  @ValidateIf((_, v) => v !== undefined) // omitted keeps it; null is not a value
  @IsInt()
  @Min(1)
  @Max(MAX_CONNECTIONS_LIMIT)
  max_connections?: number;

  /** The request field that carries the completion bound to this provider. Omitted: unchanged. */
  @ApiPropertyOptional({ default: 'both' })
  @ValidateIf((_, v) => v !== undefined)
  @IsIn(MAX_TOKENS_FIELDS)
  max_tokens_field?: MaxTokensField;
}

export class ModelDto {
  id: string;
  provider: string;
  upstream_model: string;
  type: 'chat' | 'embedding';
  input_price_micros: number;
  output_price_micros: number;
  sellable: boolean;
  max_output_tokens: number;
  context_length: number | null;
  /** Tried in order when the model's provider fails. */
  fallbacks: ModelFallbackDto[];
}

/** A model customers can use, with its prices (the dashboard's price list and scope picker). */
export class SellableModelDto {
  id: string;
  type: 'chat' | 'embedding';
  /** micro-USD per 1M prompt tokens */
  input_price_micros: number;
  /** micro-USD per 1M completion tokens */
  output_price_micros: number;
  /** Completion cap when a request sets none */
  max_output_tokens: number;
  context_length: number | null;
}

export class ProviderDto {
  id: string;
  base_url: string;
  has_api_key: boolean;
  max_connections: number;
  // the declared order (the type alias would list them as the compiler happens to order the union)
  @ApiProperty({ enum: MAX_TOKENS_FIELDS }) max_tokens_field: MaxTokensField;
}

/** One entry of `GET /v1/models`. */
export class PublicModelDto {
  id: string;
  @ApiProperty({ example: 'model' }) object: 'model';
  created: number;
  owned_by: string;
  type: 'chat' | 'embedding';
  pricing: { input_price_micros: number; output_price_micros: number };
}

export class PublicModelListDto {
  @ApiProperty({ example: 'list' }) object: 'list';
  data: PublicModelDto[];
}
