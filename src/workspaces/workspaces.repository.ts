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

  findById(id: string): Promise<WorkspaceEntity | null> {
    return this.workspaces.findOneBy({ id });
  }

  exists(id: string): Promise<boolean> {
    return this.workspaces.existsBy({ id });
  }

  /** Removes a workspace that has no ledger entries, keys or usage yet (one created in vain). */
  async delete(id: string): Promise<void> {
    await this.workspaces.delete({ id });
  }
}
