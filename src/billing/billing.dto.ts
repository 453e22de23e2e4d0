import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { IsInt, IsOptional, IsString, Length, Max, Min } from 'class-validator';
import { MAX_CREDIT_MICROS } from '../common/money';

export class CreditCreateDto {
  @ApiProperty({
    description:
      'micro-USD, at most 10^12 either way; negative corrects and may take the balance below zero (the balance stays within ±(2^53-1))',
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

export class LedgerEntryDto {
  id: string;
  workspace_id: string;
  @ApiProperty({ enum: ['credit', 'charge', 'refund', 'correction', 'topup', 'dispute'] }) kind: string;
  amount_micros: number;
  balance_after_micros: number;
  reference: string;
  key_id: string | null;
  reason: string | null;
  created_at: string;
}

export class LedgerPageDto {
  data: LedgerEntryDto[];
  next_cursor: string | null;
}
