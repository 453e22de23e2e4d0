import { Injectable } from '@nestjs/common';
import { InjectRepository } from '@nestjs/typeorm';
import { Repository } from 'typeorm';
import { NotFoundError } from '../common/errors/api-error';
import { WorkspaceEntity } from './workspace.entity';
import { WorkspaceCreateDto, WorkspaceDto } from './workspaces.dto';

@Injectable()
export class WorkspacesService {
  constructor(@InjectRepository(WorkspaceEntity) private readonly workspaces: Repository<WorkspaceEntity>) {}

  async create(dto: WorkspaceCreateDto): Promise<WorkspaceDto> {
    const saved = await this.workspaces.save(
      this.workspaces.create({ name: dto.name, rpmLimit: dto.rpm_limit ?? null, tpmLimit: dto.tpm_limit ?? null }),
    );
    return this.get(saved.id);
  }

  async get(id: string): Promise<WorkspaceDto> {
    const w = await this.workspaces.findOneBy({ id });
    if (!w) throw new NotFoundError(`Workspace '${id}' not found.`);
    return {
      id: w.id,
      name: w.name,
      balance_micros: w.balanceMicros,
      available_micros: w.balanceMicros - w.heldMicros,
      held_micros: w.heldMicros,
      rpm_limit: w.rpmLimit,
      tpm_limit: w.tpmLimit,
      created_at: w.createdAt.toISOString(),
    };
  }
}
