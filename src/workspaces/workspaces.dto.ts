import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { IsInt, IsOptional, IsString, Length, Max, Min, ValidateIf } from 'class-validator';

export class WorkspaceCreateDto {
  @ApiProperty({ example: 'Acme' })
  @IsString()
  @Length(1, 200)
  name: string;

  @ApiPropertyOptional({ type: Number, nullable: true, description: 'Requests per minute for keys without their own limit' })
  @ValidateIf((_, v) => v !== null)
  @IsOptional()
  @IsInt()
  @Min(1)
  @Max(10_000_000)
  rpm_limit?: number | null;

  @ApiPropertyOptional({ type: Number, nullable: true, description: 'Tokens per minute for keys without their own limit' })
  @ValidateIf((_, v) => v !== null)
  @IsOptional()
  @IsInt()
  @Min(1)
  @Max(2_000_000_000)
  tpm_limit?: number | null;
}

export class WorkspaceDto {
  @ApiProperty() id: string;
  @ApiProperty() name: string;
  @ApiProperty({ description: 'Settled balance, micro-USD' }) balance_micros: number;
  @ApiProperty({ description: 'Balance minus money held for requests in flight' }) available_micros: number;
  @ApiProperty() held_micros: number;
  @ApiProperty({ type: Number, nullable: true }) rpm_limit: number | null;
  @ApiProperty({ type: Number, nullable: true }) tpm_limit: number | null;
  @ApiProperty() created_at: string;
}
