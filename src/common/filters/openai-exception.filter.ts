import { ArgumentsHost, Catch, ExceptionFilter, HttpException, Logger } from '@nestjs/common';
import type { Response } from 'express';
import { ApiError } from '../errors/api-error';
import type { GatewayRequest } from '../http/request-context';
import { tagOf } from '../http/request-scope';

const CODE_BY_STATUS: Record<number, string> = {
  400: 'invalid_request_error',
  401: 'invalid_api_key',
  403: 'forbidden',
  404: 'not_found',
  405: 'method_not_allowed',
  409: 'conflict',
  413: 'request_too_large',
  415: 'unsupported_media_type',
  429: 'rate_limit_exceeded',
};

/** Renders every error, expected or not, in the OpenAI error shape. Internals never leak. */
@Catch()
export class OpenAiExceptionFilter implements ExceptionFilter {
  private readonly logger = new Logger('Errors');

  catch(exception: unknown, host: ArgumentsHost): void {
    const ctx = host.switchToHttp();
    this.render(exception, ctx.getRequest<GatewayRequest>(), ctx.getResponse<Response>());
  }

  /** Answers `exception` on `res` (or ends an answer already begun); for handlers outside Nest too. */
  render(exception: unknown, req: GatewayRequest, res: Response): void {
    if (res.headersSent) {
      if (!res.writableEnded) res.end();
      return;
    }
    const error = this.toApiError(exception, req);
    for (const [name, value] of Object.entries(error.headers)) res.setHeader(name, value);
    res.status(error.status).json(error.toBody());
  }

  private toApiError(exception: unknown, req: GatewayRequest): ApiError {
    if (exception instanceof ApiError) return exception;
    if (exception instanceof HttpException) {
      const status = exception.getStatus();
      if (status === 404) return new ApiError(404, 'not_found', `Unknown route: ${req.method} ${req.path}`);
      const body = exception.getResponse();
      const raw = typeof body === 'string' ? body : (body as { message?: unknown }).message;
      const message = Array.isArray(raw) ? raw.join('; ') : typeof raw === 'string' ? raw : exception.message;
      if (status >= 500) return this.internal(exception, req);
      return new ApiError(status, CODE_BY_STATUS[status] ?? 'invalid_request_error', message);
    }
    return this.internal(exception, req);
  }

  private internal(exception: unknown, req: GatewayRequest): ApiError {
    const err = exception as Error;
    this.logger.error(`Unhandled error on ${req.method} ${req.path} (request ${req.id}): ${err?.stack ?? String(err)}`, tagOf(req.id));
    return new ApiError(500, 'internal_error', `The gateway hit an internal error. Request id: ${req.id}.`, 'api_error');
  }
}
