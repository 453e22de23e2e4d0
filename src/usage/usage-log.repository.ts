import { Injectable } from '@nestjs/common';
import { InjectRepository } from '@nestjs/typeorm';
import { Repository } from 'typeorm';
import { bigintMicros } from '../common/money';
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

/** Where a page ended: the last log's created_at (microseconds since the epoch, exact) and id. */
export interface UsageLogPosition {
  createdAtMicros: string;
  id: string;
}

export interface UsageLogRow {
  log: UsageLogEntity;
  position: UsageLogPosition;
}

/**
 * One page of a workspace's logs, newest first: `ORDER BY created_at DESC, id DESC` after the
 * position `before`, as the per-partition indexes (workspace_id | key_id, created_at DESC, id DESC)
 * hold them. The position's created_at also bounds created_at alone, so the partitions of later
 * months are pruned; `from`/`to` prune the others. Exported for the test that reads its plan.
 */
export function usageLogPageSql(
  workspaceId: string,
  filter: UsageLogFilter,
  before: UsageLogPosition | null,
  limit: number,
): { text: string; values: unknown[] } {
  const values: unknown[] = [workspaceId];
  const where = [filter.keyId !== undefined ? `key_id = $${values.push(filter.keyId)} AND workspace_id = $1` : 'workspace_id = $1'];
  if (before !== null) {
    const at = `(timestamptz 'epoch' + $${values.push(before.createdAtMicros)}::bigint * interval '1 microsecond')`;
    where.push(`created_at <= ${at}`, `(created_at, id) < (${at}, $${values.push(before.id)}::bigint)`);
  }
  if (filter.model !== undefined) where.push(`model = $${values.push(filter.model)}`);
  if (filter.status !== undefined) where.push(`status = $${values.push(filter.status)}`);
  if (filter.from !== undefined) where.push(`created_at >= $${values.push(filter.from)}`);
  if (filter.to !== undefined) where.push(`created_at < $${values.push(filter.to)}`);
  const text = `SELECT *, ((extract(epoch FROM created_at) * 1000000)::bigint)::text AS position_micros
    FROM usage_logs WHERE ${where.join(' AND ')}
    ORDER BY created_at DESC, id DESC LIMIT $${values.push(limit)}`;
  return { text, values };
}

/** Usage logs, read only here: billing's settlement SQL writes them with the charge. */
@Injectable()
export class UsageLogRepository {
  constructor(@InjectRepository(UsageLogEntity) private readonly logs: Repository<UsageLogEntity>) {}

  /** Newest first (created_at, then id), keyset-paginated: up to `limit` logs after `before`. */
  async listPage(workspaceId: string, filter: UsageLogFilter, before: UsageLogPosition | null, limit: number): Promise<UsageLogRow[]> {
    const { text, values } = usageLogPageSql(workspaceId, filter, before, limit);
    const rows: Array<Record<string, unknown> & { id: string; position_micros: string }> = await this.logs.query(text, values);
    return rows.map((r) => ({
      log: this.logs.create({
        id: r.id,
        requestId: r.request_id as string,
        workspaceId: r.workspace_id as string,
        keyId: r.key_id as string,
        model: r.model as string,
        provider: r.provider as string | null,
        attempts: r.attempts as number | null,
        promptTokens: r.prompt_tokens as number,
        completionTokens: r.completion_tokens as number,
        costMicros: bigintMicros.from(r.cost_micros as string) as number,
        status: r.status as number | null,
        errorCode: r.error_code as string | null,
        latencyMs: r.latency_ms as number,
        stream: r.stream as boolean,
        usageSource: r.usage_source as UsageLogEntity['usageSource'],
        createdAt: r.created_at as Date,
      }),
      position: { createdAtMicros: r.position_micros, id: r.id },
    }));
  }
}
