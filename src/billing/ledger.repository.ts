import { Injectable } from '@nestjs/common';
import { InjectRepository } from '@nestjs/typeorm';
import { EntityManager, LessThan, Repository } from 'typeorm';
import { MAX_BALANCE_MICROS, safeMicros } from '../common/money';
import { rowsOf } from '../database/sql';
import { LedgerEntryEntity, LedgerKind } from './ledger-entry.entity';

export interface LedgerCredit {
  workspaceId: string;
  kind: 'credit' | 'correction';
  /** Signed micro-USD: positive credits, negative corrects. */
  amountMicros: number;
  /** Unique across the ledger: a second credit with it changes nothing (`duplicate_reference`). */
  reference: string;
  reason: string | null;
  /** SHA-256 of the request that asked for it, to tell an idempotent replay from a conflict. */
  requestHash: string | null;
}

/** A Stripe money movement: a top-up, a refund or a dispute (or a won dispute credited back). */
export interface LedgerPosting {
  workspaceId: string;
  kind: 'topup' | 'refund' | 'dispute';
  /** Signed micro-USD, at most 10^12 either way. */
  amountMicros: number;
  /** Unique across the ledger (`stripe:cs:<session>`, `stripe:refund:<refund>`, `stripe:dispute:<dispute>`). */
  reference: string;
  reason: string | null;
}

/** Moves money inside a transaction opened by `LedgerRepository.transaction`. */
export interface LedgerTx {
  /**
   * Moves the balance and appends the entry. A debit may take the balance below zero (holds
   * in flight are untouched), never outside ±MAX_BALANCE_MICROS. `duplicate_reference` when an
   * entry with the reference exists: the caller serialises its references (a row lock), and
   * the unique reference stays the backstop (a race it missed aborts the transaction).
   */
  post(p: LedgerPosting): Promise<LedgerCreditResult>;
  /** The signed amount of the entry with this reference, or null. */
  amountOf(reference: string): Promise<number | null>;
}

export type LedgerCreditResult =
  | { outcome: 'applied'; entryId: string }
  | { outcome: 'workspace_not_found' }
  /** The balance would leave ±MAX_BALANCE_MICROS (or the available balance its lower bound). */
  | { outcome: 'out_of_range'; balanceMicros: number }
  | { outcome: 'duplicate_reference' };

/** The append-only ledger: every balance change is one entry, written in the balance's transaction. */
@Injectable()
export class LedgerRepository {
  constructor(@InjectRepository(LedgerEntryEntity) private readonly entries: Repository<LedgerEntryEntity>) {}

  /**
   * Moves the workspace balance and appends its ledger entry in one transaction. The bound is
   * checked by the statement that moves the balance, under its row lock: concurrent credits
   * cannot jointly leave the range (CONTRACT §2).
   */
  async credit(c: LedgerCredit): Promise<LedgerCreditResult> {
    try {
      return await this.entries.manager.transaction((tx) => LedgerRepository.move(tx, c));
    } catch (err) {
      // the unique reference: an entry with it exists (a replay, or a race another request won)
      if ((err as { code?: string }).code === '23505') return { outcome: 'duplicate_reference' };
      throw err;
    }
  }

  /**
   * Runs `work` in one transaction, with a LedgerTx that moves balances inside it: the caller's
   * own rows (a Stripe checkout session) change in the same transaction as the ledger entry.
   */
  transaction<T>(work: (tx: EntityManager, ledger: LedgerTx) => Promise<T>): Promise<T> {
    return this.entries.manager.transaction((tx) =>
      work(tx, {
        post: async (p) => {
          if ((await LedgerRepository.amountIn(tx, p.reference)) !== null) return { outcome: 'duplicate_reference' };
          return LedgerRepository.move(tx, { ...p, requestHash: null });
        },
        amountOf: (reference) => LedgerRepository.amountIn(tx, reference),
      }),
    );
  }

  private static async amountIn(tx: EntityManager, reference: string): Promise<number | null> {
    const [row] = await rowsOf<{ amount_micros: string }>(tx, 'SELECT amount_micros FROM ledger_entries WHERE reference = $1', [reference]);
    return row ? safeMicros(row.amount_micros) : null;
  }

  private static async move(tx: EntityManager, c: Omit<LedgerCredit, 'kind'> & { kind: LedgerKind }): Promise<LedgerCreditResult> {
    const moved = await rowsOf<{ balance_micros: string }>(
      tx,
      `UPDATE workspaces SET balance_micros = balance_micros + $2, updated_at = now()
        WHERE id = $1 AND balance_micros + $2 BETWEEN -$3::bigint AND $3::bigint AND balance_micros + $2 - held_micros >= -$3::bigint
        RETURNING balance_micros`,
      [c.workspaceId, c.amountMicros, MAX_BALANCE_MICROS],
    );
    if (moved.length === 0) {
      const [found] = await rowsOf<{ balance_micros: string }>(tx, 'SELECT balance_micros FROM workspaces WHERE id = $1', [c.workspaceId]);
      return found ? { outcome: 'out_of_range', balanceMicros: safeMicros(found.balance_micros) } : { outcome: 'workspace_not_found' };
    }
    if (c.amountMicros < 0) {
      // a debit: the processes holding leases on this workspace give their free parts back (they
      // see it at their next renewal, within LEASE_RENEW_MS) and take new ones sized by what is
      // left; until then a leased charge never takes money that backs other holds (nexo_settle_leased)
      await tx.query(
        `UPDATE leases SET recall = true
          WHERE id IN (SELECT id FROM leases WHERE workspace_id = $1 AND state = 'open' AND NOT recall ORDER BY id FOR UPDATE)`,
        [c.workspaceId],
      );
    }
    const [entry] = await rowsOf<{ id: string }>(
      tx,
      `INSERT INTO ledger_entries (workspace_id, kind, amount_micros, balance_after_micros, reference, reason, request_hash)
       VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id`,
      [c.workspaceId, c.kind, c.amountMicros, safeMicros(moved[0].balance_micros), c.reference, c.reason, c.requestHash],
    );
    return { outcome: 'applied', entryId: String(entry.id) };
  }

  findById(id: string): Promise<LedgerEntryEntity | null> {
    return this.entries.findOneBy({ id });
  }

  /** The entry with this reference, with the hash of the request that created it. */
  findByReference(reference: string): Promise<LedgerEntryEntity | null> {
    return this.entries.createQueryBuilder('l').addSelect('l.requestHash').where('l.reference = :reference', { reference }).getOne();
  }

  /** Newest first, keyset-paginated on the entry id: up to `limit` entries older than `beforeId`. */
  listPage(workspaceId: string, beforeId: string | null, limit: number): Promise<LedgerEntryEntity[]> {
    return this.entries.find({
      where: { workspaceId, ...(beforeId === null ? {} : { id: LessThan(beforeId) }) },
      order: { id: 'DESC' },
      take: limit,
    });
  }
}
