import { Module } from '@nestjs/common';
import { TypeOrmModule } from '@nestjs/typeorm';
import { WorkspacesModule } from '../workspaces/workspaces.module';
import { ApiKeyEntity } from './api-key.entity';
import { KeyInfoController } from './key-info.controller';
import { KeysRepository } from './keys.repository';
import { KeysService } from './keys.service';

/** API keys: the hot-path lookup (cached, invalidated through Redis), their settings and `GET /v1/key`. */
@Module({
  imports: [TypeOrmModule.forFeature([ApiKeyEntity]), WorkspacesModule],
  controllers: [KeyInfoController],
  providers: [KeysRepository, KeysService],
  exports: [KeysService],
})
export class KeysModule {}
