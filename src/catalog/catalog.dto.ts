import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { IsBoolean, IsIn, IsInt, IsOptional, IsString, Length, Matches, Max, Min, ValidateIf } from 'class-validator';
import { DEFAULT_MAX_CONNECTIONS, MAX_CONNECTIONS_LIMIT, MAX_TOKENS_FIELDS } from './provider.entity';
import type { MaxTokensField } from './provider.entity';

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

  @ApiProperty({ enum: ['chat', 'embedding'] })
  @IsIn(['chat', 'embedding'])
  type: 'chat' | 'embedding';

  @ApiProperty({ description: 'micro-USD per 1M prompt tokens' })
  @IsInt()
  @Min(0)
  @Max(1_000_000_000_000)
  input_price_micros: number;

  @ApiProperty({ description: 'micro-USD per 1M completion tokens' })
  @IsInt()
  @Min(0)
  @Max(1_000_000_000_000)
  output_price_micros: number;

  @ApiProperty()
  @IsBoolean()
  sellable: boolean;

  @ApiPropertyOptional({ description: 'Completion cap when a request sets none' })
  @IsOptional()
  @IsInt()
  @Min(1)
  @Max(10_000_000)
  max_output_tokens?: number;

  @ApiPropertyOptional({ type: Number, nullable: true })
  @ValidateIf((_, v) => v !== null)
  @IsOptional()
  @IsInt()
  @Min(1)
  @Max(100_000_000)
  context_length?: number | null;
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

  @ApiPropertyOptional({ type: String, nullable: true, description: 'Write-only; stored encrypted. null removes it.' })
  @ValidateIf((_, v) => v !== null)
  @IsOptional()
  @IsString()
  @Length(1, 4096)
  api_key?: string | null;

  @ApiPropertyOptional({
    minimum: 1,
    maximum: MAX_CONNECTIONS_LIMIT,
    default: DEFAULT_MAX_CONNECTIONS,
    description: 'Most requests in flight to this provider; more wait briefly, then answer 503. Omitted: unchanged.',
  })
  @ValidateIf((_, v) => v !== undefined) // omitted keeps it; null is not a value
  @IsInt()
  @Min(1)
  @Max(MAX_CONNECTIONS_LIMIT)
  max_connections?: number;

  @ApiPropertyOptional({
    enum: MAX_TOKENS_FIELDS,
    default: 'both',
    description: 'The request field that carries the completion bound to this provider. Omitted: unchanged.',
  })
  @ValidateIf((_, v) => v !== undefined)
  @IsIn(MAX_TOKENS_FIELDS)
  max_tokens_field?: MaxTokensField;
}

export class ModelDto {
  @ApiProperty() id: string;
  @ApiProperty() provider: string;
  @ApiProperty() upstream_model: string;
  @ApiProperty({ enum: ['chat', 'embedding'] }) type: 'chat' | 'embedding';
  @ApiProperty() input_price_micros: number;
  @ApiProperty() output_price_micros: number;
  @ApiProperty() sellable: boolean;
  @ApiProperty() max_output_tokens: number;
  @ApiProperty({ type: Number, nullable: true }) context_length: number | null;
}

export class ProviderDto {
  @ApiProperty() id: string;
  @ApiProperty() base_url: string;
  @ApiProperty() has_api_key: boolean;
  @ApiProperty() max_connections: number;
  @ApiProperty({ enum: MAX_TOKENS_FIELDS }) max_tokens_field: MaxTokensField;
}

/** One entry of `GET /v1/models`. */
export class PublicModelDto {
  @ApiProperty() id: string;
  @ApiProperty({ example: 'model' }) object: 'model';
  @ApiProperty() created: number;
  @ApiProperty() owned_by: string;
  @ApiProperty({ enum: ['chat', 'embedding'] }) type: 'chat' | 'embedding';
  @ApiProperty() pricing: { input_price_micros: number; output_price_micros: number };
}

export class PublicModelListDto {
  @ApiProperty({ example: 'list' }) object: 'list';
  @ApiProperty({ type: [PublicModelDto] }) data: PublicModelDto[];
}
