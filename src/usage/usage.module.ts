import { Module } from '@nestjs/common';
import { TypeOrmModule } from '@nestjs/typeorm';
import { UsageLogEntity } from './usage-log.entity';
import { UsageLogRepository } from './usage-log.repository';
import { UsageService } from './usage.service';

/** Reading usage logs (billing's settlement writes them, with the charge). */
@Module({
  imports: [TypeOrmModule.forFeature([UsageLogEntity])],
  providers: [UsageLogRepository, UsageService],
  exports: [UsageService],
})
export class UsageModule {}
