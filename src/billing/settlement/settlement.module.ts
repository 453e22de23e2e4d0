import { BullModule } from '@nestjs/bullmq';
import { Module } from '@nestjs/common';
import { TypeOrmModule } from '@nestjs/typeorm';
import { DatabaseModule } from '../../database/database.module';
import { HoldEntity } from '../hold.entity';
import { HoldRepository } from '../hold.repository';
import { LeaseRepository } from '../leases/lease.repository';
import { HoldSweeper } from './hold-sweeper.service';
import { QueueName, SETTLEMENT_JOB_DEFAULTS } from './settlement.constants';
import { SettlementMetrics } from './settlement.metrics';
import { SettlementRecorder } from './settlement-recorder.service';

/**
 * The settlement queue (one job per request, job id = request id) and the hold SQL it applies,
 * in every role: what hands settlements over and sweeps expired holds. Its worker side is
 * SettlementWorkersModule. Internal to billing/: other domains go through BillingService.
 */
@Module({
  imports: [
    DatabaseModule,
    TypeOrmModule.forFeature([HoldEntity]),
    BullModule.registerQueue({ name: QueueName.Usage, defaultJobOptions: SETTLEMENT_JOB_DEFAULTS }),
  ],
  providers: [HoldRepository, LeaseRepository, SettlementRecorder, HoldSweeper, SettlementMetrics],
  // the queue itself too: the worker side schedules the sweeper on it
  exports: [BullModule, HoldRepository, LeaseRepository, SettlementRecorder, HoldSweeper],
})
export class SettlementModule {}
