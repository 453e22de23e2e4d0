import { Injectable } from '@nestjs/common';
import { decodeCursor, encodeCursor } from '../common/pagination';
import { UsageLogEntity } from './usage-log.entity';
import { UsageLogRepository } from './usage-log.repository';
import { UsageLogDto, UsageLogPageDto, UsageLogQueryDto } from './usage.dto';

@Injectable()
export class UsageService {
  constructor(private readonly logs: UsageLogRepository) {}

  /** Newest first, keyset-paginated on the log id. */
  async list(workspaceId: string, q: UsageLogQueryDto): Promise<UsageLogPageDto> {
    const limit = q.limit ?? 20;
    const before = q.cursor === undefined ? null : decodeCursor(q.cursor);
    const rows = await this.logs.listPage(workspaceId, { model: q.model, keyId: q.key_id }, before, limit + 1);
    const data = rows.slice(0, limit).map((r) => UsageService.toDto(r));
    return { data, next_cursor: rows.length > limit ? encodeCursor(String(rows[limit - 1].id)) : null };
  }

  static toDto(r: UsageLogEntity): UsageLogDto {
    return {
      request_id: r.requestId,
      key_id: r.keyId,
      model: r.model,
      provider: r.provider,
      prompt_tokens: r.promptTokens,
      completion_tokens: r.completionTokens,
      cost_micros: r.costMicros,
      status: r.status,
      error_code: r.errorCode,
      latency_ms: r.latencyMs,
      stream: r.stream,
      usage_source: r.usageSource,
      created_at: r.createdAt.toISOString(),
    };
  }
}
