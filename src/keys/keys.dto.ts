import { ApiProperty, ApiPropertyOptional, PartialType } from '@nestjs/swagger';
import { ArrayMaxSize, IsArray, IsBoolean, IsISO8601, IsOptional, IsString, Length, ValidateIf } from 'class-validator';
import { MAX_RPM, MAX_TPM, OptionalNullableInt } from '../common/validation-decorators';

export class ApiKeyCreateDto {
  @ApiProperty({ example: 'production backend' })
  @IsString()
  @Length(1, 200)
  name: string;

  @ApiPropertyOptional({ type: [String], nullable: true, description: 'Model scope; omitted or null = every sellable model' })
  @ValidateIf((_, v) => v !== null)
  @IsOptional()
  @IsArray()
  @ArrayMaxSize(500)
  @IsString({ each: true })
  @Length(1, 200, { each: true })
  models?: string[] | null;

  @OptionalNullableInt(0, Number.MAX_SAFE_INTEGER, 'Hard budget in micro-USD')
  budget_micros?: number | null;

  @ApiPropertyOptional({ type: String, nullable: true, format: 'date-time' })
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
  @ApiPropertyOptional()
  @IsOptional()
  @IsBoolean()
  disabled?: boolean;
}

export class ApiKeyDto {
  @ApiProperty() id: string;
  @ApiProperty() workspace_id: string;
  @ApiProperty() name: string;
  @ApiProperty({ description: 'First characters of the key' }) prefix: string;
  @ApiProperty() last_four: string;
  @ApiProperty({ type: [String], nullable: true }) models: string[] | null;
  @ApiProperty({ type: Number, nullable: true }) budget_micros: number | null;
  @ApiProperty() spent_micros: number;
  @ApiProperty({ type: Number, nullable: true }) rpm_limit: number | null;
  @ApiProperty({ type: Number, nullable: true }) tpm_limit: number | null;
  @ApiProperty({ type: String, nullable: true }) expires_at: string | null;
  @ApiProperty() disabled: boolean;
  @ApiProperty() revoked: boolean;
  @ApiProperty() created_at: string;
}

export class ApiKeyCreatedDto extends ApiKeyDto {
  @ApiProperty({ description: 'The full key. Shown this once only.' })
  key: string;
}

/** `GET /v1/key`: the calling key and what it can still spend. */
export class KeyInfoDto {
  @ApiProperty() id: string;
  @ApiProperty() name: string;
  @ApiProperty() prefix: string;
  @ApiProperty({ type: [String], nullable: true }) models: string[] | null;
  @ApiProperty({ type: Number, nullable: true }) budget_micros: number | null;
  @ApiProperty() spent_micros: number;
  @ApiProperty({ description: 'The smaller of the budget left and the workspace available balance' }) remaining_micros: number;
  @ApiProperty({ type: String, nullable: true }) expires_at: string | null;
  @ApiProperty() workspace: { id: string; balance_micros: number; available_micros: number };
}
