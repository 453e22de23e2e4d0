import { Injectable, PipeTransform } from '@nestjs/common';
import { InvalidRequestError } from '../common/errors/api-error';

/**
 * The proxy routes' body check, written out by hand: what the gateway acts on is checked, every
 * other field is forwarded as the client sent it (nothing copied, stripped or refused).
 *
 * It answers exactly what the class-validator DTOs in chat.dto.ts (kept for the OpenAPI
 * document) answered through the validation pipe: the same first error, in the same words,
 * naming the same `param` (test/unit/proxy-body.spec.ts holds one against the other). That
 * pipe cost a class-transformer copy of the whole body, a class-validator pass over it and a
 * copy back, on every request.
 */

const ROLES = ['system', 'developer', 'user', 'assistant', 'tool', 'function'] as const;
const ROLE_SET: ReadonlySet<unknown> = new Set(ROLES);

/** The content part types each role may send, as OpenAI has them; `function` takes a string only. */
const PART_TYPES: ReadonlyMap<string, readonly string[]> = new Map([
  ['system', ['text']],
  ['developer', ['text']],
  ['user', ['text', 'image_url', 'input_audio', 'file']],
  ['assistant', ['text', 'refusal']],
  ['tool', ['text']],
  ['function', []],
]);

const ENCODING_FORMATS = ['float', 'base64'];
/** At most this many messages (beyond it, a body is refused before its messages are looked at). */
export const MAX_MESSAGES = 100_000;

type Json = Record<string, unknown>;

const isObject = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v);

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
 * The message starts with `content`.
 */
