import { Controller, Get, Param } from '@nestjs/common';
import { ApiOkResponse, ApiOperation, ApiParam, ApiTags } from '@nestjs/swagger';
import { ApiKeyAuth } from '../common/auth-scope';
import { CurrentKey } from '../keys/current-key.decorator';
import type { AuthenticatedKey } from '../keys/key-cache';
import { PublicModelDto, PublicModelListDto } from './catalog.dto';
import { CatalogService } from './catalog.service';
import type { ModelEntity } from './model.entity';

function publicModel(m: ModelEntity): PublicModelDto {
  return {
    id: m.id,
    object: 'model',
    created: Math.floor(m.createdAt.getTime() / 1000),
    owned_by: m.providerId,
    type: m.type,
    pricing: { input_price_micros: m.inputPriceMicros, output_price_micros: m.outputPriceMicros },
  };
}

@ApiTags('Public API')
@ApiKeyAuth()
@Controller('v1/models')
export class ModelsController {
  constructor(private readonly catalog: CatalogService) {}

  @Get()
  @ApiOperation({ summary: 'Sellable models (only those in the key scope)' })
  @ApiOkResponse({ type: PublicModelListDto })
  async list(@CurrentKey() key: AuthenticatedKey): Promise<PublicModelListDto> {
    return { object: 'list', data: (await this.catalog.listSellable(key.models)).map(publicModel) };
  }

  // Model ids contain '/': `Qwen/Qwen-Plus` and `Qwen%2FQwen-Plus` both arrive here.
  @Get('*id')
  @ApiOperation({ summary: 'One sellable model; 404 when unknown or outside the key scope' })
  @ApiParam({ name: 'id', example: 'Qwen/Qwen-Plus' })
  @ApiOkResponse({ type: PublicModelDto })
  async get(@CurrentKey() key: AuthenticatedKey, @Param('id') id: string | string[]): Promise<PublicModelDto> {
    const modelId = Array.isArray(id) ? id.join('/') : id;
    return publicModel(await this.catalog.findSellable(modelId, key.models));
  }
}
