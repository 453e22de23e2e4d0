import { Body, Controller, HttpCode, Post, Req, Res } from '@nestjs/common';
import { ApiOkResponse, ApiOperation, ApiTags } from '@nestjs/swagger';
import type { Response } from 'express';
import { ApiKeyAuth } from '../common/auth-scope';
import { CurrentKey } from '../keys/current-key.decorator';
import type { GatewayRequest } from '../common/http/request-context';
import type { AuthenticatedKey } from '../keys/key-cache';
import { ChatCompletionCreateDto, EmbeddingCreateDto } from './chat.dto';
import { ChatService } from './chat.service';
import { ChatCompletionBody, EmbeddingBody } from './proxy-body.pipe';

@ApiTags('Public API')
@ApiKeyAuth()
@Controller('v1')
export class ChatController {
  constructor(private readonly chat: ChatService) {}

  @Post('chat/completions')
  @HttpCode(200)
  @ApiOperation({ summary: 'OpenAI-compatible chat completion (JSON or server-sent events); the cost is in `x-nexo-cost-micros`' })
  @ApiOkResponse({ description: "The provider's response with `model` set to the public id" })
  complete(
    @CurrentKey() key: AuthenticatedKey,
    @Body(ChatCompletionBody) dto: ChatCompletionCreateDto,
    @Req() req: GatewayRequest,
    @Res() res: Response,
  ): Promise<void> {
    return this.chat.handle('chat', req, res, key, dto);
  }

  @Post('embeddings')
  @HttpCode(200)
  @ApiOperation({ summary: 'OpenAI-compatible embeddings (embedding models only)' })
  embed(
    @CurrentKey() key: AuthenticatedKey,
    @Body(EmbeddingBody) dto: EmbeddingCreateDto,
    @Req() req: GatewayRequest,
    @Res() res: Response,
  ): Promise<void> {
    return this.chat.handle('embedding', req, res, key, dto);
  }
}