export function messageContentProblem(message: Json): string | null {
  const role = message.role;
  const allowed = typeof role === 'string' ? PART_TYPES.get(role) : undefined;
  if (!allowed) return null; // the role is reported on its own
  const content = message.content;
  if (content === undefined || content === null) {
    if (role === 'function') return null;
    if (role === 'assistant') {
      const callsTools = Array.isArray(message.tool_calls) && message.tool_calls.length > 0;
      if (callsTools || isObject(message.function_call) || typeof message.refusal === 'string') return null;
      return 'content is required for an assistant message without tool_calls';
    }
    return `content is required for a ${role as string} message`;
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

/** The 400 for `param`; `message` starts with the param (or says where it is), as the pipe's did. */
function refuse(param: string, message: string): never {
  throw new InvalidRequestError(`Invalid request: ${message}.`, param);
}

const isMissing = (v: unknown): v is null | undefined => v === undefined || v === null;

function checkString(body: Json, name: string): void {
  const v = body[name];
  if (typeof v !== 'string') refuse(name, `${name} must be a string`);
}

function checkOptionalString(body: Json, name: string): void {
  if (!isMissing(body[name])) checkString(body, name);
}

/** A finite number in [min, max] (class-validator's IsNumber without NaN and Infinity, Min, Max). */
function checkOptionalNumber(body: Json, name: string, min: number, max: number): void {
  const v = body[name];
  if (isMissing(v)) return;
  if (typeof v !== 'number' || !Number.isFinite(v)) refuse(name, `${name} must be a number conforming to the specified constraints`);
  checkRange(name, v, min, max);
}

function checkOptionalInt(body: Json, name: string, min: number | null, max: number | null): void {
  const v = body[name];
  if (isMissing(v)) return;
  if (typeof v !== 'number' || !Number.isInteger(v)) refuse(name, `${name} must be an integer number`);
  checkRange(name, v, min, max);
}

function checkRange(name: string, v: number, min: number | null, max: number | null): void {
  if (max !== null && v > max) refuse(name, `${name} must not be greater than ${max}`);
  if (min !== null && v < min) refuse(name, `${name} must not be less than ${min}`);
}

function checkOptionalBoolean(v: unknown, param: string): void {
  if (!isMissing(v) && typeof v !== 'boolean') refuse(param, `${param} must be a boolean value`);
}

function checkOptionalIn(body: Json, name: string, values: readonly string[]): void {
  const v = body[name];
  if (!isMissing(v) && !values.includes(v as string)) refuse(name, `${name} must be one of the following values: ${values.join(', ')}`);
}

/** Messages (or arrays of them, at any depth: the DTO's nested validation walked those too). */
function checkMessageItems(items: unknown[], path: string): void {
  for (let i = 0; i < items.length; i++) {
    const item = items[i];
    const param = `${path}[${i}]`;
    if (Array.isArray(item)) checkMessageItems(item, param);
    else if (typeof item === 'object' && item !== null) checkMessage(item as Json, param);
    else refuse(param, `${param}: each value in nested property messages must be either object or array`);
  }
}

function checkMessage(message: Json, path: string): void {
  const role = message.role;
  if (!ROLE_SET.has(role)) refuse(`${path}.role`, `${path}.role must be one of the following values: ${ROLES.join(', ')}`);
  const problem = messageContentProblem(message);
  if (problem) refuse(`${path}.content`, `${path}.${problem}`);
  if ((role === 'tool' || !isMissing(message.tool_call_id)) && typeof message.tool_call_id !== 'string') {
    refuse(`${path}.tool_call_id`, `${path}.tool_call_id must be a string`);
  }
  if ((role === 'function' || !isMissing(message.name)) && typeof message.name !== 'string') {
    refuse(`${path}.name`, `${path}.name must be a string`);
  }
  if (!isMissing(message.tool_calls) && !Array.isArray(message.tool_calls))
    refuse(`${path}.tool_calls`, `${path}.tool_calls must be an array`);
}

function checkMessages(messages: unknown): void {
  if (isMissing(messages)) refuse('messages', 'messages should not be null or undefined');
  if (typeof messages !== 'object') refuse('messages', 'messages: each value in nested property messages must be either object or array');
  if (!Array.isArray(messages)) refuse('messages', 'messages must be an array');
  if (messages.length > MAX_MESSAGES) refuse('messages', `messages must contain no more than ${MAX_MESSAGES} elements`);
  if (messages.length < 1) refuse('messages', 'messages must contain at least 1 elements');
  checkMessageItems(messages, 'messages');
}

function checkStreamOptions(v: unknown): void {
  if (isMissing(v)) return;
  if (typeof v !== 'object') refuse('stream_options', 'stream_options: nested property stream_options must be either object or array');
  if (Array.isArray(v)) refuse('stream_options', 'stream_options must be an object');
  checkOptionalBoolean((v as Json).include_usage, 'stream_options.include_usage');
}

function bodyObject(value: unknown): Json {
  if (!isObject(value)) throw new InvalidRequestError('The request body must be a JSON object.');
  return value;
}

/**
 * `POST /v1/chat/completions`: the fields in the order the DTO declares them, the first
 * problem answered. Returns the body itself.
 */
export function checkChatCompletionBody(value: unknown): Json {
  const body = bodyObject(value);
  checkString(body, 'model');
  checkMessages(body.messages);
  checkOptionalNumber(body, 'temperature', 0, 2);
  checkOptionalNumber(body, 'top_p', 0, 1);
  checkOptionalInt(body, 'max_tokens', 1, null);
  checkOptionalInt(body, 'max_completion_tokens', 1, null);
  checkOptionalInt(body, 'n', 1, 8);
  checkOptionalBoolean(body.stream, 'stream');
  checkStreamOptions(body.stream_options);
  checkOptionalNumber(body, 'presence_penalty', -2, 2);
  checkOptionalNumber(body, 'frequency_penalty', -2, 2);
  checkOptionalInt(body, 'seed', null, null);
  checkOptionalString(body, 'user');
  if (!isMissing(body.tools) && !Array.isArray(body.tools)) refuse('tools', 'tools must be an array');
  if (!isMissing(body.response_format) && !isObject(body.response_format)) refuse('response_format', 'response_format must be an object');
  return body;
}

/** `POST /v1/embeddings`, as checkChatCompletionBody. */
export function checkEmbeddingBody(value: unknown): Json {
  const body = bodyObject(value);
  checkString(body, 'model');
  if (isMissing(body.input)) refuse('input', 'input should not be null or undefined');
  checkOptionalInt(body, 'dimensions', 1, null);
  checkOptionalIn(body, 'encoding_format', ENCODING_FORMATS);
  checkOptionalString(body, 'user');
  return body;
}

@Injectable()
export class ProxyBodyPipe implements PipeTransform<unknown, Json> {
  constructor(private readonly check: (value: unknown) => Json) {}

  transform(value: unknown): Json {
    return this.check(value);
  }
}

export const ChatCompletionBody = new ProxyBodyPipe(checkChatCompletionBody);
export const EmbeddingBody = new ProxyBodyPipe(checkEmbeddingBody);
