import { Injectable, Logger, OnApplicationShutdown } from '@nestjs/common';
import Redis, { RedisOptions } from 'ioredis';
import { AppConfig } from '../config/app-config';

type InvalidationHandler = (message: string) => void;

/**
 * The process's Redis connections: one for commands (rate limits, publishing) and one
 * subscribed to the invalidation channel that keeps every gateway's in-process caches fresh.
 * Commands fail fast while Redis is down instead of queueing behind a dead socket.
 */
@Injectable()
export class RedisService implements OnApplicationShutdown {
  private readonly logger = new Logger(RedisService.name);
  readonly client: Redis;
  private readonly subscriber: Redis;
  private readonly handlers: InvalidationHandler[] = [];
  private readonly resetHandlers: Array<() => void> = [];
  readonly channel: string;
  private everReady = false;

  constructor(private readonly config: AppConfig) {
    this.channel = `${config.redisPrefix}:invalidate`;
    // Commands issued in one turn of the event loop (the rate-limit checks, token give-backs and
    // settlement group names of the requests in flight) leave in one write: on this hot path a
    // socket write costs more than the command.
    this.client = new Redis(config.redisUrl, { ...RedisService.options(), enableAutoPipelining: true });
    this.subscriber = new Redis(config.redisUrl, { ...RedisService.options(), enableOfflineQueue: true });
    this.client.on('error', () => undefined); // reported through health checks, not per retry
    this.subscriber.on('error', () => undefined);
    this.subscriber.on('message', (_channel: string, message: string) => {
      for (const handler of this.handlers) handler(message);
    });
    this.subscriber.on('ready', () => {
      // A reconnect may have missed invalidations: drop every cache once.
      if (this.everReady) {
        this.logger.warn('Redis subscriber reconnected: clearing in-process caches');
        for (const reset of this.resetHandlers) reset();
      }
      this.everReady = true;
    });
    void this.subscriber.subscribe(this.channel).catch(() => undefined);
  }

  static options(): RedisOptions {
    return {
      lazyConnect: false,
      maxRetriesPerRequest: 1,
      enableOfflineQueue: false,
      connectTimeout: 2_000,
      retryStrategy: (times) => Math.min(times * 200, 2_000),
    };
  }

  /** Whether invalidation messages can arrive now; while not, caches must not trust old entries. */
  get invalidationHealthy(): boolean {
    return this.subscriber.status === 'ready';
  }

  key(...parts: string[]): string {
    return [this.config.redisPrefix, ...parts].join(':');
  }

  /** Called for every invalidation message; `onReset` when messages may have been missed. */
  onInvalidate(handler: InvalidationHandler, onReset: () => void): void {
    this.handlers.push(handler);
    this.resetHandlers.push(onReset);
  }

  /** Tells every gateway process to drop what it cached for this entity. */
  async publishInvalidation(message: string): Promise<void> {
    for (const handler of this.handlers) handler(message);
    for (let attempt = 1; ; attempt++) {
      try {
        await this.client.publish(this.channel, message);
        return;
      } catch (err) {
        if (attempt >= 3) {
          // other processes drop the entry at their cache TTL (30 s) instead of at once
          this.logger.error(`Could not publish invalidation "${message}": ${(err as Error).message}`);
          return;
        }
        await new Promise((resolve) => setTimeout(resolve, 100 * attempt));
      }
    }
  }

  async ping(): Promise<boolean> {
    try {
      return (await this.client.ping()) === 'PONG';
    } catch {
      return false;
    }
  }

  async onApplicationShutdown(): Promise<void> {
    this.subscriber.disconnect();
    this.client.disconnect();
  }
}
