import { Body, Controller, Delete, Get, Param, Patch, Post, Query, UsePipes } from '@nestjs/common';
import { ApiCreatedResponse, ApiOkResponse, ApiOperation, ApiTags } from '@nestjs/swagger';
import { CurrentSession } from '../accounts/current-session.decorator';
import type { SessionPrincipal } from '../accounts/session-principal';
import { LedgerPageDto } from '../billing/billing.dto';
import { SessionAuth } from '../common/auth-scope';
import { PageQueryDto } from '../common/pagination.dto';
import { KeyId } from '../common/uuid.pipe';
import { strictValidation } from '../common/validation';
import { ApiKeyCreateDto, ApiKeyCreatedDto, ApiKeyDto, ApiKeyUpdateDto } from '../keys/keys.dto';
import { UsageLogPageDto, UsageLogQueryDto, UsageSummaryDto, UsageTotalsQueryDto } from '../usage/usage.dto';
import { DashboardKeyListDto, DashboardModelListDto, DashboardWorkspaceDto } from './dashboard.dto';
import { DashboardService } from './dashboard.service';

/** The customer's routes, for the signed-in member's workspace only. */
@ApiTags('Dashboard API')
@SessionAuth()
@UsePipes(strictValidation)
@Controller('dashboard')
export class DashboardController {
  constructor(private readonly dashboard: DashboardService) {}

  @Get('workspace')
  @ApiOperation({ summary: 'Your workspace: balance, what new requests can use, and the default key limits' })
  @ApiOkResponse({ type: DashboardWorkspaceDto })
  workspace(@CurrentSession() session: SessionPrincipal): Promise<DashboardWorkspaceDto> {
    return this.dashboard.workspace(session);
  }

  @Get('keys')
  @ApiOperation({ summary: 'Your API keys, revoked ones included (never their secrets)' })
  @ApiOkResponse({ type: DashboardKeyListDto })
  listKeys(@CurrentSession() session: SessionPrincipal): Promise<DashboardKeyListDto> {
    return this.dashboard.listKeys(session);
  }

  @Post('keys')
  @ApiOperation({ summary: 'Create an API key; the full key is in this answer only' })
  @ApiCreatedResponse({ type: ApiKeyCreatedDto })
  createKey(@CurrentSession() session: SessionPrincipal, @Body() dto: ApiKeyCreateDto): Promise<ApiKeyCreatedDto> {
    return this.dashboard.createKey(session, dto);
  }

  @Get('keys/:id')
  @ApiOkResponse({ type: ApiKeyDto })
  getKey(@CurrentSession() session: SessionPrincipal, @Param('id', KeyId) id: string): Promise<ApiKeyDto> {
    return this.dashboard.getKey(session, id);
  }

  @Patch('keys/:id')
  @ApiOperation({ summary: 'Update a key; every gateway process sees it within 1 s. A revoked key is 409 key_revoked' })
  @ApiOkResponse({ type: ApiKeyDto })
  updateKey(@CurrentSession() session: SessionPrincipal, @Param('id', KeyId) id: string, @Body() dto: ApiKeyUpdateDto): Promise<ApiKeyDto> {
    return this.dashboard.updateKey(session, id, dto);
  }

  @Delete('keys/:id')
  @ApiOperation({ summary: 'Revoke a key for good; every gateway process refuses it within 1 s. Revoking again changes nothing' })
  @ApiOkResponse({ type: ApiKeyDto })
  revokeKey(@CurrentSession() session: SessionPrincipal, @Param('id', KeyId) id: string): Promise<ApiKeyDto> {
    return this.dashboard.revokeKey(session, id);
  }

  @Get('usage-logs')
  @ApiOperation({ summary: 'Usage logs, newest first; from inclusive, to exclusive' })
  @ApiOkResponse({ type: UsageLogPageDto })
  usageLogs(@CurrentSession() session: SessionPrincipal, @Query() q: UsageLogQueryDto): Promise<UsageLogPageDto> {
    return this.dashboard.usageLogs(session, q);
  }

  @Get('usage')
  @ApiOperation({
    summary: 'Requests, tokens and cost per UTC day, model or key, with totals; from/to select every whole UTC day overlapping [from, to)',
  })
  @ApiOkResponse({ type: UsageSummaryDto })
  usage(@CurrentSession() session: SessionPrincipal, @Query() q: UsageTotalsQueryDto): Promise<UsageSummaryDto> {
    return this.dashboard.usageSummary(session, q);
  }

  @Get('ledger')
  @ApiOperation({ summary: 'Ledger entries of your workspace, newest first' })
  @ApiOkResponse({ type: LedgerPageDto })
  ledger(@CurrentSession() session: SessionPrincipal, @Query() q: PageQueryDto): Promise<LedgerPageDto> {
    return this.dashboard.ledger(session, q);
  }

  @Get('models')
  @ApiOperation({ summary: 'The models you can use, with their prices (micro-USD per 1M tokens)' })
  @ApiOkResponse({ type: DashboardModelListDto })
  models(): Promise<DashboardModelListDto> {
    return this.dashboard.models();
  }
}
