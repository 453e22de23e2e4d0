// `npm run reconcile`: recompute balances and key spend from the ledger; exit 1 on drift.
import { DataSource } from 'typeorm';
import { ReconcileRepository } from '../billing/reconcile.repository';
import { ConfigError, loadConfig } from '../config/app-config';
import { dataSourceOptions } from '../database/data-source-options';
import { formatUsd } from '../common/money';

async function main(): Promise<void> {
  const db = new DataSource(dataSourceOptions(loadConfig(process.env), 2));
  await db.initialize();
  try {
    const books = new ReconcileRepository(db);
    const workspaces = await books.workspaceCount();
    const drifts = await books.drifts();
    const unknown = await books.unknownOutcomes();
    const leases = await books.leases();
    if (leases.live > 0 || leases.shortfallMicros > 0) {
      process.stdout.write(
        `${leases.live} escrow lease(s) live, holding ${formatUsd(leases.heldMicros)} (in the held balances above); ` +
          `${formatUsd(leases.shortfallMicros)} of usage could not be charged because a dead process's lease was closed first.\n`,
      );
    }
    if (unknown.requests > 0) {
      process.stdout.write(
        `${unknown.requests} request(s) in ${unknown.workspaces} workspace(s) have an unknown outcome: ` +
          `their holds expired with no settlement ` +
          `(a process died, or Redis lost the job) and were released at no charge (usage logs with error_code outcome_unknown).\n`,
      );
    }
    if (drifts.length === 0) {
      process.stdout.write(`Reconciled ${workspaces} workspaces: no drift.\n`);
      return;
    }
    for (const d of drifts) {
      const show = d.kind === 'usage_daily_requests' ? (n: number) => `${n} requests` : formatUsd;
      process.stdout.write(`DRIFT ${d.kind} ${d.id}: expected ${show(d.expected)}, stored ${show(d.actual)}\n`);
    }
    process.stdout.write(`Reconciled ${workspaces} workspaces: ${drifts.length} drift(s).\n`);
    process.exitCode = 1;
  } finally {
    await db.destroy();
  }
}

main().catch((err: Error) => {
  process.stderr.write(err instanceof ConfigError ? `${err.message}\n` : `reconcile failed: ${err.message}\n`);
  process.exit(2);
});
