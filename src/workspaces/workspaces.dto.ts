import { ApiProperty, PartialType } from '@nestjs/swagger';
import { IsString, Length } from 'class-validator';
import { MAX_RPM, MAX_TPM, OptionalNullableInt } from '../common/validation-decorators';

export class WorkspaceCreateDto {
  @ApiProperty({ example: 'Acme' })
  @IsString()
  @Length(1, 200)
  name: string;

  @OptionalNullableInt(1, MAX_RPM, 'Requests per minute for keys without their own limit')
  rpm_limit?: number | null;

  @OptionalNullableInt(1, MAX_TPM, 'Tokens per minute for keys without their own limit')
  tpm_limit?: number | null;
}

/** Any of the creation fields; limits apply to keys without limits of their own. */
export class WorkspaceUpdateDto extends PartialType(WorkspaceCreateDto) {}

export class WorkspaceDto {
  id: string;
  name: string;
  /** Settled balance, micro-USD */
  balance_micros: number;
  /** Balance minus money held for requests in flight */
  available_micros: number;
  held_micros: number;
  rpm_limit: number | null;
  tpm_limit: number | null;
  created_at: string;
}
