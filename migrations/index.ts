// Every migration, in order. `npm run migration:generate` writes a new file here: add its class below.
import { Initial1764100000000 } from './1764100000000-Initial';
import { ProviderSettings1764200000000 } from './1764200000000-ProviderSettings';
import { UsageOutcomeUnknown1764200000100 } from './1764200000100-UsageOutcomeUnknown';
import { Accounts1764300000000 } from './1764300000000-Accounts';
import { DashboardUsage1764300000100 } from './1764300000100-DashboardUsage';
import { Payments1764400000000 } from './1764400000000-Payments';
import { ProviderFailover1764400000200 } from './1764400000200-ProviderFailover';
import { UsageLogPartitions1764400000500 } from './1764400000500-UsageLogPartitions';
import { EscrowLeases1764500000000 } from './1764500000000-EscrowLeases';

export const MIGRATIONS = [
  Initial1764100000000,
  ProviderSettings1764200000000,
  UsageOutcomeUnknown1764200000100,
  Accounts1764300000000,
  DashboardUsage1764300000100,
  Payments1764400000000,
  ProviderFailover1764400000200,
  UsageLogPartitions1764400000500,
  EscrowLeases1764500000000,
];
