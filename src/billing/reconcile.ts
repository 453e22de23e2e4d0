import type { DataSource } from 'typeorm';
import { Drift, ReconcileRepository } from './reconcile.repository';

export type { Drift } from './reconcile.repository';

/**
 * Recomputes every cached balance and key spend from the ledger and the open holds, and
 * compares charged usage logs with charge entries. An empty list means no drift.
 */
export function reconcile(db: DataSource): Promise<Drift[]> {
  return new ReconcileRepository(db).drifts();
}

/** Requests released at no charge with an unknown outcome (see ReconcileRepository.unknownOutcomes). */
export function unknownOutcomes(db: DataSource): Promise<{ requests: number; workspaces: number }> {
  return new ReconcileRepository(db).unknownOutcomes();
}
