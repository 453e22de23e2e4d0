import type { Response } from 'express';
import type { Hold, HoldOutcome } from '../billing/hold';
import type { ResolvedProvider } from '../catalog/catalog.service';
import type { ModelEntity, ModelType } from '../catalog/model.entity';
import type { GatewayRequest } from '../common/http/request-context';
import type { AuthenticatedKey } from '../keys/key-cache';
import type { TokenReservation } from '../ratelimit/rate-limiter.service';
import { ClientAbort } from './client-abort';
import type { MeasuredUsage } from './usage-report';

export type ProxyBody = Record<string, unknown>;

/**
 * One proxied request as it moves through the gateway: who asked, what for, the bounds held
 * for it, and the hold itself once reserved. The relays write its answer; the service decides.
 */
export class ProxyCall {
  readonly path: '/chat/completions' | '/embeddings';
  readonly stream: boolean;
  /** Aborted when the client goes away, from the first moment of the request. */
  readonly abort = new ClientAbort();
  model: ModelEntity;
  /** The provider sent to last: the one that answered, once one has. */
  provider: ResolvedProvider;
  promptBound = 0;
  completionBound = 0;
  hold: Hold | null = null;
  /** Sends upstream so far, over every provider tried (retries and fallbacks). */
  attempts = 0;
  /** Tokens reserved against the key's per-minute limit; what was not used is given back. */
  tokenReservation: TokenReservation | null = null;
  /** Tokens the settled outcome counted (0 until settled, and for a request that was not). */
  usedTokens = 0;

  constructor(
    readonly kind: ModelType,
    readonly req: GatewayRequest,
    readonly res: Response,
    readonly key: AuthenticatedKey,
    readonly body: ProxyBody,
  ) {
    this.path = kind === 'chat' ? '/chat/completions' : '/embeddings';
    this.stream = kind === 'chat' && body.stream === true;
  }

  /**
   * The client's connection closed (or began to close) before its answer was complete. The
   * response's 'close' event comes a loop phase after the client's FIN is read, so the socket's
   * own state is looked at too: an HTTP client does not half-close a connection it still reads.
   */
  get clientGone(): boolean {
    if (this.res.writableFinished) return false;
    const socket = this.req.socket;
    return this.abort.aborted || socket.destroyed || socket.readableEnded || !socket.writable;
  }

  /** What the request came to, for its settlement. */
  outcome(status: number, errorCode: string | null, usage: MeasuredUsage = NOTHING): HoldOutcome {
    const elapsed = Math.round(performance.now() - this.req.startedAt);
    this.usedTokens = usage.promptTokens + usage.completionTokens;
    return {
      status,
      errorCode,
      provider: this.provider?.id ?? null,
      ...usage,
      stream: this.stream,
      latencyMs: elapsed,
      createdAt: Date.now() - elapsed,
      attempts: this.attempts,
    };
  }
}

const NOTHING: MeasuredUsage = { promptTokens: 0, completionTokens: 0, usageSource: 'none', costMicros: 0 };
