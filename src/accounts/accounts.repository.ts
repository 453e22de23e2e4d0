import { Injectable } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { DataSource } from 'typeorm';
import type { WorkspaceRole } from '../common/auth-scope';
import { rowsOf } from '../database/sql';

export interface NewAccount {
  email: string;
  passwordHash: string;
  workspaceName: string;
  rpmLimit: number | null;
  tpmLimit: number | null;
}

export interface Credentials {
  id: string;
  passwordHash: string;
  tokenVersion: number;
}

/** What the guard checks a session token against, read together. */
export interface SessionState {
  email: string;
  tokenVersion: number;
  /** The user's role in the token's workspace; null when no longer a member. */
  role: WorkspaceRole | null;
}

// A membership counts unless it is an invitation not yet accepted.
const ACTIVE_MEMBER = '(m.invited_by IS NULL OR m.accepted_at IS NOT NULL)';

/** Users, their workspace memberships and token versions. */
@Injectable()
export class AccountsRepository {
  constructor(@InjectDataSource() private readonly db: DataSource) {}

  /**
   * The user, their workspace and the owner membership, in one transaction: all three or
   * nothing. The workspace row is written here (not by workspaces/) so that it shares that
   * transaction. null when the email is taken.
   */
  async createAccount(a: NewAccount): Promise<{ userId: string; workspaceId: string } | null> {
    try {
      return await this.db.transaction(async (tx) => {
        const [user] = await rowsOf<{ id: string }>(tx, 'INSERT INTO users (email, password_hash) VALUES ($1, $2) RETURNING id', [
          a.email,
          a.passwordHash,
        ]);
        const [workspace] = await rowsOf<{ id: string }>(
          tx,
          'INSERT INTO workspaces (name, rpm_limit, tpm_limit) VALUES ($1, $2, $3) RETURNING id',
          [a.workspaceName, a.rpmLimit, a.tpmLimit],
        );
        await rowsOf(tx, `INSERT INTO workspace_members (workspace_id, user_id, role, accepted_at) VALUES ($1, $2, 'owner', now())`, [
          workspace.id,
          user.id,
        ]);
        return { userId: user.id, workspaceId: workspace.id };
      });
    } catch (err) {
      const e = err as { code?: string; constraint?: string; driverError?: { constraint?: string } };
      const constraint = e.constraint ?? e.driverError?.constraint;
      if (e.code === '23505' && constraint === 'users_email_key') return null;
      throw err;
    }
  }

  /** Takes back an account whose sign-up could not be finished (its workspace goes with it). */
  async deleteAccount(userId: string, workspaceId: string): Promise<void> {
    await this.db.transaction(async (tx) => {
      await rowsOf(tx, 'DELETE FROM workspaces WHERE id = $1', [workspaceId]);
      await rowsOf(tx, 'DELETE FROM users WHERE id = $1', [userId]);
    });
  }

  async findCredentials(email: string): Promise<Credentials | null> {
    const rows: Array<{ id: string; password_hash: string; token_version: number }> = await this.db.query(
      'SELECT id, password_hash, token_version FROM users WHERE email = $1',
      [email],
    );
    const row = rows[0];
    return row ? { id: row.id, passwordHash: row.password_hash, tokenVersion: row.token_version } : null;
  }

  /** The workspace a login opens: one the user owns, else the oldest membership. */
  async defaultMembership(userId: string): Promise<{ workspaceId: string; role: WorkspaceRole } | null> {
    const rows: Array<{ workspace_id: string; role: WorkspaceRole }> = await this.db.query(
      `SELECT m.workspace_id, m.role FROM workspace_members m
        WHERE m.user_id = $1 AND ${ACTIVE_MEMBER}
        ORDER BY (m.role = 'owner') DESC, m.created_at, m.workspace_id LIMIT 1`,
      [userId],
    );
    return rows[0] ? { workspaceId: rows[0].workspace_id, role: rows[0].role } : null;
  }

  /** The user's email, token version and role in the workspace; null when the user is gone. */
  async sessionState(userId: string, workspaceId: string): Promise<SessionState | null> {
    const rows: Array<{ email: string; token_version: number; role: WorkspaceRole | null }> = await this.db.query(
      `SELECT u.email, u.token_version, m.role FROM users u
         LEFT JOIN workspace_members m ON m.user_id = u.id AND m.workspace_id = $2 AND ${ACTIVE_MEMBER}
        WHERE u.id = $1`,
      [userId, workspaceId],
    );
    const row = rows[0];
    return row ? { email: row.email, tokenVersion: row.token_version, role: row.role } : null;
  }

  /** Ends every session of the user: tokens carry the version they were issued with. */
  async bumpTokenVersion(userId: string): Promise<void> {
    await this.db.query('UPDATE users SET token_version = token_version + 1, updated_at = now() WHERE id = $1', [userId]);
  }
}
