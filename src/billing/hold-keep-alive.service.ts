import { Injectable, Logger, OnModuleDestroy, OnModuleInit } from '@nestjs/common';
import { AppConfig } from '../config/app-config';
import { HoldRepository } from './hold.repository';

/**
 * A request may run longer than the hold TTL (a long stream): while it is in flight here, its
 * hold's expiry is pushed back every third of the TTL, so the sweeper only releases holds of
 * dead processes.
 */
@Injectable()
export class HoldKeepAlive implements OnModuleInit, OnModuleDestroy {
  private readonly logger = new Logger(HoldKeepAlive.name);
  /** Requests of this process holding money and not yet handed to settlement. */
  private readonly live = new Set<string>();
  private timer: NodeJS.Timeout | null = null;

  constructor(
    private readonly holds: HoldRepository,
    private readonly config: AppConfig,
  ) {}

  track(requestId: string): void {
    this.live.add(requestId);
  }

  /** The request's settlement is recorded (queued or applied): its hold no longer needs keeping alive. */
  release(requestId: string): void {
    this.live.delete(requestId);
  }

  onModuleInit(): void {
    const everyMs = Math.max(250, Math.floor((this.config.holdTtlSeconds * 1000) / 3));
    this.timer = setInterval(() => void this.renew(), everyMs);
    this.timer.unref();
  }

  onModuleDestroy(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }

  private async renew(): Promise<void> {
    if (this.live.size === 0) return;
    try {
      await this.holds.extendHolds([...this.live], this.config.holdTtlSeconds);
    } catch (err) {
      this.logger.warn(`Could not extend the holds of ${this.live.size} requests in flight: ${(err as Error).message}`);
    }
  }
}
