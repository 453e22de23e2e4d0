import { ApiProperty } from '@nestjs/swagger';
import { IsInt } from 'class-validator';

export class CheckoutCreateDto {
  @ApiProperty({ description: 'US cents, within TOPUP_MIN_CENTS and TOPUP_MAX_CENTS (default 500 to 1,000,000)', example: 2000 })
  @IsInt()
  amount_cents: number;
}

export class CheckoutCreatedDto {
  @ApiProperty({ description: 'the Stripe Checkout Session id', example: 'cs_test_a1b2c3' }) id: string;
  @ApiProperty({ description: "Stripe's hosted payment page" }) url: string;
}

export class CheckoutConfigDto {
  /** false when this gateway has no Stripe keys: top-ups answer 503 */
  enabled: boolean;
  /** the smallest top-up, in US cents (TOPUP_MIN_CENTS) */
  min_cents: number;
  /** the largest top-up, in US cents (TOPUP_MAX_CENTS) */
  max_cents: number;
  @ApiProperty({ enum: ['usd'] }) currency: 'usd';
}

export class CheckoutStatusDto {
  @ApiProperty({ enum: ['pending', 'credited', 'expired', 'failed'] }) status: string;
  @ApiProperty({ description: 'credited, or to be credited, in micro-USD' }) amount_micros: number;
}

export class WebhookReceiptDto {
  received: boolean;
}

export class WebhookEventDto {
  id: string;
  event_id: string;
  type: string;
  livemode: boolean;
  object_id: string | null;
  workspace_id: string | null;
  @ApiProperty({
    description:
      'credited, debited, duplicate, awaiting_payment, failed, expired, unknown_workspace, unsupported_currency, ' +
      'livemode_mismatch, unmatched_charge, out_of_range, ignored, unhandled, error',
  })
  outcome: string;
  detail: string | null;
  deliveries: number;
  created_at: string;
  last_delivered_at: string;
}

export class WebhookEventPageDto {
  data: WebhookEventDto[];
  next_cursor: string | null;
}
