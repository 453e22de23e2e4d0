/** The OpenAI error body every endpoint answers with. */
export interface OpenAiErrorBody {
  error: { message: string; type: string; param: string | null; code: string };
}

/** A refusal with a stable code, rendered in the OpenAI error shape by the global filter. */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly type: string = 'invalid_request_error',
    readonly param: string | null = null,
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
  }

  toBody(): OpenAiErrorBody {
    return { error: { message: this.message, type: this.type, param: this.param, code: this.code } };
  }
}

export class InvalidApiKeyError extends ApiError {
  constructor(message = 'Incorrect or missing API key. Send it as "Authorization: Bearer <key>".') {
    super(401, 'invalid_api_key', message);
  }
}

export class InvalidRequestError extends ApiError {
  constructor(message: string, param: string | null = null) {
    super(400, 'invalid_request_error', message, 'invalid_request_error', param);
  }
}

export class ModelNotFoundError extends ApiError {
  constructor(model: string) {
    super(404, 'model_not_found', `The model '${clip(model)}' does not exist or is not available.`, 'invalid_request_error', 'model');
  }
}

/** A value the client sent, cut for echoing in a message: 100 KB in must not be 100 KB out. */
export function clip(value: string, max = 100): string {
  if (value.length <= max) return value;
  const chars = Array.from(value.slice(0, 2 * max)); // whole characters, never half a surrogate pair
  return chars.length <= max && value.length <= 2 * max ? value : `${chars.slice(0, max).join('')}…`;
}

export class ModelNotAllowedError extends ApiError {
  constructor(model: string) {
    super(403, 'model_not_allowed', `This API key is not allowed to use the model '${model}'.`, 'invalid_request_error', 'model');
  }
}

export class RateLimitError extends ApiError {
  /** `tokens`: what the window had used and what this request asked for (its bound), said in the message. */
  constructor(kind: 'requests' | 'tokens', limit: number, retryAfterSeconds: number, tokens?: { used: number; requested: number }) {
    const detail = tokens ? ` Used ${tokens.used}, requested ${tokens.requested} (the prompt bound plus max_tokens).` : '';
    super(
      429,
      'rate_limit_exceeded',
      `Rate limit reached: ${limit} ${kind} per minute.${detail} Try again in ${retryAfterSeconds}s.`,
      kind,
      null,
      { 'retry-after': String(retryAfterSeconds) },
    );
  }
}

export class InsufficientQuotaError extends ApiError {
  constructor(message: string) {
    super(403, 'insufficient_quota', message);
  }
}

export class NotFoundError extends ApiError {
  constructor(message: string) {
    super(404, 'not_found', message);
  }
}

export class ConflictError extends ApiError {
  constructor(message: string, code = 'conflict') {
    super(409, code, message);
  }
}

/**
 * The client went away before its answer: logged as 499, never charged. `client_closed_request`
 * while the request was still being checked or forwarded; `client_disconnected` when the
 * provider had answered but no byte of it reached the client.
 */
export class ClientClosedError extends ApiError {
  constructor(code: 'client_closed_request' | 'client_disconnected' = 'client_closed_request') {
    super(499, code, 'The client closed the request.');
  }
}

/** The provider (or a store the gateway needs) failed. Never carries a secret or provider URL. */
export class GatewayError extends ApiError {
  constructor(status: 502 | 503 | 504, message: string, headers: Record<string, string> = {}) {
    super(status, 'gateway_error', message, 'api_error', null, headers);
  }
}

export class AdminAuthError extends ApiError {
  constructor(message = 'Incorrect or missing admin token.') {
    super(401, 'invalid_admin_token', message, 'invalid_request_error');
  }
}
