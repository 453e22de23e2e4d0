import { Injectable } from '@nestjs/common';
import { InjectRepository } from '@nestjs/typeorm';
import { LessThan, Repository } from 'typeorm';
import { UsageLogEntity } from './usage-log.entity';

export interface UsageLogFilter {
  model?: string;
  keyId?: string;
}

/** Usage logs, read only here: billing's settlement SQL writes them with the charge. */
@Injectable()
export class UsageLogRepository {
  constructor(@InjectRepository(UsageLogEntity) private readonly logs: Repository<UsageLogEntity>) {}

  /** Newest first, keyset-paginated on the log id: up to `limit` logs older than `beforeId`. */
  listPage(workspaceId: string, filter: UsageLogFilter, beforeId: string | null, limit: number): Promise<UsageLogEntity[]> {
    return this.logs.find({
      where: {
        workspaceId,
        ...(beforeId === null ? {} : { id: LessThan(beforeId) }),
        ...(filter.model === undefined ? {} : { model: filter.model }),
        ...(filter.keyId === undefined ? {} : { keyId: filter.keyId }),
      },
      order: { id: 'DESC' },
      take: limit,
    });
  }
}
