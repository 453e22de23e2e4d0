import type { DataSourceOptions } from 'typeorm';
import { MIGRATIONS } from '../../migrations';
import type { AppConfig } from '../config/app-config';

/** Connection settings of every pool of a process (TypeORM's and the money statements'). */
export function poolOptions(poolSize: number): { max: number; connectionTimeoutMillis: number; application_name: string } {
  return { max: poolSize, connectionTimeoutMillis: 5_000, application_name: 'nexorouter' };
}

/**
 * Built from the validated config, for the app and the TypeORM CLI alike. Entities are not
 * listed here: each domain module registers its own (`TypeOrmModule.forFeature`, loaded by
 * `autoLoadEntities`), and the CLI data source finds them by file name.
 */
export function dataSourceOptions(config: AppConfig, poolSize = 20): DataSourceOptions {
  return {
    type: 'postgres',
    url: config.databaseUrl,
    migrations: MIGRATIONS,
    migrationsTableName: 'typeorm_migrations',
    synchronize: false,
    // failures surface as exceptions (an expected unique violation is not an error to log)
    logging: false,
    extra: poolOptions(poolSize),
  };
}
