import { InjectQueue } from '@nestjs/bullmq';
import { Injectable, Logger } from '@nestjs/common';
import { Job, Queue } from 'bullmq';
import { LRUCache } from 'lru-cache';
import { randomUUID } from 'node:crypto';
import { MetricsService } from '../../metrics/metrics.service';
import { RedisService } from '../../redis/redis.service';
import { HoldRepository } from '../hold.repository';
import { GROUP_MEMBER_TTL_MS, groupMemberKey, type SettlementGroup } from './settlement-groups';
import { JobName, QueueName } from './settlement.constants';
import type { Settlement } from './settlement.types';

const ENQUEUE_TIMEOUT_MS = 1_000;
/** The most settlements one group job carries. */
const MAX_GROUP = 100;
/**
 * A process that recorded nothing for this long is idle: its next group leaves once the code
 * that recorded runs out (a microtask), not a turn of the event loop later, which other I/O
 * (its own workers') may lengthen; what finishes in the same turn of a busy process still
 * travels together.
 */
const IDLE_MS = 2;

interface Waiting {
  settlement: Settlement;
  queued: (ok: boolean) => void;
}

/** What became of a settlement handed over. */
export interface Recorded {
  /** Queued or applied; false when neither store took it. */
  ok: boolean;
  /** What was charged, when the settlement was applied synchronously; null when queued. */
  chargedMicros: number | null;
}

/**
 * Hands a finished request to the settlement queue before the client gets its answer. The
 * requests that finish in the same turn of the event loop travel as one `settle-group` job
 * (job id = group id), so a busy process adds one job, and a worker runs one job, for many
 * requests; a request alone is a `settle` job of its own (job id = request id). An idle process
 * sends at once (IDLE_MS). Each request is answered only once Redis acknowledged its job. If
 * Redis cannot take it, the request is settled synchronously in PostgreSQL instead: the usage
 * record and the charge are never lost. A job that reaches Redis after the fallback settled is
 * harmless: settlement is idempotent per request (the usage log is the guard), so is a group
 * delivered twice.
 */
@Injectable()
export class SettlementRecorder {
  private readonly logger = new Logger(SettlementRecorder.name);
  private forming: Waiting[] = [];
  private flushScheduled = false;
  /** performance.now() of the last request joining a group. */
  private lastJoined = -Infinity;
  /**
   * The group job of each request recorded lately, for `withdraw`, which a relay calls right
   * after recording (its client left meanwhile). Kept small and short: every entry outlives the
   * young generation, so a larger cache is old-generation garbage the process carries at peak.
   */
  private readonly groupOf = new LRUCache<string, string>({ max: 20_000, ttl: 10_000 });
  /** Withdrawals from one group, one at a time: each rewrites the group. */
  private readonly groupLocks = new Map<string, Promise<unknown>>();

  constructor(
    @InjectQueue(QueueName.Usage) private readonly queue: Queue,
    private readonly holds: HoldRepository,
    private readonly metrics: MetricsService,
    private readonly redis: RedisService,
  ) {
    // without a listener, every failed reconnect prints a stack; one line per 10 s is enough
    let last = 0;
    queue.on('error', (err) => {
      if (Date.now() - last < 10_000) return;
      last = Date.now();
      this.logger.warn(`Settlement queue: ${err.message}`);
    });
  }

  /**
   * Hands a finished request to settlement. `synchronous` applies it in PostgreSQL at once,
   * so the charge is known exactly (a key with a budget may be charged less than its cost when
   * the budget was lowered meanwhile); otherwise it is queued. Either store stands in for the
   * other when it fails.
   */
  async record(settlement: Settlement, options: { synchronous?: boolean } = {}): Promise<Recorded> {
    const queued = { ok: true, chargedMicros: null };
    const recorded = options.synchronous
      ? ((await this.settleNow(settlement)) ?? ((await this.enqueue(settlement)) ? queued : null))
      : (await this.enqueue(settlement))
        ? queued
        : await this.settleNow(settlement);
    if (recorded) {
      this.metrics.observeTokens(settlement.model, settlement.promptTokens, settlement.completionTokens);
      return recorded;
    }
    // both stores failed: the hold stays reserved and the sweeper releases it later
    this.metrics.settlements.inc({ path: 'lost' });
    return { ok: false, chargedMicros: null };
  }

  /**
   * Takes back a queued settlement no worker has started yet (the client left before its
   * answer could be written). true when it was removed: the request may be recorded anew.
   */
  async withdraw(requestId: string): Promise<boolean> {
    const groupId = this.groupOf.get(requestId);
    try {
      if (!groupId) return (await withTimeout(this.removeIfWaiting(requestId), ENQUEUE_TIMEOUT_MS)) !== null;
      return await this.oneAtATime(groupId, () => withTimeout(this.removeFromGroup(groupId, requestId), ENQUEUE_TIMEOUT_MS));
    } catch {
      return false;
    }
  }

