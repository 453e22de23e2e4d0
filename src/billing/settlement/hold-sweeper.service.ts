import { InjectQueue } from '@nestjs/bullmq';
import { Injectable, Logger } from '@nestjs/common';
import { Job, Queue } from 'bullmq';
import { RedisService } from '../../redis/redis.service';
import { AppConfig } from '../../config/app-config';
import { ExpiredHold, HoldRepository } from '../hold.repository';
import { LeaseRepository, TracedRequest } from '../leases/lease.repository';
import { groupMemberKey, type SettlementGroup } from './settlement-groups';
import { JobName, QueueName } from './settlement.constants';
import type { Settlement } from './settlement.types';

/** The usage log's error code for a request whose hold expired with no settlement. */
export const OUTCOME_UNKNOWN = 'outcome_unknown';

export interface SweepResult {
  released: number;
  settledFromFailedJobs: number;
  /** Dead processes' escrow leases closed. */
  leasesClosed: number;
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
    private readonly leases: LeaseRepository,
    @InjectQueue(QueueName.Usage) private readonly queue: Queue,
    private readonly redis: RedisService,
    private readonly config: AppConfig,
  ) {}

  async sweep(limit = 500): Promise<SweepResult> {
    const result: SweepResult = { released: 0, settledFromFailedJobs: 0, leasesClosed: 0, skipped: 0, errors: 0 };
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
    await this.sweepLeases(limit, result);
    if (result.released + result.settledFromFailedJobs + result.leasesClosed + result.errors > 0) {
      this.logger.warn(
        `Hold sweeper: released ${result.released} (outcome unknown, not charged), ` +
          `settled ${result.settledFromFailedJobs} from finished jobs, closed ${result.leasesClosed} dead leases, ${result.errors} errors`,
      );
    }
    return result;
  }

  /**
   * Escrow leases whose process stopped renewing them a hold TTL ago (it stopped holding
   * requests against them well before): what they still hold is released, and each request
   * traced against them without a usage log is treated like an expired hold: left to its
   * queued settlement, settled from a finished job, else logged `outcome_unknown` at no charge.
   * A settlement that arrives after the close charges at most what is available (the rest is
   * the lease's shortfall, in reconcile).
   */
  private async sweepLeases(limit: number, result: SweepResult): Promise<void> {
    const grace = this.config.holdTtlSeconds;
    for (const dead of await this.leases.dead(grace, limit)) {
      try {
        const released = await this.leases.close(dead.leaseId, grace);
        if (released === null) continue; // renewed meanwhile, or closed by another sweeper
        result.leasesClosed++;
        for (const request of await this.leases.unsettledTraces(dead.leaseId)) {
          result[await this.sweepTraced(request)]++;
        }
        await this.leases.forgetLeaseTraces(dead.leaseId);
      } catch (err) {
        result.errors++;
        this.logger.error(`Hold sweeper could not close lease ${dead.leaseId}: ${(err as Error).message}`);
      }
    }
  }

  private async sweepTraced(request: TracedRequest): Promise<'released' | 'settledFromFailedJobs' | 'skipped'> {
    const settled = await this.settleFromJob(request.requestId);
    if (settled !== null) return settled ? 'settledFromFailedJobs' : 'skipped';
    await this.holds.settle(unknownOutcome(request));
    return 'released';
  }

  /**
   * What the request's settlement job says: null when there is none; false when it is still to
   * run (left to it); true when it finished and its data was settled again (idempotently).
   */
  private async settleFromJob(requestId: string): Promise<boolean | null> {
    const job = await this.jobOf(requestId);
    if (!job) return null;
    const state = await job.getState();
    if (state !== 'failed' && state !== 'completed') return false;
    const settlement =
      job.name === JobName.SettleGroup
        ? (job.data as SettlementGroup).settlements.find((s) => s.requestId === requestId)
        : (job.data as Settlement);
    if (!settlement) return null;
    await this.holds.settle(settlement);
    return true;
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
    const settled = await this.settleFromJob(hold.requestId);
    if (settled !== null) return settled ? 'settledFromFailedJobs' : 'skipped';
    const released = await this.holds.settleIfExpired(unknownOutcome(hold));
    // not expired any more: its live process extended it meanwhile
    return released ? 'released' : 'skipped';
  }
}

/** The settlement of a request whose process died with it: no charge, no status, `outcome_unknown`. */
function unknownOutcome(r: { requestId: string; workspaceId: string; keyId: string; model: string; createdAt: Date }): Settlement {
  return {
    requestId: r.requestId,
    workspaceId: r.workspaceId,
    keyId: r.keyId,
    model: r.model,
    provider: null,
    promptTokens: 0,
    completionTokens: 0,
    costMicros: 0,
    usageSource: 'none',
    status: null,
    errorCode: OUTCOME_UNKNOWN,
    latencyMs: Math.min(2_147_483_647, Math.max(0, Date.now() - r.createdAt.getTime())),
    stream: false,
    createdAt: r.createdAt.getTime(),
  };
}
