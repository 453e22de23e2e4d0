import { Module } from '@nestjs/common';
import { BillingModule } from '../billing/billing.module';
import { CatalogModule } from '../catalog/catalog.module';
import { KeysModule } from '../keys/keys.module';
import { PaymentsModule } from '../payments/payments.module';
import { UsageModule } from '../usage/usage.module';
import { WorkspacesModule } from '../workspaces/workspaces.module';
import { AdminController } from './admin.controller';

@Module({
  imports: [WorkspacesModule, BillingModule, CatalogModule, KeysModule, UsageModule, PaymentsModule],
  controllers: [AdminController],
})
export class AdminModule {}
