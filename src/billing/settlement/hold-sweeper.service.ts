import { InjectQueue } from '@nestjs/bullmq';
import { Injectable, Logger } from '@nestjs/common';
import { Job, Queue } from 'bullmq';
import { RedisService } from '../../redis/redis.service';
import { ExpiredHold, HoldRepository } from '../hold.repository';
import { groupMemberKey, type SettlementGroup } from './settlement-groups';
import { JobName, QueueName } from './settlement.constants';
import type { Settlement } from './settlement.types';

/** The usage log's error code for a request whose hold expired with no settlement. */
export const OUTCOME_UNKNOWN = 'outcome_unknown';

export interface SweepResult {
  released: number;
  settledFromFailedJobs: number;
  skipped: number;
  errors: number;
}

/**
 * A hold outlives its request when its process died before handing the request to settlement
 * (mid-stream, say), or when its settlement job was lost (Redis restarted without persistence).
 * A hold whose job is still queued is left to it; one whose job failed for good is settled from
 * the job's data. One with no job at all is released at no charge and logged as
 * `outcome_unknown` with no status: the sweeper cannot know what the client got, and never
 * invents it (reconcile reports how many there are).
 */
@Injectable()
export class HoldSweeper {
  private readonly logger = new Logger(HoldSweeper.name);

  constructor(
    private readonly holds: HoldRepository,
    @InjectQueue(QueueName.Usage) private readonly queue: Queue,
    private readonly redis: RedisService,
  ) {}

  async sweep(limit = 500): Promise<SweepResult> {
    const result: SweepResult = { released: 0, settledFromFailedJobs: 0, skipped: 0, errors: 0 };
    for (const hold of await this.holds.expiredHolds(limit)) {
      try {
        result[await this.sweepOne(hold)]++;
      } catch (err) {
        // one hold that cannot be handled must not block the ones after it; an error never
        // releases a hold (that happens only after the queue said it has no job for it)
        result.errors++;
        this.logger.error(`Hold sweeper could not handle ${hold.requestId}: ${(err as Error).message}`);
      }
    }
    if (result.released + result.settledFromFailedJobs + result.errors > 0) {
      this.logger.warn(
        `Hold sweeper: released ${result.released} (outcome unknown, not charged), ` +
          `settled ${result.settledFromFailedJobs} from finished jobs, ${result.errors} errors`,
      );
    }
    return result;
  }

  /** The request's own `settle` job, else the group job Redis names for it (recorded before the job was added). */
  private async jobOf(requestId: string): Promise<Job | undefined> {
    const own = await this.queue.getJob(requestId);
    if (own) return own;
    const groupId = await this.redis.client.get(groupMemberKey(this.queue, requestId));
    return groupId ? this.queue.getJob(groupId) : undefined;
  }

  private async sweepOne(hold: ExpiredHold): Promise<'released' | 'settledFromFailedJobs' | 'skipped'> {
    // Unreachable Redis throws here: nothing is released while we cannot see the queue.
    const job = await this.jobOf(hold.requestId);
    if (job) {
      const state = await job.getState();
      if (state !== 'failed' && state !== 'completed') return 'skipped';
      // failed for good, or completed while we looked: its data settles it (idempotently)
      const settlement =
        job.name === JobName.SettleGroup
          ? (job.data as SettlementGroup).settlements.find((s) => s.requestId === hold.requestId)
          : (job.data as Settlement);
      if (settlement) {
        await this.holds.settle(settlement);
        return 'settledFromFailedJobs';
      }
    }
    const released = await this.holds.settleIfExpired({
      requestId: hold.requestId,
      workspaceId: hold.workspaceId,
      keyId: hold.keyId,
      model: hold.model,
      provider: null,
      promptTokens: 0,
      completionTokens: 0,
      costMicros: 0,
      usageSource: 'none',
      status: null,
      errorCode: OUTCOME_UNKNOWN,
      latencyMs: Math.min(2_147_483_647, Date.now() - hold.createdAt.getTime()),
      stream: false,
      createdAt: hold.createdAt.getTime(),
    });
    // not expired any more: its live process extended it meanwhile
    return released ? 'released' : 'skipped';
  }
}
