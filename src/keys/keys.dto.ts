import { ApiProperty, ApiPropertyOptional, PartialType } from '@nestjs/swagger';
import { ArrayMaxSize, IsArray, IsBoolean, IsIn, IsISO8601, IsOptional, IsString, Length, ValidateIf } from 'class-validator';
import { MAX_RPM, MAX_TPM, OptionalNullableInt } from '../common/validation-decorators';
import { BUDGET_PERIODS } from './api-key.entity';
import type { BudgetPeriod } from './api-key.entity';

export class ApiKeyCreateDto {
  @ApiProperty({ example: 'production backend' })
  @IsString()
  @Length(1, 200)
  name: string;

  /** Model scope: sellable model ids; omitted or null = every sellable model */
  @ValidateIf((_, v) => v !== null)
  @IsOptional()
  @IsArray()
  @ArrayMaxSize(500)
  @IsString({ each: true })
  @Length(1, 200, { each: true })
  models?: string[] | null;

  @OptionalNullableInt(0, Number.MAX_SAFE_INTEGER, 'Hard budget in micro-USD')
  budget_micros?: number | null;

  /**
   * When the spend counted against budget_micros starts again (UTC: each day, each week from
   * Monday 00:00, each month); omitted or null = the budget is for the key's lifetime
   */
  @ApiPropertyOptional({ enum: BUDGET_PERIODS, nullable: true })
  @ValidateIf((_, v) => v !== null)
  @IsOptional()
  @IsIn(BUDGET_PERIODS)
  budget_period?: BudgetPeriod | null;

  @ApiPropertyOptional({ format: 'date-time' })
  @ValidateIf((_, v) => v !== null)
  @IsOptional()
  @IsISO8601({ strict: true })
  expires_at?: string | null;

  @OptionalNullableInt(1, MAX_RPM, 'Requests per minute')
  rpm_limit?: number | null;

  @OptionalNullableInt(1, MAX_TPM, 'Tokens per minute')
  tpm_limit?: number | null;
}

/** Any field of the creation body, plus `disabled`. */
export class ApiKeyUpdateDto extends PartialType(ApiKeyCreateDto) {
  @IsOptional()
  @IsBoolean()
  disabled?: boolean;
}

export class ApiKeyDto {
  id: string;
  workspace_id: string;
  name: string;
  /** First characters of the key */
  prefix: string;
  last_four: string;
  models: string[] | null;
  budget_micros: number | null;
  @ApiProperty({ enum: BUDGET_PERIODS, nullable: true }) budget_period: BudgetPeriod | null;
  /** Spend counted against the budget: in the current period when budget_period is set, else ever */
  spent_micros: number;
  rpm_limit: number | null;
  tpm_limit: number | null;
  expires_at: string | null;
  disabled: boolean;
  /** A revoked key is refused everywhere and can never be changed again */
  revoked: boolean;
  /** Start of its latest settled request */
  last_used_at: string | null;
  created_at: string;
}

export class ApiKeyCreatedDto extends ApiKeyDto {
  /** The full key. Shown this once only. */
  key: string;
}

/** `GET /v1/key`: the calling key and what it can still spend. */
export class KeyInfoDto {
  id: string;
  name: string;
  prefix: string;
  models: string[] | null;
  budget_micros: number | null;
  @ApiProperty({ enum: BUDGET_PERIODS, nullable: true }) budget_period: BudgetPeriod | null;
  /** Spend counted against the budget: in the current period when budget_period is set, else ever */
  spent_micros: number;
  /** The smaller of the budget left and the workspace available balance */
  remaining_micros: number;
  expires_at: string | null;
  workspace: { id: string; balance_micros: number; available_micros: number };
}
