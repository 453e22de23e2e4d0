import { Module } from '@nestjs/common';
import { BillingModule } from '../billing/billing.module';
import { CatalogModule } from '../catalog/catalog.module';
import { RateLimitModule } from '../ratelimit/rate-limit.module';
import { UsageModule } from '../usage/usage.module';
import { ChatController } from './chat.controller';
import { ChatService } from './chat.service';
import { UpstreamClient } from './upstream/upstream.client';

@Module({
  imports: [CatalogModule, BillingModule, RateLimitModule, UsageModule],
  controllers: [ChatController],
  providers: [ChatService, UpstreamClient],
})
export class ChatModule {}
