import { ApiProperty } from '@nestjs/swagger';
import { SellableModelDto } from '../catalog/catalog.dto';
import { ApiKeyDto } from '../keys/keys.dto';

/** The signed-in member's workspace. */
export class DashboardWorkspaceDto {
  id: string;
  name: string;
  /** The caller's role in it */
  @ApiProperty({ enum: ['owner', 'member'] }) role: 'owner' | 'member';
  /** Settled balance, micro-USD */
  balance_micros: number;
  /** Balance minus money held for requests in flight: what new requests can use */
  available_micros: number;
  /** Requests per minute of keys without a limit of their own; null = unlimited */
  rpm_limit: number | null;
  /** Tokens per minute of keys without a limit of their own; null = unlimited */
  tpm_limit: number | null;
}

export class DashboardKeyListDto {
  /** Newest first; revoked keys included */
  data: ApiKeyDto[];
}

export class DashboardModelListDto {
  data: SellableModelDto[];
}
