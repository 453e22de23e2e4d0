import type { EntityManager } from 'typeorm';

/**
 * Rows of any statement run inside a transaction. TypeORM's `manager.query` answers
 * UPDATE/DELETE ... RETURNING with `[rows, count]` but INSERT/SELECT with `rows`; the
 * structured result is the same for all.
 */
export async function rowsOf<T>(tx: EntityManager, text: string, params: unknown[]): Promise<T[]> {
  if (!tx.queryRunner) throw new Error('rowsOf needs a transactional entity manager');
  const result = await tx.queryRunner.query(text, params, true);
  return result.records as T[];
}
