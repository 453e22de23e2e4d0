import { ValidationError, ValidationPipe } from '@nestjs/common';
import { InvalidRequestError } from './errors/api-error';

// Type errors say more than range errors: report "must be an array" before "at most N elements".
const TYPE_CHECKS = ['isDefined', 'whitelistValidation', 'nestedValidation', 'isString', 'isArray', 'isInt', 'isNumber', 'isBoolean', 'isObject', 'isIn', 'isUuid'];
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
 * Admin and dashboard bodies: unknown fields are refused, so a PATCH can never set a balance
 * or a workspace id.
 */
export const strictValidation = new ValidationPipe({
  whitelist: true,
  forbidNonWhitelisted: true,
  transform: true,
  exceptionFactory: validationErrorFactory,
  validationError: { target: false, value: false },
});

/**
 * Proxy bodies: what the gateway acts on is validated, everything else is forwarded as sent
 * (newer SDKs send fields we have not modelled), so nothing is stripped or refused.
 */
export const proxyValidation = new ValidationPipe({
  whitelist: false,
  forbidNonWhitelisted: false,
  transform: false,
  exceptionFactory: validationErrorFactory,
  validationError: { target: false, value: false },
});