  /**
   * Takes one request out of a group no worker has started: the group job is removed (which
   * fails once a worker holds it) and the others travel again as a new group, or are settled
   * in PostgreSQL at once when Redis cannot take them.
   */
  private async removeFromGroup(groupId: string, requestId: string): Promise<boolean> {
    const job = await this.removeIfWaiting(groupId);
    if (!job) return false;
    this.groupOf.delete(requestId);
    const rest = (job.data as SettlementGroup).settlements.filter((s) => s.requestId !== requestId);
    if (rest.length > 0) await this.sendOn(rest);
    // taken back whatever became of the others: the caller records this request anew
    return true;
  }

  /** The rest of a group one request was taken out of: queued again, else settled now. Never throws. */
  private async sendOn(rest: Settlement[]): Promise<void> {
    try {
      await this.addGroup(rest);
      return;
    } catch (err) {
      this.logger.warn(`Settlement queue unavailable (${(err as Error).message}): settling ${rest.length} requests now`);
    }
    try {
      await this.holds.settleMany(rest);
    } catch (err) {
      // their holds stay reserved: the sweeper releases them (never an overdraw; reconcile counts them)
      this.logger.error(`Could not settle ${rest.length} requests of a withdrawn group: ${(err as Error).message}`);
    }
  }

  private oneAtATime<T>(groupId: string, work: () => Promise<T>): Promise<T> {
    const previous = this.groupLocks.get(groupId) ?? Promise.resolve();
    const next = previous.then(work, work);
    const settled = next.catch(() => undefined);
    this.groupLocks.set(groupId, settled);
    void settled.then(() => {
      if (this.groupLocks.get(groupId) === settled) this.groupLocks.delete(groupId);
    });
    return next;
  }

  /**
   * Removes the job only while no worker has it: `Queue.remove` also removes (and reports) a
   * job already completed, whose charge is applied. A job a worker takes between the look and
   * the removal is locked, and its removal throws.
   */
  private async removeIfWaiting(jobId: string): Promise<Job | null> {
    const job = await this.queue.getJob(jobId);
    if (!job) return null;
    const state = await job.getState();
    if (state !== 'waiting' && state !== 'delayed' && state !== 'prioritized') return null;
    await job.remove();
    return job;
  }

  /**
   * Joins the group forming in this turn of the event loop (in this run of code, when the process
   * was idle); true once Redis has its job.
   */
  private enqueue(settlement: Settlement): Promise<boolean> {
    return new Promise((queued) => {
      const now = performance.now();
      const idle = now - this.lastJoined >= IDLE_MS;
      this.lastJoined = now;
      this.forming.push({ settlement, queued });
      if (this.forming.length >= MAX_GROUP) this.flush();
      else if (!this.flushScheduled) {
        this.flushScheduled = true;
        if (idle) queueMicrotask(() => this.flush());
        else setImmediate(() => this.flush());
      }
    });
  }

  private flush(): void {
    this.flushScheduled = false;
    const members = this.forming;
    this.forming = [];
    if (members.length === 0) return;
    const settlements = members.map((m) => m.settlement);
    withTimeout(this.addGroup(settlements), ENQUEUE_TIMEOUT_MS).then(
      () => {
        this.metrics.settlements.inc({ path: 'queue' }, members.length);
        for (const m of members) m.queued(true);
      },
      (err: Error) => {
        this.logger.warn(`Settlement queue unavailable (${err.message}) for ${members.length} requests`);
        for (const m of members) m.queued(false);
      },
    );
  }

  /**
   * One request: a `settle` job named by its request id. Several: the group job, and the group
   * named in Redis for each of them (the hold sweeper looks a request's job up by it), sent
   * together: the group is handed over once both are acknowledged. If either fails the caller
   * settles the group in PostgreSQL, and a job that did reach Redis charges nothing twice.
   */
  private async addGroup(settlements: Settlement[]): Promise<void> {
    if (settlements.length === 1) {
      const [settlement] = settlements;
      this.groupOf.delete(settlement.requestId);
      await this.queue.add(JobName.Settle, settlement, { jobId: settlement.requestId });
      return;
    }
    const groupId = `group-${randomUUID()}`;
    const names = this.redis.client.pipeline();
    for (const s of settlements) names.set(groupMemberKey(this.queue, s.requestId), groupId, 'PX', GROUP_MEMBER_TTL_MS);
    const group: SettlementGroup = { settlements };
    const [named] = await Promise.all([names.exec(), this.queue.add(JobName.SettleGroup, group, { jobId: groupId })]);
    for (const [err] of named ?? []) if (err) throw err;
    for (const s of settlements) this.groupOf.set(s.requestId, groupId);
  }

  private async settleNow(settlement: Settlement): Promise<Recorded | null> {
    try {
      const result = await this.holds.settle(settlement);
      this.metrics.settlements.inc({ path: 'sync' });
      return { ok: true, chargedMicros: result.chargedMicros };
    } catch (err) {
      this.logger.error(`Could not settle ${settlement.requestId}: ${(err as Error).message}`);
      return null;
    }
  }
}

function withTimeout<T>(promise: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}
