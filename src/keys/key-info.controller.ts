import { Controller, Get } from '@nestjs/common';
import { ApiOkResponse, ApiOperation, ApiTags } from '@nestjs/swagger';
import { ApiKeyAuth } from '../common/auth-scope';
import { CurrentKey } from './current-key.decorator';
import type { AuthenticatedKey } from './key-cache';
import { KeyInfoDto } from './keys.dto';
import { KeysService } from './keys.service';

@ApiTags('Public API')
@ApiKeyAuth()
@Controller('v1/key')
export class KeyInfoController {
  constructor(private readonly keys: KeysService) {}

  @Get()
  @ApiOperation({ summary: 'The calling key: scope, budget, spend, and what it can still spend' })
  @ApiOkResponse({ type: KeyInfoDto })
  info(@CurrentKey() key: AuthenticatedKey): Promise<KeyInfoDto> {
    return this.keys.info(key);
  }
}
