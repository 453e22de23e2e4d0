import type { Queue } from 'bullmq';
import type { Settlement } from './settlement.types';

/** The payload of a `settle-group` job: the settlements of requests that finished together. */
export interface SettlementGroup {
  settlements: Settlement[];
}

/**
 * How long Redis remembers which group job carries a request (the hold sweeper asks while the
 * request's hold exists; the worker deletes the entries once the group is applied).
 */
export const GROUP_MEMBER_TTL_MS = 24 * 3_600_000;

/** The Redis key naming the group job of a request, inside the queue's own namespace. */
export function groupMemberKey(queue: Queue, requestId: string): string {
  return queue.toKey(`group-of:${requestId}`);
}
