import { Injectable } from '@nestjs/common';
import { InjectRepository } from '@nestjs/typeorm';
import { Repository } from 'typeorm';
import { safeMicros } from '../common/money';
import { UsageDailyEntity } from './usage-daily.entity';

export type UsageGroupBy = 'day' | 'model' | 'key';

export interface UsageSums {
  requests: number;
  promptTokens: number;
  completionTokens: number;
  costMicros: number;
}

export interface UsageGroup extends UsageSums {
  /** The day (`YYYY-MM-DD`), model id or key id of the group. */
  group: string;
}

const GROUP_COLUMN: Record<UsageGroupBy, string> = { day: `to_char(d.day, 'YYYY-MM-DD')`, model: 'd.model', key: 'd.key_id::text' };

/** Reads of the daily aggregates (billing's nexo_settle writes them with each usage log). */
@Injectable()
export class UsageDailyRepository {
  constructor(@InjectRepository(UsageDailyEntity) private readonly daily: Repository<UsageDailyEntity>) {}

  /** Sums per group over the days in [fromDay, toDay) (`YYYY-MM-DD`, either open), ordered by group. */
  async sums(workspaceId: string, groupBy: UsageGroupBy, fromDay: string | null, toDay: string | null): Promise<UsageGroup[]> {
    const group = GROUP_COLUMN[groupBy];
    const rows: Array<{ grp: string; requests: string; prompt_tokens: string; completion_tokens: string; cost_micros: string }> =
      await this.daily.query(
        `SELECT ${group} AS grp, SUM(d.requests) AS requests, SUM(d.prompt_tokens) AS prompt_tokens,
                SUM(d.completion_tokens) AS completion_tokens, SUM(d.cost_micros) AS cost_micros
           FROM usage_daily d
          WHERE d.workspace_id = $1 AND ($2::date IS NULL OR d.day >= $2::date) AND ($3::date IS NULL OR d.day < $3::date)
          GROUP BY 1 ORDER BY 1`,
        [workspaceId, fromDay, toDay],
      );
    return rows.map((r) => ({
      group: r.grp,
      requests: safeMicros(r.requests),
      promptTokens: safeMicros(r.prompt_tokens),
      completionTokens: safeMicros(r.completion_tokens),
      costMicros: safeMicros(r.cost_micros),
    }));
  }
}
