import { Controller, Headers, HttpCode, Post, Req } from '@nestjs/common';
import { ApiExcludeController } from '@nestjs/swagger';
import { Public } from '../common/auth-scope';
import type { GatewayRequest } from '../common/http/request-context';
import { WebhookReceiptDto } from './payments.dto';
import { StripeWebhookService } from './stripe-webhook.service';

/** Stripe's deliveries: verified by their signature over the raw body (kept by the guard on public routes). */
@ApiExcludeController()
@Public()
@Controller('webhooks')
export class StripeWebhookController {
  constructor(private readonly webhooks: StripeWebhookService) {}

  @Post('stripe')
  @HttpCode(200)
  receive(@Req() req: GatewayRequest, @Headers('stripe-signature') signature: string | undefined): Promise<WebhookReceiptDto> {
    return this.webhooks.receive(req.rawBody, signature);
  }
}
