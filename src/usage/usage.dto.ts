import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { IsOptional, IsString, IsUUID, Length } from 'class-validator';
import { PageQueryDto } from '../billing/billing.dto';

export class UsageLogQueryDto extends PageQueryDto {
  @ApiPropertyOptional()
  @IsOptional()
  @IsString()
  @Length(1, 200)
  model?: string;

  @ApiPropertyOptional()
  @IsOptional()
  @IsUUID()
  key_id?: string;
}

export class UsageLogDto {
  @ApiProperty({ description: 'Equal to the response x-request-id' }) request_id: string;
  @ApiProperty() key_id: string;
  @ApiProperty() model: string;
  @ApiProperty({ type: String, nullable: true }) provider: string | null;
  @ApiProperty() prompt_tokens: number;
  @ApiProperty() completion_tokens: number;
  @ApiProperty() cost_micros: number;
  @ApiProperty({ type: Number, nullable: true, description: 'HTTP status answered; null when unknown (error_code outcome_unknown)' })
  status: number | null;
  @ApiProperty({ type: String, nullable: true }) error_code: string | null;
  @ApiProperty() latency_ms: number;
  @ApiProperty() stream: boolean;
  @ApiProperty({ enum: ['provider', 'tokenizer', 'hold', 'none'], description: 'Where the token counts came from' })
  usage_source: string;
  @ApiProperty() created_at: string;
}

export class UsageLogPageDto {
  @ApiProperty({ type: [UsageLogDto] }) data: UsageLogDto[];
  @ApiProperty({ type: String, nullable: true }) next_cursor: string | null;
}
