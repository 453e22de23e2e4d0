import { Module } from '@nestjs/common';
import { APP_INTERCEPTOR } from '@nestjs/core';
import { RateLimitHeadersInterceptor } from './rate-limit-headers.interceptor';
import { RateLimiter } from './rate-limiter.service';

@Module({
  providers: [RateLimiter, RateLimitHeadersInterceptor, { provide: APP_INTERCEPTOR, useExisting: RateLimitHeadersInterceptor }],
  exports: [RateLimiter, RateLimitHeadersInterceptor],
})
export class RateLimitModule {}
