import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { Type } from 'class-transformer';
import {
  ArrayMaxSize,
  ArrayMinSize,
  IsArray,
  IsBoolean,
  IsDefined,
  IsIn,
  IsInt,
  IsNumber,
  IsObject,
  IsOptional,
  IsString,
  Max,
  Min,
  ValidateNested,
} from 'class-validator';

export class ChatMessageDto {
  @ApiProperty({ enum: ['system', 'developer', 'user', 'assistant', 'tool', 'function'] })
  @IsIn(['system', 'developer', 'user', 'assistant', 'tool', 'function'])
  role: string;

  // string, array of content parts, or null (assistant tool calls): forwarded as sent
  @ApiPropertyOptional({ description: 'string or array of content parts' })
  @IsOptional()
  content?: unknown;
}

export class StreamOptionsDto {
  @ApiPropertyOptional()
  @IsOptional()
  @IsBoolean()
  include_usage?: boolean;
}

/**
 * The fields the gateway acts on. Every other OpenAI field is forwarded untouched (the
 * proxy pipe neither strips nor refuses unknown fields).
 */
export class ChatCompletionCreateDto {
  @ApiProperty({ example: 'deepseek-v4-flash' })
  @IsString()
  model: string;

  @ApiProperty({ type: [ChatMessageDto] })
  @IsDefined()
  @IsArray()
  @ArrayMinSize(1)
  @ArrayMaxSize(100_000)
  @ValidateNested({ each: true })
  @Type(() => ChatMessageDto)
  messages: ChatMessageDto[];

  @ApiPropertyOptional({ minimum: 0, maximum: 2 })
  @IsOptional()
  @IsNumber({ allowNaN: false, allowInfinity: false })
  @Min(0)
  @Max(2)
  temperature?: number;

  @ApiPropertyOptional({ minimum: 0, maximum: 1 })
  @IsOptional()
  @IsNumber({ allowNaN: false, allowInfinity: false })
  @Min(0)
  @Max(1)
  top_p?: number;

  @ApiPropertyOptional({ minimum: 1 })
  @IsOptional()
  @IsInt()
  @Min(1)
  max_tokens?: number;

  @ApiPropertyOptional({ minimum: 1 })
  @IsOptional()
  @IsInt()
  @Min(1)
  max_completion_tokens?: number;

  @ApiPropertyOptional({ minimum: 1, maximum: 8 })
  @IsOptional()
  @IsInt()
  @Min(1)
  @Max(8)
  n?: number;

  @ApiPropertyOptional()
  @IsOptional()
  @IsBoolean()
  stream?: boolean;

  @ApiPropertyOptional({ type: StreamOptionsDto })
  @IsOptional()
  @IsObject()
  @ValidateNested()
  @Type(() => StreamOptionsDto)
  stream_options?: StreamOptionsDto;

  @ApiPropertyOptional({ minimum: -2, maximum: 2 })
  @IsOptional()
  @IsNumber({ allowNaN: false, allowInfinity: false })
  @Min(-2)
  @Max(2)
  presence_penalty?: number;

  @ApiPropertyOptional({ minimum: -2, maximum: 2 })
  @IsOptional()
  @IsNumber({ allowNaN: false, allowInfinity: false })
  @Min(-2)
  @Max(2)
  frequency_penalty?: number;

  @ApiPropertyOptional()
  @IsOptional()
  @IsInt()
  seed?: number;

  @ApiPropertyOptional()
  @IsOptional()
  @IsString()
  user?: string;

  @ApiPropertyOptional({ description: 'forwarded as sent' })
  @IsOptional()
  @IsArray()
  tools?: unknown[];

  @ApiPropertyOptional({ description: 'string or object; forwarded as sent' })
  @IsOptional()
  tool_choice?: unknown;

  @ApiPropertyOptional({ description: 'forwarded as sent' })
  @IsOptional()
  @IsObject()
  response_format?: Record<string, unknown>;

  @ApiPropertyOptional({ description: 'string or array of up to 4 strings' })
  @IsOptional()
  stop?: unknown;
}

export class EmbeddingCreateDto {
  @ApiProperty({ example: 'text-embedding-3-small' })
  @IsString()
  model: string;

  @ApiProperty({ description: 'string, array of strings, or array of token arrays' })
  @IsDefined()
  input: unknown;

  @ApiPropertyOptional()
  @IsOptional()
  @IsInt()
  @Min(1)
  dimensions?: number;

  @ApiPropertyOptional({ enum: ['float', 'base64'] })
  @IsOptional()
  @IsIn(['float', 'base64'])
  encoding_format?: string;

  @ApiPropertyOptional()
  @IsOptional()
  @IsString()
  user?: string;
}
