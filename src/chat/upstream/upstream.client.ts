import { Injectable, Logger, OnApplicationShutdown } from '@nestjs/common';
import { Agent, errors, request } from 'undici';
import { AppConfig } from '../../config/app-config';
import { ApiError, ClientClosedError, GatewayError } from '../../common/errors/api-error';
import type { ResolvedProvider } from '../../catalog/catalog.service';
import { simulate } from './simulator';

export interface UpstreamResponse {
  status: number;
  contentType: string;
  body: AsyncIterable<Buffer> & { destroy?: (err?: Error) => void };
  simulated: boolean;
}

/**
 * Forwards to OpenAI-compatible providers over pooled keep-alive connections, with the
 * provider's key (never the customer's). In development, a provider without a key is
 * answered by the built-in simulator; production never simulates.
 */
@Injectable()
export class UpstreamClient implements OnApplicationShutdown {
  private readonly logger = new Logger(UpstreamClient.name);
  private readonly agent: Agent;

  constructor(private readonly config: AppConfig) {
    this.agent = new Agent({
      keepAliveTimeout: 30_000,
      keepAliveMaxTimeout: 300_000,
      connections: 256,
      pipelining: 1,
      headersTimeout: config.upstreamTimeoutMs,
      bodyTimeout: config.upstreamTimeoutMs,
      connect: { timeout: 10_000 },
    });
  }

  async post(provider: ResolvedProvider, path: string, payload: Record<string, unknown>, signal: AbortSignal): Promise<UpstreamResponse> {
    if (!provider.apiKey) {
      if (this.config.isProduction) throw new GatewayError(502, `Provider '${provider.id}' is not configured.`);
      this.logger.log(`Simulated ${path} for provider '${provider.id}' (no API key configured; development only)`);
      return simulate(path, payload);
    }
    try {
      const res = await request(`${provider.baseUrl}${path}`, {
        method: 'POST',
        dispatcher: this.agent,
        signal,
        headers: {
          'content-type': 'application/json',
          accept: payload.stream ? 'text/event-stream' : 'application/json',
          authorization: `Bearer ${provider.apiKey}`,
        },
        body: JSON.stringify(payload),
      });
      const contentType = String(res.headers['content-type'] ?? '');
      if (res.statusCode >= 200 && res.statusCode < 300) {
        return { status: res.statusCode, contentType, body: res.body, simulated: false };
      }
      const text = await res.body.text().catch(() => '');
      throw this.mapError(provider, res.statusCode, text, res.headers['retry-after']);
    } catch (err) {
      throw this.failure(provider, err);
    }
  }

  /** Provider statuses to the gateway's: caller's faults pass through, ours become gateway_error. */
  private mapError(provider: ResolvedProvider, status: number, text: string, retryAfter: string | string[] | undefined): ApiError {
    const message = providerMessage(text);
    if (status === 400 || status === 404 || status === 422) {
      return new ApiError(status, 'invalid_request_error', message ?? `The provider refused the request (HTTP ${status}).`);
    }
    if (status === 401 || status === 403) {
      this.logger.error(`Provider '${provider.id}' refused our credentials (HTTP ${status})`);
      return new GatewayError(502, 'The upstream provider rejected the gateway credentials. The operator has been notified.');
    }
    if (status === 429) {
      return new GatewayError(503, 'The upstream provider is rate limiting requests. Retry shortly.', {
        'retry-after': String(retryAfterSeconds(retryAfter)),
      });
    }
    if (status === 408) return new GatewayError(504, 'The upstream provider timed out.');
    return new GatewayError(502, `The upstream provider failed (HTTP ${status}).`);
  }

  /** A thrown transport error (or the client's abort) as the answer the client gets. */
  failure(provider: ResolvedProvider, err: unknown): ApiError {
    if (err instanceof ApiError) return err;
    if (err instanceof errors.HeadersTimeoutError || err instanceof errors.BodyTimeoutError) {
      return new GatewayError(504, 'The upstream provider did not answer in time.');
    }
    if ((err as Error)?.name === 'AbortError' || err instanceof errors.RequestAbortedError) {
      return new ClientClosedError();
    }
    this.logger.warn(`Provider '${provider.id}' unreachable: ${(err as { code?: string }).code ?? (err as Error)?.name ?? 'error'}`);
    return new GatewayError(502, 'The upstream provider could not be reached.');
  }

  async onApplicationShutdown(): Promise<void> {
    await this.agent.close().catch(() => undefined);
  }
}

/** A provider's Retry-After (seconds or an HTTP date) as whole seconds, at least 1. */
export function retryAfterSeconds(value: string | string[] | undefined, now = Date.now()): number {
  const text = Array.isArray(value) ? value[0] : value;
  if (!text) return 1;
  if (/^\d{1,6}$/.test(text.trim())) return Math.max(1, Number(text.trim()));
  const date = Date.parse(text);
  return Number.isNaN(date) ? 1 : Math.min(86_400, Math.max(1, Math.ceil((date - now) / 1000)));
}

/** The provider's own error message, when its body has one (OpenAI shape or a bare string). */
function providerMessage(text: string): string | null {
  try {
    const parsed = JSON.parse(text) as { error?: { message?: unknown } | string; message?: unknown };
    const candidate = typeof parsed.error === 'string' ? parsed.error : (parsed.error?.message ?? parsed.message);
    return typeof candidate === 'string' && candidate.length > 0 ? candidate.slice(0, 2_000) : null;
  } catch {
    return null;
  }
}

