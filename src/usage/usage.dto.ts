import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { Type } from 'class-transformer';
import { IsIn, IsInt, IsISO8601, IsOptional, IsString, IsUUID, Length, Max, Min } from 'class-validator';
import { PageQueryDto } from '../common/pagination.dto';

export class UsageLogQueryDto extends PageQueryDto {
  @IsOptional()
  @IsString()
  @Length(1, 200)
  model?: string;

  @IsOptional()
  @IsUUID()
  key_id?: string;

  /** Only logs answered with this HTTP status */
  @ApiPropertyOptional({ type: Number, minimum: 100, maximum: 599 })
  @IsOptional()
  @Type(() => Number)
  @IsInt()
  @Min(100)
  @Max(599)
  status?: number;

  /** Only logs of requests started at or after this instant (ISO 8601) */
  @ApiPropertyOptional({ format: 'date-time' })
  @IsOptional()
  @IsISO8601({ strict: true })
  from?: string;

  /** Only logs of requests started before this instant (ISO 8601; exclusive) */
  @ApiPropertyOptional({ format: 'date-time' })
  @IsOptional()
  @IsISO8601({ strict: true })
  to?: string;
}

export class UsageLogDto {
  /** Equal to the response x-request-id */
  request_id: string;
  key_id: string;
  model: string;
  /** The provider that answered (after any fallback), else the last one tried */
  provider: string | null;
  /** Times the request was sent upstream, retries and fallbacks included; null when unknown */
  attempts: number | null;
  prompt_tokens: number;
  completion_tokens: number;
  cost_micros: number;
  /** HTTP status answered; null when unknown (error_code outcome_unknown) */
  status: number | null;
  error_code: string | null;
  latency_ms: number;
  stream: boolean;
  /** Where the token counts came from */
  @ApiProperty({ enum: ['provider', 'tokenizer', 'hold', 'none'] })
  usage_source: string;
  created_at: string;
}

export class UsageLogPageDto {
  data: UsageLogDto[];
  next_cursor: string | null;
}

export const USAGE_GROUP_BY = ['day', 'model', 'key'] as const;

/**
 * `from` and `to` select whole UTC days: every day that overlaps [from, to), i.e. from the day
 * holding `from` up to the day holding `to` (excluded when `to` is exactly its midnight).
 */
export class UsageTotalsQueryDto {
  @ApiProperty({ enum: USAGE_GROUP_BY })
  @IsIn(USAGE_GROUP_BY)
  group_by: (typeof USAGE_GROUP_BY)[number];

  /** First day: the UTC day of this date or date-time (ISO 8601) */
  @ApiPropertyOptional({ example: '2026-01-01' })
  @IsOptional()
  @IsISO8601({ strict: true })
  from?: string;

  /** End, exclusive: days up to this instant (ISO 8601); a date or a UTC midnight excludes its own day */
  @ApiPropertyOptional({ example: '2026-02-01' })
  @IsOptional()
  @IsISO8601({ strict: true })
  to?: string;
}

export class UsageTotalsDto {
  requests: number;
  prompt_tokens: number;
  completion_tokens: number;
  cost_micros: number;
}

/** One group: exactly one of day, model and key_id is set, as group_by says. */
export class UsageGroupDto extends UsageTotalsDto {
  /** `YYYY-MM-DD` (UTC), with group_by=day */
  day?: string;
  /** with group_by=model */
  model?: string;
  /** with group_by=key */
  key_id?: string;
}

export class UsageSummaryDto {
  @ApiProperty({ enum: USAGE_GROUP_BY }) group_by: string;
  /** First day included (`YYYY-MM-DD`), null = from the first usage */
  from_day: string | null;
  /** First day no longer included (`YYYY-MM-DD`), null = up to now */
  to_day: string | null;
  data: UsageGroupDto[];
  /** The sums of all groups: equal to the sums of the usage logs of those days */
  totals: UsageTotalsDto;
}
