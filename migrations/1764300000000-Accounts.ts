import { MigrationInterface, QueryRunner } from 'typeorm';

/** Dashboard accounts: users (argon2id password hashes) and their workspace memberships. */
export class Accounts1764300000000 implements MigrationInterface {
  name = 'Accounts1764300000000';

  async up(q: QueryRunner): Promise<void> {
    // lower-case as the gateway makes it (ASCII letters: the "C" collation; JavaScript lower-cases more)
    await q.query(`
      CREATE TABLE users (
        id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
        email text NOT NULL UNIQUE CHECK (email = lower(email COLLATE "C") AND email = btrim(email) AND length(email) BETWEEN 3 AND 254),
        password_hash text NOT NULL,
        token_version integer NOT NULL DEFAULT 0 CHECK (token_version >= 0),
        created_at timestamptz NOT NULL DEFAULT now(),
        updated_at timestamptz NOT NULL DEFAULT now()
      )`);
    // invited_by / accepted_at: ready for invitations (a pending invitation has no accepted_at)
    await q.query(`
      CREATE TABLE workspace_members (
        workspace_id uuid NOT NULL REFERENCES workspaces(id) ON DELETE CASCADE,
        user_id uuid NOT NULL REFERENCES users(id) ON DELETE CASCADE,
        role text NOT NULL CHECK (role IN ('owner', 'member')),
        invited_by uuid REFERENCES users(id) ON DELETE SET NULL,
        accepted_at timestamptz,
        created_at timestamptz NOT NULL DEFAULT now(),
        PRIMARY KEY (workspace_id, user_id)
      )`);
    await q.query(`CREATE INDEX workspace_members_user_idx ON workspace_members (user_id)`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`DROP TABLE IF EXISTS workspace_members`);
    await q.query(`DROP TABLE IF EXISTS users`);
  }
}
