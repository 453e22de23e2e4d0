import { Global, Module } from '@nestjs/common';
import { TypeOrmModule } from '@nestjs/typeorm';
import { WorkspaceEntity } from '../workspaces/workspace.entity';
import { ApiKeyEntity } from './api-key.entity';
import { KeyInfoController } from './key-info.controller';
import { KeysService } from './keys.service';

// Global: the app-wide AuthGuard authenticates with it.
@Global()
@Module({
  imports: [TypeOrmModule.forFeature([ApiKeyEntity, WorkspaceEntity])],
  controllers: [KeyInfoController],
  providers: [KeysService],
  exports: [KeysService],
})
export class KeysModule {}
