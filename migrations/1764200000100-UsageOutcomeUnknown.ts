import { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * A usage log may have no status: the sweeper records a request whose hold expired with no
 * settlement (its process died, or Redis lost the job) as `outcome_unknown`, never as a
 * status the client may not have seen.
 */
export class UsageOutcomeUnknown1764200000100 implements MigrationInterface {
  name = 'UsageOutcomeUnknown1764200000100';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`ALTER TABLE usage_logs ALTER COLUMN status DROP NOT NULL`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`UPDATE usage_logs SET status = 0 WHERE status IS NULL`);
    await q.query(`ALTER TABLE usage_logs ALTER COLUMN status SET NOT NULL`);
  }
}
