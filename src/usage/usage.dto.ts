import { ApiProperty } from '@nestjs/swagger';
import { IsOptional, IsString, IsUUID, Length } from 'class-validator';
import { PageQueryDto } from '../common/pagination.dto';

export class UsageLogQueryDto extends PageQueryDto {
  @IsOptional()
  @IsString()
  @Length(1, 200)
  model?: string;

  @IsOptional()
  @IsUUID()
  key_id?: string;
}

export class UsageLogDto {
  /** Equal to the response x-request-id */
  request_id: string;
  key_id: string;
  model: string;
  provider: string | null;
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
