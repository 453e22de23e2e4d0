import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import {
  ArrayMaxSize,
  IsArray,
  IsBoolean,
  IsInt,
  IsISO8601,
  IsOptional,
  IsString,
  Length,
  Max,
  Min,
  ValidateIf,
} from 'class-validator';

const MAX_MICROS = Number.MAX_SAFE_INTEGER;

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

  @ApiPropertyOptional({ type: Number, nullable: true, description: 'Hard budget in micro-USD' })
  @ValidateIf((_, v) => v !== null)
  @IsOptional()
  @IsInt()
  @Min(0)
  @Max(MAX_MICROS)
  budget_micros?: number | null;

  @ApiPropertyOptional({ type: String, nullable: true, format: 'date-time' })
  @ValidateIf((_, v) => v !== null)
  @IsOptional()
  @IsISO8601({ strict: true })
  expires_at?: string | null;

  @ApiPropertyOptional({ type: Number, nullable: true, description: 'Requests per minute' })
  @ValidateIf((_, v) => v !== null)
  @IsOptional()
  @IsInt()
  @Min(1)
  @Max(10_000_000)
  rpm_limit?: number | null;

  @ApiPropertyOptional({ type: Number, nullable: true, description: 'Tokens per minute' })
  @ValidateIf((_, v) => v !== null)
  @IsOptional()
  @IsInt()
  @Min(1)
  @Max(2_000_000_000)
  tpm_limit?: number | null;
}

export class ApiKeyUpdateDto {
  @ApiPropertyOptional()
  @IsOptional()
  @IsString()
  @Length(1, 200)
  name?: string;

  @ApiPropertyOptional()
  @IsOptional()
  @IsBoolean()
  disabled?: boolean;

  @ApiPropertyOptional({ type: [String], nullable: true })
  @ValidateIf((_, v) => v !== null)
  @IsOptional()
  @IsArray()
  @ArrayMaxSize(500)
  @IsString({ each: true })
  @Length(1, 200, { each: true })
  models?: string[] | null;

  @ApiPropertyOptional({ type: Number, nullable: true })
  @ValidateIf((_, v) => v !== null)
  @IsOptional()
  @IsInt()
  @Min(0)
  @Max(MAX_MICROS)
  budget_micros?: number | null;

  @ApiPropertyOptional({ type: String, nullable: true, format: 'date-time' })
  @ValidateIf((_, v) => v !== null)
  @IsOptional()
  @IsISO8601({ strict: true })
  expires_at?: string | null;

  @ApiPropertyOptional({ type: Number, nullable: true })
  @ValidateIf((_, v) => v !== null)
  @IsOptional()
  @IsInt()
  @Min(1)
  @Max(10_000_000)
  rpm_limit?: number | null;

  @ApiPropertyOptional({ type: Number, nullable: true })
  @ValidateIf((_, v) => v !== null)
  @IsOptional()
  @IsInt()
  @Min(1)
  @Max(2_000_000_000)
  tpm_limit?: number | null;
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
