import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { Type } from 'class-transformer';
import { IsInt, IsOptional, IsString, Length, Max, Min } from 'class-validator';
import { MAX_CREDIT_MICROS } from '../common/money';

export class CreditCreateDto {
  @ApiProperty({
    description: 'micro-USD, at most 10^12 either way; negative corrects and may take the balance below zero (the balance stays within ±(2^53-1))',
    example: 5_000_000,
    minimum: -MAX_CREDIT_MICROS,
    maximum: MAX_CREDIT_MICROS,
  })
  @IsInt()
  @Min(-MAX_CREDIT_MICROS)
  @Max(MAX_CREDIT_MICROS)
  amount_micros: number;

  @ApiPropertyOptional({ example: 'manual top-up' })
  @IsOptional()
  @IsString()
  @Length(0, 500)
  reason?: string;
}

export class PageQueryDto {
  @ApiPropertyOptional({ minimum: 1, maximum: 100, default: 20 })
  @IsOptional()
  @Type(() => Number)
  @IsInt()
  @Min(1)
  @Max(100)
  limit?: number;

  @ApiPropertyOptional()
  @IsOptional()
  @IsString()
  @Length(1, 200)
  cursor?: string;
}

export class LedgerEntryDto {
  @ApiProperty() id: string;
  @ApiProperty() workspace_id: string;
  @ApiProperty({ enum: ['credit', 'charge', 'refund', 'correction'] }) kind: string;
  @ApiProperty() amount_micros: number;
  @ApiProperty() balance_after_micros: number;
  @ApiProperty() reference: string;
  @ApiProperty({ type: String, nullable: true }) key_id: string | null;
  @ApiProperty({ type: String, nullable: true }) reason: string | null;
  @ApiProperty() created_at: string;
}

export class LedgerPageDto {
  @ApiProperty({ type: [LedgerEntryDto] }) data: LedgerEntryDto[];
  @ApiProperty({ type: String, nullable: true }) next_cursor: string | null;
}
