import { Injectable } from '@nestjs/common';
import { InvalidRequestError } from '../common/errors/api-error';
import { UsageDailyRepository } from './usage-daily.repository';
import { UsageLogEntity } from './usage-log.entity';
import { UsageLogPosition, UsageLogRepository } from './usage-log.repository';
import { UsageGroupDto, UsageLogDto, UsageLogPageDto, UsageLogQueryDto, UsageSummaryDto, UsageTotalsQueryDto } from './usage.dto';

const DAY_MS = 86_400_000;

@Injectable()
export class UsageService {
  constructor(
    private readonly logs: UsageLogRepository,
    private readonly daily: UsageDailyRepository,
  ) {}

  /** Newest first (by created_at, then log id), keyset-paginated; `from` inclusive, `to` exclusive. */
  async list(workspaceId: string, q: UsageLogQueryDto): Promise<UsageLogPageDto> {
    const limit = q.limit ?? 20;
    const before = q.cursor === undefined ? null : UsageService.decodeCursor(q.cursor);
    const { from, to } = UsageService.range(q.from, q.to);
    const filter = { model: q.model, keyId: q.key_id, status: q.status, from, to };
    const rows = await this.logs.listPage(workspaceId, filter, before, limit + 1);
    const data = rows.slice(0, limit).map((r) => UsageService.toDto(r.log));
    return { data, next_cursor: rows.length > limit ? UsageService.encodeCursor(rows[limit - 1].position) : null };
  }

  /** An opaque cursor for the page after the log at `p`: its exact created_at (microseconds) and id. */
  private static encodeCursor(p: UsageLogPosition): string {
    return Buffer.from(`at:${p.createdAtMicros}:id:${p.id}`).toString('base64url');
  }

  /** The position a cursor of encodeCursor carries; 400 invalid_request_error for anything else. */
  private static decodeCursor(cursor: string): UsageLogPosition {
    const decoded = Buffer.from(cursor, 'base64url').toString('utf8');
    // 17 digits of microseconds reach past the year 5000; 18 digits always fit a bigint
    const match = /^at:(-?\d{1,17}):id:(\d{1,18})$/.exec(decoded);
    if (!match) throw new InvalidRequestError('cursor is not valid: pass the next_cursor of a previous page.', 'cursor');
    return { createdAtMicros: match[1], id: match[2] };
  }

  /**
   * Requests, tokens and cost per day, model or key, from the daily aggregates. `from`/`to`
   * select whole UTC days: every day overlapping [from, to).
   */
  async summary(workspaceId: string, q: UsageTotalsQueryDto): Promise<UsageSummaryDto> {
    const { from, to } = UsageService.range(q.from, q.to);
    const fromDay = from ? UsageService.day(from.getTime()) : null;
    // the day holding the last instant before `to` is the last one included
    const toDay = to ? UsageService.day(Math.ceil(to.getTime() / DAY_MS) * DAY_MS) : null;
    const groups = await this.daily.sums(workspaceId, q.group_by, fromDay, toDay);
    const field = q.group_by === 'key' ? 'key_id' : q.group_by;
    const totals = { requests: 0, prompt_tokens: 0, completion_tokens: 0, cost_micros: 0 };
    const data = groups.map((g): UsageGroupDto => {
      totals.requests += g.requests;
      totals.prompt_tokens += g.promptTokens;
      totals.completion_tokens += g.completionTokens;
      totals.cost_micros += g.costMicros;
      return {
        [field]: g.group,
        requests: g.requests,
        prompt_tokens: g.promptTokens,
        completion_tokens: g.completionTokens,
        cost_micros: g.costMicros,
      };
    });
    return { group_by: q.group_by, from_day: fromDay, to_day: toDay, data, totals };
  }

  private static range(from: string | undefined, to: string | undefined): { from?: Date; to?: Date } {
    const range = { from: UsageService.instant(from, 'from'), to: UsageService.instant(to, 'to') };
    if (range.from && range.to && range.to.getTime() <= range.from.getTime()) {
      throw new InvalidRequestError('Invalid request: to must be after from.', 'to');
    }
    return range;
  }

  private static instant(value: string | undefined, param: string): Date | undefined {
    if (value === undefined) return undefined;
    // a date-time without an offset is UTC, as a date alone is
    const date = new Date(/T[\d:.]+$/.test(value) ? `${value}Z` : value);
    if (Number.isNaN(date.getTime())) throw new InvalidRequestError(`Invalid request: ${param} must be an ISO 8601 date-time.`, param);
    return date;
  }

  private static day(ms: number): string {
    return new Date(ms).toISOString().slice(0, 10);
  }

  static toDto(r: UsageLogEntity): UsageLogDto {
    return {
      request_id: r.requestId,
      key_id: r.keyId,
      model: r.model,
      provider: r.provider,
      attempts: r.attempts,
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
