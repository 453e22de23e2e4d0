import { Injectable } from '@nestjs/common';
import { InjectRepository } from '@nestjs/typeorm';
import { Repository } from 'typeorm';
import { UsageLogEntity } from './usage-log.entity';

export interface UsageLogFilter {
  model?: string;
  keyId?: string;
  status?: number;
  /** created_at at or after it */
  from?: Date;
  /** created_at before it */
  to?: Date;
}

/** Usage logs, read only here: billing's settlement SQL writes them with the charge. */
@Injectable()
export class UsageLogRepository {
  constructor(@InjectRepository(UsageLogEntity) private readonly logs: Repository<UsageLogEntity>) {}

  /** Newest first, keyset-paginated on the log id: up to `limit` logs older than `beforeId`. */
  listPage(workspaceId: string, filter: UsageLogFilter, beforeId: string | null, limit: number): Promise<UsageLogEntity[]> {
    const query = this.logs.createQueryBuilder('u').where('u.workspace_id = :workspaceId', { workspaceId });
    if (beforeId !== null) query.andWhere('u.id < :beforeId', { beforeId });
    if (filter.model !== undefined) query.andWhere('u.model = :model', { model: filter.model });
    if (filter.keyId !== undefined) query.andWhere('u.key_id = :keyId', { keyId: filter.keyId });
    if (filter.status !== undefined) query.andWhere('u.status = :status', { status: filter.status });
    if (filter.from !== undefined) query.andWhere('u.created_at >= :from', { from: filter.from });
    if (filter.to !== undefined) query.andWhere('u.created_at < :to', { to: filter.to });
    return query.orderBy('u.id', 'DESC').limit(limit).getMany();
  }
}
