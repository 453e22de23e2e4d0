import { Module } from '@nestjs/common';
import { TypeOrmModule } from '@nestjs/typeorm';
import { CatalogRepository } from './catalog.repository';
import { CatalogService } from './catalog.service';
import { ModelEntity } from './model.entity';
import { ModelsController } from './models.controller';
import { ProviderEntity } from './provider.entity';

@Module({
  imports: [TypeOrmModule.forFeature([ModelEntity, ProviderEntity])],
  controllers: [ModelsController],
  providers: [CatalogRepository, CatalogService],
  exports: [CatalogService],
})
export class CatalogModule {}
