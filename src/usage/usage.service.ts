import { Injectable } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { DataSource } from 'typeorm';
import { decodeCursor, encodeCursor } from '../billing/billing.service';
import { UsageLogDto, UsageLogPageDto, UsageLogQueryDto } from './usage.dto';

@Injectable()
export class UsageService {
  constructor(@InjectDataSource() private readonly db: DataSource) {}

  /** Newest first, keyset-paginated on the log id. */
  async list(workspaceId: string, q: UsageLogQueryDto): Promise<UsageLogPageDto> {
    const limit = q.limit ?? 20;
    const before = q.cursor === undefined ? null : decodeCursor(q.cursor);
    const rows = await this.db.query(
      `SELECT * FROM usage_logs
        WHERE workspace_id = $1 AND ($2::bigint IS NULL OR id < $2)
          AND ($3::text IS NULL OR model = $3) AND ($4::uuid IS NULL OR key_id = $4)
        ORDER BY id DESC LIMIT $5`,
      [workspaceId, before, q.model ?? null, q.key_id ?? null, limit + 1],
    );
    const data: UsageLogDto[] = rows.slice(0, limit).map((r: Record<string, unknown>) => ({
      request_id: r.request_id,
      key_id: r.key_id,
      model: r.model,
      provider: r.provider,
      prompt_tokens: r.prompt_tokens,
      completion_tokens: r.completion_tokens,
      cost_micros: Number(r.cost_micros),
      status: r.status,
      error_code: r.error_code,
      latency_ms: r.latency_ms,
      stream: r.stream,
      usage_source: r.usage_source,
      created_at: (r.created_at as Date).toISOString(),
    }));
    return { data, next_cursor: rows.length > limit ? encodeCursor(String(rows[limit - 1].id)) : null };
  }
}
