import { applyDecorators } from '@nestjs/common';
import { ApiPropertyOptional } from '@nestjs/swagger';
import { IsInt, IsOptional, Max, Min, ValidateIf } from 'class-validator';

/** An optional whole number in [min, max] that may also be sent as null (meaning "none"). */
export function OptionalNullableInt(min: number, max: number, description?: string): PropertyDecorator {
  return applyDecorators(
    ApiPropertyOptional({ type: Number, nullable: true, minimum: min, maximum: max, description }),
    ValidateIf((_, value) => value !== null),
    IsOptional(),
    IsInt(),
    Min(min),
    Max(max),
  );
}

export const MAX_RPM = 10_000_000;
export const MAX_TPM = 2_000_000_000;
