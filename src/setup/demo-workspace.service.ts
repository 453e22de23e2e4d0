import { Injectable } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { DataSource } from 'typeorm';
import { KeysService } from '../keys/keys.service';

export const DEMO_REFERENCE = 'seed:demo-workspace';
export const DEMO_CREDIT_MICROS = 5_000_000;

/** The funded workspace a newcomer gets on the first development start. */
@Injectable()
export class DemoWorkspaceService {
  constructor(
    @InjectDataSource() private readonly db: DataSource,
    private readonly keys: KeysService,
  ) {}

  async demoWorkspaceId(): Promise<string | null> {
    const rows = await this.db.query('SELECT workspace_id FROM ledger_entries WHERE reference = $1', [DEMO_REFERENCE]);
    return rows[0]?.workspace_id ?? null;
  }

  /** Creates it once (the ledger reference is unique); returns its first key, or null when it existed. */
  async ensure(): Promise<{ workspaceId: string; key: string } | null> {
    if (await this.demoWorkspaceId()) return null;
    const workspaceId = await this.db
      .transaction(async (tx) => {
        const [ws] = await tx.query(`INSERT INTO workspaces (name, balance_micros) VALUES ('Demo workspace', $1) RETURNING id`, [
          DEMO_CREDIT_MICROS,
        ]);
        await tx.query(
          `INSERT INTO ledger_entries (workspace_id, kind, amount_micros, balance_after_micros, reference, reason)
           VALUES ($1, 'credit', $2, $2, $3, 'development demo credit')`,
          [ws.id, DEMO_CREDIT_MICROS, DEMO_REFERENCE],
        );
        return ws.id as string;
      })
      .catch((err: { code?: string }) => {
        if (err.code === '23505') return null; // another process created it meanwhile
        throw err;
      });
    if (!workspaceId) return null;
    const created = await this.keys.create(workspaceId, { name: 'demo key' });
    return { workspaceId, key: created.key };
  }
}
