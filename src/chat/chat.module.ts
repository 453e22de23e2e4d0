import { Module } from '@nestjs/common';
import { BillingModule } from '../billing/billing.module';
import { CatalogModule } from '../catalog/catalog.module';
import { HealthModule } from '../health/health.module';
import { KeysModule } from '../keys/keys.module';
import { RateLimitModule } from '../ratelimit/rate-limit.module';
import { ChatController } from './chat.controller';
import { ChatService } from './chat.service';
import { ProxyLane } from './proxy-lane';
import { JsonRelay } from './relays/json-relay';
import { SseRelay } from './relays/sse-relay';
import { UpstreamRouter } from './upstream/upstream-router';
import { UpstreamClient } from './upstream/upstream.client';

@Module({
  imports: [CatalogModule, BillingModule, RateLimitModule, KeysModule, HealthModule],
  controllers: [ChatController],
  providers: [ChatService, JsonRelay, SseRelay, UpstreamClient, UpstreamRouter, ProxyLane],
  exports: [ProxyLane],
})
export class ChatModule {}
