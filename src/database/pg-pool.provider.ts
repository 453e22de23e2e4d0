import { Logger, Provider } from '@nestjs/common';
import { Pool } from 'pg';
import { AppConfig } from '../config/app-config';
import { poolOptions } from './data-source-options';

/**
 * The pg pool of the money statements (nexo_place_hold, nexo_settle, nexo_settle_many): they
 * run on every request, as named (prepared) statements, without TypeORM's query wrapper.
 */
export const PG_POOL = Symbol('PG_POOL');

export const pgPoolProvider: Provider = {
  provide: PG_POOL,
  inject: [AppConfig],
  useFactory: (config: AppConfig): Pool => {
    const pool = new Pool({ connectionString: config.databaseUrl, ...poolOptions(20) });
    // an idle connection that dies (a PostgreSQL restart) must not take the process with it
    const logger = new Logger('PgPool');
    pool.on('error', (err) => logger.warn(`Idle PostgreSQL connection failed: ${err.message}`));
    return pool;
  },
};
