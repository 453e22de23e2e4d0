import { Controller, Get } from '@nestjs/common';
import { ApiOkResponse, ApiOperation, ApiSecurity, ApiTags } from '@nestjs/swagger';
import { CurrentKey } from './current-key.decorator';
import type { AuthenticatedKey } from './key-cache';
import { KeyInfoDto } from './keys.dto';
import { KeysService } from './keys.service';

// an API-key route: the guard's default (keys/ imports nothing from auth/, which depends on it)
@ApiTags('Public API')
@ApiSecurity('api-key')
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
