import { Module } from '@nestjs/common';
import { BillingModule } from '../billing/billing.module';
import { KeysModule } from '../keys/keys.module';
import { WorkspacesModule } from '../workspaces/workspaces.module';
import { DemoWorkspaceService } from './demo-workspace.service';

@Module({
  imports: [WorkspacesModule, BillingModule, KeysModule],
  providers: [DemoWorkspaceService],
  exports: [DemoWorkspaceService],
})
export class SetupModule {}
