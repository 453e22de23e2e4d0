import { Module } from '@nestjs/common';
import { CatalogModule } from '../catalog/catalog.module';
import { DemoWorkspaceService } from './demo-workspace.service';

@Module({
  imports: [CatalogModule],
  providers: [DemoWorkspaceService],
  exports: [DemoWorkspaceService, CatalogModule],
})
export class SetupModule {}
