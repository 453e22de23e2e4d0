import { ExpressAdapter } from '@bull-board/express';
import { BullBoardModule } from '@bull-board/nestjs';
import { BullModule } from '@nestjs/bullmq';
import { DynamicModule, Module } from '@nestjs/common';
import { APP_FILTER, APP_GUARD } from '@nestjs/core';
import { TypeOrmModule } from '@nestjs/typeorm';
import { AccountsModule } from './accounts/accounts.module';
import { AdminModule } from './admin/admin.module';
import { AuthGuard } from './auth/auth.guard';
import { queueDashboardAuth } from './auth/queue-dashboard.middleware';
import { SettlementWorkersModule } from './billing/settlement/settlement-workers.module';
import { ChatModule } from './chat/chat.module';
import { CatalogModule } from './catalog/catalog.module';
import { DashboardModule } from './dashboard/dashboard.module';
import { OpenAiExceptionFilter } from './common/filters/openai-exception.filter';
import { AppConfig } from './config/app-config';
import { ConfigModule } from './config/config.module';
import { dataSourceOptions } from './database/data-source-options';
import { HealthModule } from './health/health.module';
import { KeysModule } from './keys/keys.module';
import { MetricsModule } from './metrics/metrics.module';
import { PaymentsModule } from './payments/payments.module';
import { RedisModule } from './redis/redis.module';
import { SetupModule } from './setup/setup.module';
import { UsageMaintenanceModule } from './usage/usage-maintenance.module';
import { WebAppModule } from './web/web-app.module';

@Module({})
export class AppModule {
  /** The whole gateway; HTTP parts only where NEXO_ROLE serves HTTP, workers only where it runs them. */
  static forRoot(config: AppConfig, parts = { http: config.runsHttp, workers: config.runsWorkers }): DynamicModule {
    const { http, workers } = parts;
    return {
      module: AppModule,
      imports: [
        // global: configuration, Redis and metrics only
        ConfigModule.forRoot(config),
        RedisModule,
        MetricsModule,
        // each domain module registers its own entities
        TypeOrmModule.forRoot({ ...dataSourceOptions(config), autoLoadEntities: true }),
        BullModule.forRoot({
          connection: { url: config.redisUrl, connectTimeout: 2_000, retryStrategy: (times: number) => Math.min(times * 200, 2_000) },
          prefix: `${config.redisPrefix}:bull`,
        }),
        ...(http
          ? [BullBoardModule.forRoot({ route: '/admin/queues', adapter: ExpressAdapter, middleware: queueDashboardAuth(config) })]
          : []),
        // the global guard authenticates with KeysService and SessionService
        KeysModule,
        AccountsModule,
        // main.ts seeds the catalog and the demo workspace in every role
        CatalogModule,
        SetupModule,
        SettlementWorkersModule.register({ workers, dashboard: http }),
        UsageMaintenanceModule.register({ workers, dashboard: http }),
        ...(http ? [ChatModule, AdminModule, HealthModule, DashboardModule, PaymentsModule, WebAppModule.register()] : []),
      ],
      providers: [
        { provide: APP_GUARD, useClass: AuthGuard },
        { provide: APP_FILTER, useClass: OpenAiExceptionFilter },
      ],
    };
  }
}
