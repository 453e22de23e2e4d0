import { Column, CreateDateColumn, Entity, Index, PrimaryColumn } from 'typeorm';
import type { WorkspaceRole } from '../common/auth-scope';

/** A user's place in a workspace. `owner` may also delete the workspace and change its members. */
@Entity({ name: 'workspace_members' })
export class WorkspaceMemberEntity {
  @PrimaryColumn({ name: 'workspace_id', type: 'uuid' })
  workspaceId: string;

  @Index('workspace_members_user_idx')
  @PrimaryColumn({ name: 'user_id', type: 'uuid' })
  userId: string;

  @Column({ type: 'text' })
  role: WorkspaceRole;

  /** For invitations (no routes yet): who invited, and when the invitation was accepted. */
  @Column({ name: 'invited_by', type: 'uuid', nullable: true })
  invitedBy: string | null;

  @Column({ name: 'accepted_at', type: 'timestamptz', nullable: true })
  acceptedAt: Date | null;

  @CreateDateColumn({ name: 'created_at', type: 'timestamptz' })
  createdAt: Date;
}
