import { BullBoardModule } from '@bull-board/nestjs';
import { BullMQAdapter } from '@bull-board/api/bullMQAdapter';
import { BullModule } from '@nestjs/bullmq';
import { DynamicModule, Module } from '@nestjs/common';
import { BillingModule } from '../billing/billing.module';
import { HoldSweeper } from './hold-sweeper.service';
import { SettlementBatcher } from './settlement-batcher';
import { SweepScheduler } from './sweep.scheduler';
import { QueueName } from './usage.constants';
import { UsageProcessor } from './usage.processor';
import { UsageRecorder } from './usage-recorder.service';
import { UsageService } from './usage.service';
import { UsageMetrics } from './usage.metrics';

/**
 * The usage queue: settlement jobs (one per request, job id = request id) and the hold
 * sweeper. The processor and the sweep schedule run only where NEXO_ROLE includes workers.
 */
@Module({})
export class UsageModule {
  static register(options: { workers: boolean; dashboard: boolean }): DynamicModule {
    return {
      module: UsageModule,
      global: true,
      imports: [
        BillingModule,
        BullModule.registerQueue({ name: QueueName.Usage }),
        ...(options.dashboard ? [BullBoardModule.forFeature({ name: QueueName.Usage, adapter: BullMQAdapter })] : []),
      ],
      providers: [UsageRecorder, UsageService, HoldSweeper, UsageMetrics, ...(options.workers ? [UsageProcessor, SweepScheduler, SettlementBatcher] : [])],
      exports: [UsageRecorder, UsageService, HoldSweeper, BillingModule],
    };
  }
}
