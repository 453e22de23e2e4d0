import { Global, Module } from '@nestjs/common';
import { RedisDurabilityCheck } from './redis-durability.service';
import { RedisService } from './redis.service';

@Global()
@Module({ providers: [RedisService, RedisDurabilityCheck], exports: [RedisService, RedisDurabilityCheck] })
export class RedisModule {}
