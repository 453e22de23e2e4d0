import { ApiProperty } from '@nestjs/swagger';
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
  registerDecorator,
  ValidateIf,
  ValidateNested,
  ValidationArguments,
} from 'class-validator';
import { messageContentProblem } from './proxy-body.pipe';

const ROLES = ['system', 'developer', 'user', 'assistant', 'tool', 'function'] as const;

/** `content` checked against the message's role (messageContentProblem). */
function IsMessageContent(): PropertyDecorator {
  const problems = new WeakMap<object, string>();
  return (target, propertyName) =>
    registerDecorator({
      name: 'messageContent',
      target: target.constructor,
      propertyName: propertyName as string,
      validator: {
        validate(_: unknown, args: ValidationArguments): boolean {
          const problem = messageContentProblem(args.object as Record<string, unknown>);
          if (problem) problems.set(args.object, problem);
          return problem === null;
        },
        defaultMessage(args: ValidationArguments): string {
          return problems.get(args.object) ?? 'content is not valid';
        },
      },
    });
}

export class ChatMessageDto {
  @IsIn(ROLES)
  role: string;

  /** string or array of content parts; null only for an assistant message with tool_calls */
  @IsMessageContent() // forwarded as sent once its shape fits the role
  content?: unknown;

  /** required for a tool message */
  @ValidateIf((m: ChatMessageDto) => m.role === 'tool' || m.tool_call_id != null)
  @IsString()
  tool_call_id?: string;

  /** required for a function message */
  @ValidateIf((m: ChatMessageDto) => m.role === 'function' || m.name != null)
  @IsString()
  name?: string;

  /** assistant tool calls; forwarded as sent */
  @ValidateIf((m: ChatMessageDto) => m.tool_calls != null)
  @IsArray()
  tool_calls?: unknown[];
}

export class StreamOptionsDto {
  @IsOptional()
  @IsBoolean()
  include_usage?: boolean;
}

/**
 * The fields the gateway acts on, for the OpenAPI document. Requests are checked by the
 * hand-written ProxyBodyPipe (proxy-body.pipe.ts), which answers what these decorators would;
 * every other OpenAI field is forwarded untouched.
 */
export class ChatCompletionCreateDto {
  @ApiProperty({ example: 'deepseek-v4-flash' })
  @IsString()
  model: string;

  @IsDefined()
  @IsArray()
  @ArrayMinSize(1)
  @ArrayMaxSize(100_000)
  @ValidateNested({ each: true })
  @Type(() => ChatMessageDto)
  messages: ChatMessageDto[];

  @IsOptional()
  @IsNumber({ allowNaN: false, allowInfinity: false })
  @Min(0)
  @Max(2)
  temperature?: number;

  @IsOptional()
  @IsNumber({ allowNaN: false, allowInfinity: false })
  @Min(0)
  @Max(1)
  top_p?: number;

  @IsOptional()
  @IsInt()
  @Min(1)
  max_tokens?: number;

  @IsOptional()
  @IsInt()
  @Min(1)
  max_completion_tokens?: number;

  @IsOptional()
  @IsInt()
  @Min(1)
  @Max(8)
  n?: number;

  @IsOptional()
  @IsBoolean()
  stream?: boolean;

  @IsOptional()
  @IsObject()
  @ValidateNested()
  @Type(() => StreamOptionsDto)
  stream_options?: StreamOptionsDto;

  @IsOptional()
  @IsNumber({ allowNaN: false, allowInfinity: false })
  @Min(-2)
  @Max(2)
  presence_penalty?: number;

  @IsOptional()
  @IsNumber({ allowNaN: false, allowInfinity: false })
  @Min(-2)
  @Max(2)
  frequency_penalty?: number;

  @IsOptional()
  @IsInt()
  seed?: number;

  @IsOptional()
  @IsString()
  user?: string;

  /** forwarded as sent */
  @IsOptional()
  @IsArray()
  tools?: unknown[];

  /** string or object; forwarded as sent */
  @IsOptional()
  tool_choice?: unknown;

  /** forwarded as sent */
  @IsOptional()
  @IsObject()
  response_format?: Record<string, unknown>;

  /** string or array of up to 4 strings */
  @IsOptional()
  stop?: unknown;
}

export class EmbeddingCreateDto {
  @ApiProperty({ example: 'text-embedding-3-small' })
  @IsString()
  model: string;

  /** string, array of strings, or array of token arrays */
  @IsDefined()
  input: unknown;

  @IsOptional()
  @IsInt()
  @Min(1)
  dimensions?: number;

  @IsOptional()
  @IsIn(['float', 'base64'])
  encoding_format?: string;

  @IsOptional()
  @IsString()
  user?: string;
}
