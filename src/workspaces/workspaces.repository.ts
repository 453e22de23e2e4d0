import { Injectable } from '@nestjs/common';
import { InjectRepository } from '@nestjs/typeorm';
import { Repository } from 'typeorm';
import { WorkspaceEntity } from './workspace.entity';

/** Names and limits of workspaces. Balances and holds move only through billing's SQL. */
@Injectable()
export class WorkspacesRepository {
  constructor(@InjectRepository(WorkspaceEntity) private readonly workspaces: Repository<WorkspaceEntity>) {}

  async create(values: { name: string; rpmLimit: number | null; tpmLimit: number | null }): Promise<string> {
    const saved = await this.workspaces.save(this.workspaces.create(values));
    return saved.id;
  }

  /** Writes only the given columns; false when no workspace has this id. */
  async update(id: string, changes: Partial<Pick<WorkspaceEntity, 'name' | 'rpmLimit' | 'tpmLimit'>>): Promise<boolean> {
    const result = await this.workspaces.update({ id }, changes);
    return (result.affected ?? 0) > 0;
  }

  /**
   * The workspace, its `heldMicros` counting of escrow leases only what their requests in
   * flight use (as their processes last reported): money leased but unused is available.
   */
  async findById(id: string): Promise<WorkspaceEntity | null> {
    const w = await this.workspaces.findOneBy({ id });
    if (!w) return null;
    const [row]: Array<{ unused: string }> = await this.workspaces.query(
      `SELECT COALESCE(sum(amount_micros - in_use_micros), 0) AS unused FROM leases WHERE workspace_id = $1 AND state = 'open'`,
      [id],
    );
    w.heldMicros -= Number(row.unused);
    return w;
  }

  exists(id: string): Promise<boolean> {
    return this.workspaces.existsBy({ id });
  }

  /** Removes a workspace that has no ledger entries, keys or usage yet (one created in vain). */
  async delete(id: string): Promise<void> {
    await this.workspaces.delete({ id });
  }
}
