import { CallHandler, ExecutionContext, Injectable, Logger, NestInterceptor } from '@nestjs/common';
import type { NextFunction, Request, Response } from 'express';
import type { Server } from 'node:http';
import { finalize, Observable } from 'rxjs';

/** After a forced close, how long handlers may still take to record what their requests came to. */
const AFTER_FORCE_MS = 3_000;

export interface DrainResult {
  /** Whether every request finished within the grace period. */
  clean: boolean;
  /** Requests still open when the grace period ended (their connections were closed). */
  forced: number;
  ms: number;
}

/**
 * This process's HTTP side of a graceful shutdown. Counts requests in flight twice over: by
 * response (an Express middleware, for every route) and by handler (a Nest interceptor: a
 * handler may still be recording a settlement after its client left). Once draining, readiness
 * is false, the server accepts no new connection, every response still to be sent says
 * `Connection: close`, and keep-alive sockets are closed as soon as they are idle.
 */
@Injectable()
export class HttpDrain implements NestInterceptor {
  private readonly logger = new Logger('Shutdown');
  private readonly responses = new Set<Response>();
  private handlers = 0;
  private waiters: Array<() => void> = [];
  private server: Server | null = null;
  private drainingSince: number | null = null;

  get draining(): boolean {
    return this.drainingSince !== null;
  }

  attach(server: Server): void {
    this.server = server;
  }

  /** Express middleware, first in the chain. */
  readonly track = (_req: Request, res: Response, next: NextFunction): void => {
    this.responses.add(res);
    if (this.draining) res.setHeader('connection', 'close');
    res.once('close', () => {
      this.responses.delete(res);
      if (this.draining) {
        // a keep-alive socket whose last response just ended is idle now
        setImmediate(() => this.server?.closeIdleConnections());
        this.wake();
      }
    });
    next();
  };

  intercept(_context: ExecutionContext, next: CallHandler): Observable<unknown> {
    this.handlerStarted();
    return next.handle().pipe(finalize(() => this.handlerFinished()));
  }

  /** A handler outside Nest's interceptors (the proxy lane) starts; handlerFinished() once it has. */
  handlerStarted(): void {
    this.handlers++;
  }

  handlerFinished(): void {
    this.handlers--;
    if (this.draining) this.wake();
  }

  get inFlight(): number {
    return this.responses.size + this.handlers;
  }

  /**
   * Stops taking requests and waits up to `graceMs` for those in flight (streams included) to
   * finish; then closes their connections and gives their handlers a moment to record what
   * they came to. Resolves when nothing is in flight here any more, or after that.
   */
  async drain(graceMs: number): Promise<DrainResult> {
    const started = Date.now();
    this.drainingSince ??= started;
    for (const res of this.responses) if (!res.headersSent) res.setHeader('connection', 'close');
    const server = this.server;
    const closed = server ? new Promise<void>((resolve) => server.close(() => resolve())) : Promise.resolve();
    server?.closeIdleConnections();
    this.logger.log(`Draining: ${this.inFlight} requests in flight, up to ${graceMs} ms`);
    const clean = await this.within(graceMs, Promise.all([closed, this.idle()]));
    let forced = 0;
    if (!clean) {
      forced = this.responses.size;
      this.logger.warn(`Grace period of ${graceMs} ms over: closing ${forced} connections still open`);
      server?.closeAllConnections();
      await this.within(AFTER_FORCE_MS, this.idle());
    }
    return { clean, forced, ms: Date.now() - started };
  }

  private idle(): Promise<void> {
    if (this.inFlight === 0) return Promise.resolve();
    return new Promise((resolve) => this.waiters.push(resolve));
  }

  private wake(): void {
    if (this.inFlight > 0) return;
    const waiters = this.waiters;
    this.waiters = [];
    for (const resolve of waiters) resolve();
  }

  private async within(ms: number, promise: Promise<unknown>): Promise<boolean> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<false>((resolve) => (timer = setTimeout(() => resolve(false), ms)));
    try {
      return await Promise.race([promise.then(() => true as const), timeout]);
    } finally {
      clearTimeout(timer);
    }
  }
}
