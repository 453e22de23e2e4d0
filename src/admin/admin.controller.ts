import { Body, Controller, Get, Headers, HttpCode, Param, Patch, Post, Put, Query, Res, UsePipes } from '@nestjs/common';
import { ApiCreatedResponse, ApiHeader, ApiOkResponse, ApiOperation, ApiTags } from '@nestjs/swagger';
import type { Response } from 'express';
import { AdminOnly } from '../common/auth-scope';
import { CreditCreateDto, LedgerEntryDto, LedgerPageDto } from '../billing/billing.dto';
import { BillingService } from '../billing/billing.service';
import { ModelDto, ModelUpsertDto, ProviderDto, ProviderUpsertDto } from '../catalog/catalog.dto';
import { CatalogService } from '../catalog/catalog.service';
import { PageQueryDto } from '../common/pagination.dto';
import { KeyId, WorkspaceId } from '../common/uuid.pipe';
import { strictValidation } from '../common/validation';
import { ApiKeyCreateDto, ApiKeyCreatedDto, ApiKeyDto, ApiKeyUpdateDto } from '../keys/keys.dto';
import { KeysService } from '../keys/keys.service';
import { WebhookEventPageDto } from '../payments/payments.dto';
import { StripeWebhookService } from '../payments/stripe-webhook.service';
import { UsageLogPageDto, UsageLogQueryDto } from '../usage/usage.dto';
import { UsageService } from '../usage/usage.service';
import { WorkspaceCreateDto, WorkspaceDto, WorkspaceUpdateDto } from '../workspaces/workspaces.dto';
import { WorkspacesService } from '../workspaces/workspaces.service';

@ApiTags('Admin API')
@AdminOnly()
@UsePipes(strictValidation)
@Controller('admin')
export class AdminController {
  constructor(
    private readonly workspaces: WorkspacesService,
    private readonly billing: BillingService,
    private readonly keys: KeysService,
    private readonly catalog: CatalogService,
    private readonly usage: UsageService,
    private readonly stripeWebhooks: StripeWebhookService,
  ) {}

  @Post('workspaces')
  @ApiCreatedResponse({ type: WorkspaceDto })
  createWorkspace(@Body() dto: WorkspaceCreateDto): Promise<WorkspaceDto> {
    return this.workspaces.create(dto);
  }

  @Get('workspaces/:id')
  @ApiOkResponse({ type: WorkspaceDto })
  getWorkspace(@Param('id', WorkspaceId) id: string): Promise<WorkspaceDto> {
    return this.workspaces.get(id);
  }

  @Patch('workspaces/:id')
  @ApiOperation({ summary: 'Rename a workspace or change the rate limits of its keys without their own' })
  @ApiOkResponse({ type: WorkspaceDto })
  updateWorkspace(@Param('id', WorkspaceId) id: string, @Body() dto: WorkspaceUpdateDto): Promise<WorkspaceDto> {
    return this.workspaces.update(id, dto);
  }

  @Post('workspaces/:id/credits')
  @ApiOperation({ summary: 'Credit (or, negative, correct) a balance; idempotent with Idempotency-Key' })
  @ApiHeader({ name: 'Idempotency-Key', required: false })
  @ApiCreatedResponse({ type: LedgerEntryDto, description: 'created; 200 when an Idempotency-Key replay returns the first entry' })
  async credit(
    @Param('id', WorkspaceId) id: string,
    @Body() dto: CreditCreateDto,
    @Headers('idempotency-key') idempotencyKey: string | undefined,
    @Res({ passthrough: true }) res: Response,
  ): Promise<LedgerEntryDto> {
    const result = await this.billing.credit(id, dto, idempotencyKey);
    res.status(result.created ? 201 : 200);
    return result.entry;
  }

  @Get('workspaces/:id/ledger')
  @ApiOkResponse({ type: LedgerPageDto })
  async ledger(@Param('id', WorkspaceId) id: string, @Query() q: PageQueryDto): Promise<LedgerPageDto> {
    await this.workspaces.get(id);
    return this.billing.ledger(id, q.limit ?? 20, q.cursor);
  }

  @Post('workspaces/:id/keys')
  @ApiOperation({ summary: 'Create an API key; the full key is in this answer only' })
  @ApiCreatedResponse({ type: ApiKeyCreatedDto })
  async createKey(@Param('id', WorkspaceId) id: string, @Body() dto: ApiKeyCreateDto): Promise<ApiKeyCreatedDto> {
    await this.catalog.checkScope(dto.models);
    return this.keys.create(id, dto);
  }

  @Get('workspaces/:id/keys')
  @ApiOkResponse({ type: [ApiKeyDto] })
  async listKeys(@Param('id', WorkspaceId) id: string): Promise<{ data: ApiKeyDto[] }> {
    await this.workspaces.get(id);
    return { data: await this.keys.listForWorkspace(id) };
  }

  @Patch('keys/:id')
  @ApiOperation({ summary: 'Update a key; every gateway process sees it within 1 s' })
  @ApiOkResponse({ type: ApiKeyDto })
  async updateKey(@Param('id', KeyId) id: string, @Body() dto: ApiKeyUpdateDto): Promise<ApiKeyDto> {
    await this.catalog.checkScope(dto.models);
    return this.keys.update(id, dto);
  }

  @Get('workspaces/:id/usage-logs')
  @ApiOkResponse({ type: UsageLogPageDto })
  async usageLogs(@Param('id', WorkspaceId) id: string, @Query() q: UsageLogQueryDto): Promise<UsageLogPageDto> {
    await this.workspaces.get(id);
    return this.usage.list(id, q);
  }

  @Get('webhook-events')
  @ApiOperation({ summary: 'Stripe webhook events received, newest first, with what each did' })
  @ApiOkResponse({ type: WebhookEventPageDto })
  webhookEvents(@Query() q: PageQueryDto): Promise<WebhookEventPageDto> {
    return this.stripeWebhooks.events(q.limit ?? 20, q.cursor);
  }

  @Put('models')
  @HttpCode(200)
  @ApiOkResponse({ type: ModelDto })
  upsertModel(@Body() dto: ModelUpsertDto): Promise<ModelDto> {
    return this.catalog.upsertModel(dto);
  }

  @Get('models')
  @ApiOkResponse({ type: [ModelDto] })
  async listModels(): Promise<{ data: ModelDto[] }> {
    return { data: await this.catalog.listAllModels() };
  }

  @Put('providers')
  @HttpCode(200)
  @ApiOkResponse({ type: ProviderDto })
  upsertProvider(@Body() dto: ProviderUpsertDto): Promise<ProviderDto> {
    return this.catalog.upsertProvider(dto);
  }

  @Get('providers')
  @ApiOkResponse({ type: [ProviderDto] })
  async listProviders(): Promise<{ data: ProviderDto[] }> {
    return { data: await this.catalog.listProviders() };
  }
}
