import { Injectable } from '@nestjs/common';
import { NotFoundError } from '../common/errors/api-error';
import { safeMicros } from '../common/money';
import { RedisService } from '../redis/redis.service';
import { WorkspaceEntity } from './workspace.entity';
import { WorkspaceCreateDto, WorkspaceDto, WorkspaceUpdateDto } from './workspaces.dto';
import { WorkspacesRepository } from './workspaces.repository';

@Injectable()
export class WorkspacesService {
  constructor(
    private readonly workspaces: WorkspacesRepository,
    private readonly redis: RedisService,
  ) {}

  async create(dto: WorkspaceCreateDto): Promise<WorkspaceDto> {
    const id = await this.workspaces.create({ name: dto.name, rpmLimit: dto.rpm_limit ?? null, tpmLimit: dto.tpm_limit ?? null });
    return this.get(id);
  }

  /** Name and limits only: balances change through the ledger, never here. */
  async update(id: string, dto: WorkspaceUpdateDto): Promise<WorkspaceDto> {
    const changes: Partial<WorkspaceEntity> = {};
    if (dto.name !== undefined) changes.name = dto.name;
    if (dto.rpm_limit !== undefined) changes.rpmLimit = dto.rpm_limit;
    if (dto.tpm_limit !== undefined) changes.tpmLimit = dto.tpm_limit;
    if (Object.keys(changes).length > 0) {
      if (!(await this.workspaces.update(id, changes))) throw new NotFoundError(`Workspace '${id}' not found.`);
      // keys cache their workspace's limits in every gateway process
      await this.redis.publishInvalidation(`workspace:${id}`);
    }
    return this.get(id);
  }

  async get(id: string): Promise<WorkspaceDto> {
    const w = await this.workspaces.findById(id);
    if (!w) throw new NotFoundError(`Workspace '${id}' not found.`);
    return {
      id: w.id,
      name: w.name,
      balance_micros: w.balanceMicros,
      available_micros: safeMicros(BigInt(w.balanceMicros) - BigInt(w.heldMicros)),
      held_micros: w.heldMicros,
      rpm_limit: w.rpmLimit,
      tpm_limit: w.tpmLimit,
      created_at: w.createdAt.toISOString(),
    };
  }

  exists(id: string): Promise<boolean> {
    return this.workspaces.exists(id);
  }

  /** Takes back a workspace created in vain (nothing refers to it yet). */
  discard(id: string): Promise<void> {
    return this.workspaces.delete(id);
  }
}
