import { ArgumentMetadata, ValidationError, ValidationPipe } from '@nestjs/common';
import { InvalidRequestError } from './errors/api-error';

// Type errors say more than range errors: report "must be an array" before "at most N elements".
const TYPE_CHECKS = [
  'isDefined',
  'whitelistValidation',
  'nestedValidation',
  'isString',
  'isArray',
  'isInt',
  'isNumber',
  'isBoolean',
  'isObject',
  'isIn',
  'isUuid',
];
function priority(constraint: string): number {
  const i = TYPE_CHECKS.indexOf(constraint);
  return i < 0 ? TYPE_CHECKS.length : i;
}

function firstError(errors: ValidationError[], path = ''): { param: string; message: string } | null {
  for (const error of errors) {
    const param = path ? (/^\d+$/.test(error.property) ? `${path}[${error.property}]` : `${path}.${error.property}`) : error.property;
    const constraints = Object.entries(error.constraints ?? {})
      .sort(([a], [b]) => priority(a) - priority(b))
      .map(([, message]) => message);
    if (constraints.length > 0) {
      const message = constraints[0].replace(new RegExp(`^${error.property}\\b`), param);
      return { param, message: message.startsWith(param) ? message : `${param}: ${message}` };
    }
    const nested = firstError(error.children ?? [], param);
    if (nested) return nested;
  }
  return null;
}

/** Maps class-validator errors to one OpenAI 400 naming the parameter. */
export function validationErrorFactory(errors: ValidationError[]): InvalidRequestError {
  const first = firstError(errors);
  if (!first) return new InvalidRequestError('The request body is not valid.');
  return new InvalidRequestError(`Invalid request: ${first.message}.`, first.param);
}

/**
 * The path of the first string (value or object key) holding a NUL character, in the
 * validation errors' style (`models[2]`, `fallbacks[0].provider`); '' for the value itself;
 * null when there is none. Iterative: no recursion, whatever the nesting.
 */
export function findNul(value: unknown): string | null {
  const stack: Array<[unknown, string]> = [[value, '']];
  while (stack.length > 0) {
    const [v, path] = stack.pop()!;
    if (typeof v === 'string') {
      if (v.includes('\u0000')) return path;
    } else if (Array.isArray(v)) {
      for (let i = v.length - 1; i >= 0; i--) stack.push([v[i], `${path}[${i}]`]);
    } else if (v !== null && typeof v === 'object') {
      const entries = Object.entries(v as Record<string, unknown>);
      for (let i = entries.length - 1; i >= 0; i--) {
        const [name, child] = entries[i];
        const childPath = path ? `${path}.${name}` : name;
        if (name.includes('\u0000')) return childPath;
        stack.push([child, childPath]);
      }
    }
  }
  return null;
}

/**
 * A ValidationPipe that also refuses a NUL character in any string of a body, query or path
 * parameter: PostgreSQL stores no NUL in text or jsonb, so it would otherwise be a 500.
 */
class StrictValidationPipe extends ValidationPipe {
  override async transform(value: unknown, metadata: ArgumentMetadata): Promise<unknown> {
    if (metadata.type === 'body' || metadata.type === 'query' || metadata.type === 'param') {
      const found = findNul(value);
      if (found !== null) {
        const param = metadata.type === 'param' && metadata.data ? metadata.data : found || metadata.data || null;
        throw new InvalidRequestError(`Invalid request: ${param ?? 'the value'} must not contain a NUL character (\\u0000).`, param);
      }
    }
    return super.transform(value, metadata);
  }
}

/**
 * Admin and dashboard bodies: unknown fields are refused, so a PATCH can never set a balance
 * or a workspace id. No string may hold a NUL character.
 */
export const strictValidation = new StrictValidationPipe({
  whitelist: true,
  forbidNonWhitelisted: true,
  transform: true,
  exceptionFactory: validationErrorFactory,
  validationError: { target: false, value: false },
});

/**
 * Proxy bodies, as the chat DTOs declare them: what the gateway acts on is validated, nothing
 * else is refused. The proxy routes use the hand-written ProxyBodyPipe instead (chat/), which
 * answers the same errors without copying the body; this pipe is the reference it is tested against.
 */
export const proxyValidation = new ValidationPipe({
  whitelist: false,
  forbidNonWhitelisted: false,
  transform: false,
  exceptionFactory: validationErrorFactory,
  validationError: { target: false, value: false },
});
