import { BeforeApplicationShutdown, Injectable, Logger, OnModuleDestroy, OnModuleInit } from '@nestjs/common';
import { randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import { performance } from 'node:perf_hooks';
import { AppConfig } from '../../config/app-config';
import { LeaseRepository, LeaseTrace, LeaseTraceGroup } from './lease.repository';

/** This process's view of one lease. */
interface Lease {
  id: string;
  workspaceId: string;
  /** The lease's amount less the holds this process already handed to settlement (the database's is larger until they apply). */
  amount: number;
  /** Holds of this process's requests in flight. */
  reserved: number;
  /** What the last renewal reported in use (`in_use_micros` in PostgreSQL). */
  reported: number;
  /** performance.now() after which no request is held against it: sent renewal + TTL - margin. */
  validUntil: number;
  /** false once given back, recalled, closed or lost: no new request is held against it. */
  open: boolean;
  /** When it stopped being open (performance.now()); null while open. */
  closedAt: number | null;
}

/** What one workspace's requests held lately, to size leases. */
interface Traffic {
  second: number;
  micros: number;
  previousMicros: number;
  maxHold: number;
  previousMaxHold: number;
}

/** A request's hold against a lease, until its settlement is handed over. */
export interface LeasedHold {
  readonly leaseId: string;
  readonly amountMicros: number;
  readonly lease: Lease;
  readonly trace: LeaseTrace;
  /** Handed to settlement: out of the lease here, and its trace no longer needed. */
  released: boolean;
  /** The trace row it was written in, once written. */
  group: TraceRow | null;
}

/** One row of lease_traces and how many of its requests are still to be handed to settlement. */
interface TraceRow {
  id: string | null;
  outstanding: number;
}

const TRACE_FLUSH_MS = 20;
/** A lease with nothing in flight any more is reported this soon (then at most every this often). */
const IDLE_REPORT_MS = 20;
/** A workspace whose lease was refused is not asked again for this long. */
const REFUSED_COOL_DOWN_MS = 1_000;
/** A returned lease is renewed while its last requests' settlements drain, at most this long. */
const DRAIN_RENEW_MS = 60_000;
/** How long a 403 waits for other processes to give their leases back. */
const RECALL_WAIT_MS = 1_500;

/**
 * Escrow leases (issue 12): instead of a PostgreSQL round trip per request, this process holds
 * a slice of a workspace's balance (a lease, counted in held_micros like a hold) and holds its
 * requests against it in memory. Leases are sized from the workspace's recent traffic, capped
 * by the database at available / (2 × processes holding leases), refilled in the background
 * before they run out, renewed every LEASE_RENEW_MS (which also reports what the requests in
 * flight use, and learns of recalls), and given back (the free part) on recall and on
 * shutdown. A request is held per request as before when leases are off, the key has a budget,
 * the workspace is near zero (a lease would be under a few of its largest recent holds), or
 * the hold is larger than the lease's free part and no refill covers it.
 *
 * Safety does not depend on timing: a lease is taken by the same conditional update as a hold,
 * a request is held against it only within TTL - margin of the renewal that was sent last
 * (monotonic clock), and the sweeper closes a lease only LEASE_TTL + HOLD_TTL after its last
 * renewal (the database's clock).
 */
@Injectable()
export class EscrowLeases implements OnModuleInit, OnModuleDestroy, BeforeApplicationShutdown {
  private readonly logger = new Logger(EscrowLeases.name);
  /** Names this process in `leases.owner`. */
  readonly owner = `${hostname()}:${process.pid}:${randomUUID().slice(0, 8)}`;
  /** The open lease of each workspace. */
  private readonly open = new Map<string, Lease>();
  /** Leases given back whose last settlements may still be queued: renewed until closed (or DRAIN_RENEW_MS). */
  private readonly draining = new Set<Lease>();
  private readonly refills = new Map<string, Promise<void>>();
  private readonly refusedUntil = new Map<string, number>();
  private readonly traffic = new Map<string, Traffic>();
  /** Holds whose trace is still to be written. */
  private untraced: LeasedHold[] = [];
  /** Trace rows whose requests were all handed to settlement, to delete. */
  private traced: string[] = [];
  private traceTimer: NodeJS.Timeout | null = null;
  private renewTimer: NodeJS.Timeout | null = null;
  private soonTimer: NodeJS.Timeout | null = null;
  private renewing = false;
  private lastWarning = 0;
  private stopped = false;

  constructor(
    private readonly repo: LeaseRepository,
    private readonly config: AppConfig,
  ) {}

  get enabled(): boolean {
    return this.config.leases.enabled && !this.stopped;
  }

  onModuleInit(): void {
    if (!this.config.leases.enabled || !this.config.runsHttp) return;
    this.renewTimer = setInterval(() => void this.renew(), this.config.leases.renewMs);
    this.renewTimer.unref();
  }

  /**
   * Holds `amount` for a request against this process's lease on the workspace, taking or
   * refilling the lease first if it falls short (one round trip, shared by the requests that
   * wait for it). null: hold this request per request.
   */
  async hold(workspaceId: string, amount: number, trace: LeaseTrace): Promise<LeasedHold | null> {
    if (!this.enabled) return null;
    this.observe(workspaceId, amount);
    let lease = this.usable(workspaceId, amount);
    if (!lease) {
      if ((this.refusedUntil.get(workspaceId) ?? 0) > performance.now()) return null;
      await this.refill(workspaceId);
      lease = this.usable(workspaceId, amount);
      if (!lease) return null;
    }
    lease.reserved += amount;
    const held: LeasedHold = { leaseId: lease.id, amountMicros: amount, lease, trace, released: false, group: null };
    this.untraced.push(held);
    this.scheduleTraces();
    // refill before it runs out: when what is free would cover under half a second of traffic
    if (lease.amount - lease.reserved < this.rate(workspaceId) / 2 && !this.refills.has(workspaceId)) void this.refill(workspaceId);
    return held;
  }

  /** The request's settlement is handed over: its hold leaves the lease here, and in PostgreSQL when it applies. */
  release(hold: LeasedHold): void {
    if (hold.released) return;
    hold.released = true;
    hold.lease.reserved -= hold.amountMicros;
    hold.lease.amount -= hold.amountMicros;
    const row = hold.group;
    if (row && --row.outstanding === 0 && row.id !== null) {
      this.traced.push(row.id);
      this.scheduleTraces();
    }
    this.reportIfIdle(hold.lease);
  }

  /**
   * Nothing in flight any more on a lease whose last renewal reported money in use: reports it
   * soon, so what the API shows as available is current. (Only then: one request at a time, a
   * report after each would be a PostgreSQL transaction every IDLE_REPORT_MS for nothing.)
   */
  private reportIfIdle(lease: Lease): void {
    if (lease.reserved !== 0 || lease.reported === 0 || this.soonTimer) return;
    this.soonTimer = setTimeout(() => {
      this.soonTimer = null;
      void this.renew();
    }, IDLE_REPORT_MS);
    this.soonTimer.unref();
  }

  /**
   * Before refusing a request for lack of balance: gives this process's lease back and asks the
   * other processes to give theirs (waiting up to 1.5 s for them). true when money may have
   * come back, so the hold is worth trying once more.
   */
  async reclaim(workspaceId: string): Promise<boolean> {
    if (!this.config.leases.enabled) return false;
    let freed = false;
    const own = this.open.get(workspaceId);
    if (own) freed = (await this.giveBack(own)) > 0;
    this.refusedUntil.set(workspaceId, performance.now() + REFUSED_COOL_DOWN_MS);
    try {
      if ((await this.repo.recallOthers(workspaceId, this.owner)) === 0) return freed;
      const deadline = performance.now() + RECALL_WAIT_MS;
      while (performance.now() < deadline) {
        await new Promise((resolve) => setTimeout(resolve, 50));
        if ((await this.repo.othersOpen(workspaceId, this.owner)) === 0) break;
      }
      return true;
    } catch (err) {
      this.warn(`Could not recall the leases of workspace ${workspaceId}: ${(err as Error).message}`);
      return freed;
    }
  }

  /** On shutdown: no new request is held against a lease, and every free part goes back. */
  async beforeApplicationShutdown(): Promise<void> {
    this.stopped = true;
    await this.flushTraces();
    await Promise.all([...this.open.values()].map((lease) => this.giveBack(lease)));
    // one last renewal reports the holds still in flight
    await this.renew();
  }

  onModuleDestroy(): void {
    if (this.renewTimer) clearInterval(this.renewTimer);
    if (this.traceTimer) clearTimeout(this.traceTimer);
    if (this.soonTimer) clearTimeout(this.soonTimer);
    this.soonTimer = null;
    this.renewTimer = null;
    this.traceTimer = null;
  }

  /** The open, valid lease of the workspace when its free part covers `amount`. */
  private usable(workspaceId: string, amount: number): Lease | null {
    const lease = this.open.get(workspaceId);
    if (!lease) return null;
    if (!lease.open || performance.now() >= lease.validUntil) return null;
    return lease.amount - lease.reserved >= amount ? lease : null;
  }

  /** Takes or tops up the workspace's lease: one at a time per workspace, the others wait for it. */
  private refill(workspaceId: string): Promise<void> {
    const running = this.refills.get(workspaceId);
    if (running) return running;
    const refill = this.takeLease(workspaceId).finally(() => this.refills.delete(workspaceId));
    this.refills.set(workspaceId, refill);
    return refill;
  }

  private async takeLease(workspaceId: string): Promise<void> {
    const traffic = this.traffic.get(workspaceId)!;
    const maxHold = Math.max(traffic.maxHold, traffic.previousMaxHold);
    // enough for two seconds of traffic and at least 64 of the largest recent holds; a lease that
    // would not cover 8 of them is not worth having (near zero: hold per request)
    const want = Math.max(this.rate(workspaceId) * 2, maxHold * 64);
    const min = maxHold * 8;
    const current = this.open.get(workspaceId);
    const leaseId = current?.open ? current.id : null;
    const sent = performance.now();
    try {
      const grant = await this.repo.take(leaseId, workspaceId, this.owner, want, min, this.config.leases.ttlMs);
      const validUntil = sent + this.config.leases.ttlMs - this.margin();
      if (current && leaseId !== null && grant.leaseId === current.id) {
        current.amount += grant.granted;
        current.validUntil = validUntil;
      } else if (current && leaseId !== null) {
        // recalled (or closed) meanwhile: its free part goes back now
        await this.giveBack(current);
      }
      if (grant.leaseId !== null && grant.leaseId !== leaseId) {
        this.open.set(workspaceId, {
          id: grant.leaseId,
          workspaceId,
          amount: grant.amountMicros,
          reserved: 0,
          reported: 0,
          validUntil,
          open: true,
          closedAt: null,
        });
      }
      if (grant.granted === 0) this.refusedUntil.set(workspaceId, performance.now() + REFUSED_COOL_DOWN_MS);
    } catch (err) {
      this.refusedUntil.set(workspaceId, performance.now() + REFUSED_COOL_DOWN_MS);
      this.warn(`Could not take a lease on workspace ${workspaceId}: ${(err as Error).message}`);
    }
  }

  /** Gives the lease's free part back; no request is held against it any more. What went back. */
  private async giveBack(lease: Lease): Promise<number> {
    this.retire(lease);
    try {
      const back = await this.repo.giveBack(lease.id, this.owner, Math.max(0, lease.amount - lease.reserved));
      lease.amount -= back;
      return back;
    } catch (err) {
      // still held in PostgreSQL: the sweeper closes it once this process stops renewing it
      this.warn(`Could not give back lease ${lease.id}: ${(err as Error).message}`);
      return 0;
    }
  }

  private retire(lease: Lease): void {
    if (!lease.open) return;
    lease.open = false;
    lease.closedAt = performance.now();
    if (this.open.get(lease.workspaceId) === lease) this.open.delete(lease.workspaceId);
    this.draining.add(lease);
  }

  /** The heartbeat: renews every lease this process has, reports their use, and obeys recalls. */
  private async renew(): Promise<void> {
    if (this.renewing) return;
    const now = performance.now();
    for (const lease of this.draining) {
      if (lease.reserved <= 0 && now - (lease.closedAt ?? now) > DRAIN_RENEW_MS) this.draining.delete(lease);
    }
    const leases = [...this.open.values(), ...this.draining];
    if (leases.length === 0) return;
    this.renewing = true;
    try {
      const reports = leases.map((l) => ({ leaseId: l.id, inUseMicros: Math.max(0, l.reserved) }));
      const statuses = await this.repo.renew(this.owner, reports, this.config.leases.ttlMs);
      const validUntil = now + this.config.leases.ttlMs - this.margin();
      const byId = new Map(statuses.map((s) => [s.leaseId, s]));
      leases.forEach((lease, i) => (lease.reported = reports[i].inUseMicros));
      for (const lease of leases) {
        const status = byId.get(lease.id);
        if (!status || status.state === 'closed') {
          this.retire(lease);
          this.draining.delete(lease);
        } else if (status.state === 'returned') {
          // given back already (an answer lost on the way): never give the same money back twice
          this.retire(lease);
        } else if (status.recall) {
          // still open in PostgreSQL: given back now, whether or not this process already stopped using it
          await this.giveBack(lease);
        } else if (lease.open) {
          lease.validUntil = validUntil;
        }
      }
      // requests that ended while this renewal was on its way: their use is reported soon
      for (const lease of leases) if (lease.open || this.draining.has(lease)) this.reportIfIdle(lease);
    } catch (err) {
      this.warn(`Could not renew ${leases.length} leases: ${(err as Error).message}`);
    } finally {
      this.renewing = false;
    }
  }

  private scheduleTraces(): void {
    if (this.traceTimer) return;
    this.traceTimer = setTimeout(() => void this.flushTraces(), TRACE_FLUSH_MS);
    this.traceTimer.unref();
  }

  /**
   * Writes the traces of the requests held since the last flush and still in flight (one row
   * per lease; a request already handed to settlement needs none), and deletes the rows whose
   * requests have all been handed over since.
   */
  private async flushTraces(): Promise<void> {
    if (this.traceTimer) clearTimeout(this.traceTimer);
    this.traceTimer = null;
    const holds = this.untraced.filter((h) => !h.released);
    const done = this.traced;
    this.untraced = [];
    this.traced = [];
    const byLease = new Map<string, { group: LeaseTraceGroup; holds: LeasedHold[] }>();
    for (const h of holds) {
      let entry = byLease.get(h.leaseId);
      if (!entry) {
        entry = { group: { leaseId: h.leaseId, workspaceId: h.lease.workspaceId, requests: [] }, holds: [] };
        byLease.set(h.leaseId, entry);
      }
      entry.group.requests.push(h.trace);
      entry.holds.push(h);
    }
    const entries = [...byLease.values()];
    if (entries.length === 0 && done.length === 0) return;
    try {
      // the new rows and the deletion of the finished ones: one statement, one transaction
      const ids = await this.repo.trace(
        entries.map((e) => e.group),
        done,
      );
      entries.forEach((e, i) => {
        const row: TraceRow = { id: ids[i], outstanding: 0 };
        for (const h of e.holds) {
          if (h.released) continue;
          h.group = row;
          row.outstanding++;
        }
        if (row.outstanding === 0) this.traced.push(ids[i]);
      });
      if (this.traced.length > 0) this.scheduleTraces();
    } catch (err) {
      this.warn(`Could not write the traces of ${holds.length} leased requests: ${(err as Error).message}`);
    }
  }

  private observe(workspaceId: string, amount: number): void {
    const second = Math.floor(performance.now() / 1000);
    let t = this.traffic.get(workspaceId);
    if (!t) {
      t = { second, micros: 0, previousMicros: 0, maxHold: 0, previousMaxHold: 0 };
      this.traffic.set(workspaceId, t);
    }
    if (t.second !== second) {
      const adjacent = t.second === second - 1;
      t.previousMicros = adjacent ? t.micros : 0;
      t.previousMaxHold = adjacent ? t.maxHold : 0;
      t.micros = 0;
      t.maxHold = 0;
      t.second = second;
    }
    t.micros += amount;
    if (amount > t.maxHold) t.maxHold = amount;
  }

  /** Micro-USD per second held lately on the workspace. */
  private rate(workspaceId: string): number {
    const t = this.traffic.get(workspaceId);
    return t ? Math.max(t.micros, t.previousMicros) : 0;
  }

  private margin(): number {
    return Math.max(1_000, this.config.leases.ttlMs / 5);
  }

  private warn(message: string): void {
    const now = Date.now();
    if (now - this.lastWarning < 10_000) return;
    this.lastWarning = now;
    this.logger.warn(message);
  }
}
