import { Module } from '@nestjs/common';
import { APP_INTERCEPTOR } from '@nestjs/core';
import { RateLimitHeadersInterceptor } from './rate-limit-headers.interceptor';
import { RateLimiter } from './rate-limiter.service';

@Module({
  providers: [RateLimiter, { provide: APP_INTERCEPTOR, useClass: RateLimitHeadersInterceptor }],
  exports: [RateLimiter],
})
export class RateLimitModule {}
