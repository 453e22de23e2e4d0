import { Module } from '@nestjs/common';
import { TypeOrmModule } from '@nestjs/typeorm';
import { UsageDailyEntity } from './usage-daily.entity';
import { UsageDailyRepository } from './usage-daily.repository';
import { UsageLogEntity } from './usage-log.entity';
import { UsageLogRepository } from './usage-log.repository';
import { UsageService } from './usage.service';

/** Reading usage logs and their daily sums (billing's settlement writes both, with the charge). */
@Module({
  imports: [TypeOrmModule.forFeature([UsageLogEntity, UsageDailyEntity])],
  providers: [UsageLogRepository, UsageDailyRepository, UsageService],
  exports: [UsageService],
})
export class UsageModule {}
