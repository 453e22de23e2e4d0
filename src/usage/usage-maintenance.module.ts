import { BullMQAdapter } from '@bull-board/api/bullMQAdapter';
import { BullBoardModule } from '@bull-board/nestjs';
import { BullModule } from '@nestjs/bullmq';
import { DynamicModule, Module } from '@nestjs/common';
import { UsageLogPartitionRepository } from './usage-log-partition.repository';
import { UsageLogPartitions } from './usage-log-partitions.service';
import { UsageQueueName } from './usage-maintenance.constants';
import { UsageMaintenanceProcessor } from './usage-maintenance.processor';
import { UsageMaintenanceScheduler } from './usage-maintenance.scheduler';

/**
 * The upkeep of usage_logs' partitions: its queue in every role, its processor and schedule
 * where NEXO_ROLE runs workers, its Bull Board panel where the process serves HTTP. Imported
 * once, by AppModule.
 */
@Module({})
export class UsageMaintenanceModule {
  static register(options: { workers: boolean; dashboard: boolean }): DynamicModule {
    return {
      module: UsageMaintenanceModule,
      imports: [
        BullModule.registerQueue({ name: UsageQueueName.Maintenance }),
        ...(options.dashboard ? [BullBoardModule.forFeature({ name: UsageQueueName.Maintenance, adapter: BullMQAdapter })] : []),
      ],
      providers: [
        UsageLogPartitionRepository,
        UsageLogPartitions,
        ...(options.workers ? [UsageMaintenanceProcessor, UsageMaintenanceScheduler] : []),
      ],
      exports: [UsageLogPartitions, UsageLogPartitionRepository],
    };
  }
}
