import { Injectable } from '@nestjs/common';
import { BillingService } from '../billing/billing.service';
import { KeysService } from '../keys/keys.service';
import { WorkspacesService } from '../workspaces/workspaces.service';

export const DEMO_REFERENCE = 'seed:demo-workspace';
export const DEMO_CREDIT_MICROS = 5_000_000;

/** The funded workspace a newcomer gets on the first development start. */
@Injectable()
export class DemoWorkspaceService {
  constructor(
    private readonly workspaces: WorkspacesService,
    private readonly billing: BillingService,
    private readonly keys: KeysService,
  ) {}

  async demoWorkspaceId(): Promise<string | null> {
    return (await this.billing.findEntry(DEMO_REFERENCE))?.workspace_id ?? null;
  }

  /**
   * Creates it once: its credit carries a unique ledger reference, so of two processes racing
   * only one funds its workspace, and the other takes its own back. Returns the first key, or
   * null when the demo workspace existed.
   */
  async ensure(): Promise<{ workspaceId: string; key: string } | null> {
    if (await this.demoWorkspaceId()) return null;
    const { id: workspaceId } = await this.workspaces.create({ name: 'Demo workspace' });
    if (!(await this.billing.creditOnce(workspaceId, DEMO_CREDIT_MICROS, DEMO_REFERENCE, 'development demo credit'))) {
      await this.workspaces.discard(workspaceId); // another process created it meanwhile
      return null;
    }
    const created = await this.keys.create(workspaceId, { name: 'demo key' });
    return { workspaceId, key: created.key };
  }
}
