import { BullMQAdapter } from '@bull-board/api/bullMQAdapter';
import { BullBoardModule } from '@bull-board/nestjs';
import { DynamicModule, Module } from '@nestjs/common';
import { SettlementBatcher } from './settlement-batcher';
import { QueueName } from './settlement.constants';
import { SettlementModule } from './settlement.module';
import { SettlementProcessor } from './settlement.processor';
import { SweepScheduler } from './sweep.scheduler';

/**
 * Where the settlement queue is worked and shown: its processor, batcher and sweep schedule
 * where NEXO_ROLE runs workers, its Bull Board panel where the process serves HTTP.
 * Imported once, by AppModule.
 */
@Module({})
export class SettlementWorkersModule {
  static register(options: { workers: boolean; dashboard: boolean }): DynamicModule {
    return {
      module: SettlementWorkersModule,
      imports: [
        SettlementModule,
        ...(options.dashboard ? [BullBoardModule.forFeature({ name: QueueName.Usage, adapter: BullMQAdapter })] : []),
      ],
      providers: options.workers ? [SettlementProcessor, SettlementBatcher, SweepScheduler] : [],
    };
  }
}
