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

const ROLES = ['system', 'developer', 'user', 'assistant', 'tool', 'function'] as const;

/** The content part types each role may send, as OpenAI has them; `function` takes a string only. */
const PART_TYPES: Record<string, readonly string[]> = {
  system: ['text'],
  developer: ['text'],
  user: ['text', 'image_url', 'input_audio', 'file'],
  assistant: ['text', 'refusal'],
  tool: ['text'],
  function: [],
};

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/** What is wrong with one content part, as a message starting with its path; null when fine. */
function partProblem(part: unknown, path: string, allowed: readonly string[]): string | null {
  if (!isObject(part)) return `${path} must be an object with a type`;
  const type = part.type;
  if (typeof type !== 'string' || !allowed.includes(type)) return `${path}.type must be one of: ${allowed.join(', ')}`;
  switch (type) {
    case 'text':
      return typeof part.text === 'string' ? null : `${path}.text must be a string`;
    case 'refusal':
      return typeof part.refusal === 'string' ? null : `${path}.refusal must be a string`;
    case 'image_url':
      if (!isObject(part.image_url)) return `${path}.image_url must be an object`;
      return typeof part.image_url.url === 'string' ? null : `${path}.image_url.url must be a string`;
    case 'input_audio':
      if (!isObject(part.input_audio)) return `${path}.input_audio must be an object`;
      if (typeof part.input_audio.data !== 'string') return `${path}.input_audio.data must be a string`;
      return typeof part.input_audio.format === 'string' ? null : `${path}.input_audio.format must be a string`;
    case 'file':
      return isObject(part.file) ? null : `${path}.file must be an object`;
    default:
      return null;
  }
}

/**
 * What is wrong with a message's `content` for its role, as OpenAI checks it; null when fine.
 * Content is a string or a non-empty array of typed parts; it may be null or absent only for
 * an assistant message that calls tools (or a function, or refuses), or a function message.
 */
export function messageContentProblem(message: Record<string, unknown>): string | null {
  const role = message.role as string;
  const allowed = PART_TYPES[role];
  if (!allowed) return null; // the role is reported on its own
  const content = message.content;
  if (content === undefined || content === null) {
    if (role === 'function') return null;
    if (role === 'assistant') {
      const callsTools = Array.isArray(message.tool_calls) && message.tool_calls.length > 0;
      if (callsTools || isObject(message.function_call) || typeof message.refusal === 'string') return null;
      return 'content is required for an assistant message without tool_calls';
    }
    return `content is required for a ${role} message`;
  }
  if (typeof content === 'string') return null;
  if (!Array.isArray(content) || allowed.length === 0) {
    return allowed.length === 0 ? 'content must be a string' : 'content must be a string or an array of content parts';
  }
  if (content.length === 0) return 'content must not be an empty array';
  for (let i = 0; i < content.length; i++) {
    const problem = partProblem(content[i], `content[${i}]`, allowed);
    if (problem) return problem;
  }
  return null;
}

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
 * The fields the gateway acts on. Every other OpenAI field is forwarded untouched (the
 * proxy pipe neither strips nor refuses unknown fields).
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
