import { Inject, Module, OnApplicationShutdown } from '@nestjs/common';
import type { Pool } from 'pg';
import { DatabaseHealth } from './database-health';
import { PG_POOL, pgPoolProvider } from './pg-pool.provider';

/** The pg pool of the money statements and the database health check; TypeORM's own connection is AppModule's. */
@Module({
  providers: [pgPoolProvider, DatabaseHealth],
  exports: [PG_POOL, DatabaseHealth],
})
export class DatabaseModule implements OnApplicationShutdown {
  constructor(@Inject(PG_POOL) private readonly pool: Pool) {}

  async onApplicationShutdown(): Promise<void> {
    if (!this.pool.ended && !this.pool.ending) await this.pool.end();
  }
}
