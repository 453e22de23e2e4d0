import type { DataSourceOptions } from 'typeorm';
import { MIGRATIONS } from '../../migrations';
import type { AppConfig } from '../config/app-config';
import { ApiKeyEntity } from '../keys/api-key.entity';
import { ModelEntity } from '../catalog/model.entity';
import { ProviderEntity } from '../catalog/provider.entity';
import { HoldEntity } from '../billing/hold.entity';
import { LedgerEntryEntity } from '../billing/ledger-entry.entity';
import { UsageLogEntity } from '../usage/usage-log.entity';
import { WorkspaceEntity } from '../workspaces/workspace.entity';

export const ENTITIES = [WorkspaceEntity, ApiKeyEntity, ProviderEntity, ModelEntity, LedgerEntryEntity, HoldEntity, UsageLogEntity];

/** Built from the validated config, for the app and the TypeORM CLI alike. */
export function dataSourceOptions(config: AppConfig, poolSize = 20): DataSourceOptions {
  return {
    type: 'postgres',
    url: config.databaseUrl,
    entities: ENTITIES,
    migrations: MIGRATIONS,
    migrationsTableName: 'typeorm_migrations',
    synchronize: false,
    // failures surface as exceptions (an expected unique violation is not an error to log)
    logging: false,
    extra: { max: poolSize, connectionTimeoutMillis: 5_000, application_name: 'nexorouter' },
  };
}
