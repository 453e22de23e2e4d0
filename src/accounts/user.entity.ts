import { Column, CreateDateColumn, Entity, PrimaryGeneratedColumn, UpdateDateColumn } from 'typeorm';

/** A person who signs in to the dashboard. */
@Entity({ name: 'users' })
export class UserEntity {
  @PrimaryGeneratedColumn('uuid')
  id: string;

  /** Trimmed and lower-cased (a CHECK holds it so); unique. */
  @Column({ type: 'text', unique: true })
  email: string;

  /** argon2id, PHC string. */
  @Column({ name: 'password_hash', type: 'text', select: false })
  passwordHash: string;

  /** In every session token; bumping it ends all the user's sessions. */
  @Column({ name: 'token_version', type: 'integer', default: 0 })
  tokenVersion: number;

  @CreateDateColumn({ name: 'created_at', type: 'timestamptz' })
  createdAt: Date;

  @UpdateDateColumn({ name: 'updated_at', type: 'timestamptz' })
  updatedAt: Date;
}
