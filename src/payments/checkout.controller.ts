import { Body, Controller, Get, Headers, Param, Post, UsePipes } from '@nestjs/common';
import { ApiCreatedResponse, ApiHeader, ApiOkResponse, ApiOperation, ApiTags } from '@nestjs/swagger';
import { CurrentSession } from '../accounts/current-session.decorator';
import type { SessionPrincipal } from '../accounts/session-principal';
import { SessionAuth } from '../common/auth-scope';
import { strictValidation } from '../common/validation';
import { CheckoutService } from './checkout.service';
import { CheckoutConfigDto, CheckoutCreateDto, CheckoutCreatedDto, CheckoutStatusDto } from './payments.dto';

/** Top-ups of the signed-in member's workspace through Stripe Checkout. */
@ApiTags('Dashboard API')
@SessionAuth()
@UsePipes(strictValidation)
@Controller('dashboard/billing')
export class CheckoutController {
  constructor(private readonly checkout: CheckoutService) {}

  @Get('config')
  @ApiOperation({
    summary: 'Whether top-ups are available on this gateway, and the bounds of one top-up (answers without Stripe keys too)',
  })
  @ApiOkResponse({ type: CheckoutConfigDto })
  config(): CheckoutConfigDto {
    return this.checkout.topupConfig();
  }

  @Post('checkout')
  @ApiOperation({ summary: 'Start a Stripe Checkout top-up; the credit arrives with the signed payment webhook' })
  @ApiHeader({ name: 'Idempotency-Key', required: false, description: 'a retry with the same key returns the same session' })
  @ApiCreatedResponse({ type: CheckoutCreatedDto })
  create(
    @CurrentSession() session: SessionPrincipal,
    @Body() dto: CheckoutCreateDto,
    @Headers('idempotency-key') idempotencyKey: string | undefined,
  ): Promise<CheckoutCreatedDto> {
    return this.checkout.create(session, dto, idempotencyKey);
  }

  @Get('checkout/:id')
  @ApiOperation({ summary: 'Whether a top-up was credited, from the local record' })
  @ApiOkResponse({ type: CheckoutStatusDto })
  status(@CurrentSession() session: SessionPrincipal, @Param('id') id: string): Promise<CheckoutStatusDto> {
    return this.checkout.status(session, id);
  }
}
