import { Injectable } from '@nestjs/common';
import type { SessionPrincipal } from '../accounts/session-principal';
import { LedgerPageDto } from '../billing/billing.dto';
import { BillingService } from '../billing/billing.service';
import { CatalogService } from '../catalog/catalog.service';
import { PageQueryDto } from '../common/pagination.dto';
import { ApiKeyCreateDto, ApiKeyCreatedDto, ApiKeyDto, ApiKeyUpdateDto } from '../keys/keys.dto';
import { KeysService } from '../keys/keys.service';
import { UsageLogPageDto, UsageLogQueryDto, UsageSummaryDto, UsageTotalsQueryDto } from '../usage/usage.dto';
import { UsageService } from '../usage/usage.service';
import { WorkspacesService } from '../workspaces/workspaces.service';
import { DashboardKeyListDto, DashboardModelListDto, DashboardWorkspaceDto } from './dashboard.dto';

/**
 * The customer's view of their workspace, over the domains that own the data. Every call is
 * scoped to the session's workspace: no workspace id ever comes from the client, and an id of
 * another workspace's key is 404 exactly like a missing one.
 */
@Injectable()
export class DashboardService {
  constructor(
    private readonly workspaces: WorkspacesService,
    private readonly keys: KeysService,
    private readonly catalog: CatalogService,
    private readonly usage: UsageService,
    private readonly billing: BillingService,
  ) {}

  async workspace(session: SessionPrincipal): Promise<DashboardWorkspaceDto> {
    const w = await this.workspaces.get(session.workspaceId);
    return {
      id: w.id,
      name: w.name,
      role: session.role,
      balance_micros: w.balance_micros,
      available_micros: w.available_micros,
      rpm_limit: w.rpm_limit,
      tpm_limit: w.tpm_limit,
    };
  }

  async listKeys(session: SessionPrincipal): Promise<DashboardKeyListDto> {
    return { data: await this.keys.listForWorkspace(session.workspaceId) };
  }

  async createKey(session: SessionPrincipal, dto: ApiKeyCreateDto): Promise<ApiKeyCreatedDto> {
    await this.catalog.checkScope(dto.models);
    return this.keys.create(session.workspaceId, dto);
  }

  getKey(session: SessionPrincipal, id: string): Promise<ApiKeyDto> {
    return this.keys.get(id, session.workspaceId);
  }

  async updateKey(session: SessionPrincipal, id: string, dto: ApiKeyUpdateDto): Promise<ApiKeyDto> {
    await this.catalog.checkScope(dto.models);
    return this.keys.update(id, dto, session.workspaceId);
  }

  revokeKey(session: SessionPrincipal, id: string): Promise<ApiKeyDto> {
    return this.keys.revoke(id, session.workspaceId);
  }

  usageLogs(session: SessionPrincipal, q: UsageLogQueryDto): Promise<UsageLogPageDto> {
    return this.usage.list(session.workspaceId, q);
  }

  usageSummary(session: SessionPrincipal, q: UsageTotalsQueryDto): Promise<UsageSummaryDto> {
    return this.usage.summary(session.workspaceId, q);
  }

  ledger(session: SessionPrincipal, q: PageQueryDto): Promise<LedgerPageDto> {
    return this.billing.ledger(session.workspaceId, q.limit ?? 20, q.cursor);
  }

  async models(): Promise<DashboardModelListDto> {
    return { data: await this.catalog.sellablePrices() };
  }
}
