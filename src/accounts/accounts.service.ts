import { Injectable, Logger, OnModuleInit } from '@nestjs/common';
import * as argon2 from 'argon2';
import { randomBytes } from 'node:crypto';
import { BillingService } from '../billing/billing.service';
import { AppConfig } from '../config/app-config';
import { WorkspacesService } from '../workspaces/workspaces.service';
import { EmailTakenError, InvalidCredentialsError } from './accounts.errors';
import { LoginDto, SessionDto, SessionTokenDto, SignupDto, SignupResultDto } from './accounts.dto';
import { AccountsRepository } from './accounts.repository';
import { AuthThrottle } from './auth-throttle';
import type { SessionPrincipal, SessionTokenRef } from './session-principal';
import { SessionService } from './session.service';

/** argon2id with OWASP's parameters (19 MiB, 2 passes, 1 lane): about 0.1 s a hash. */
export const PASSWORD_HASH_OPTIONS = { type: argon2.argon2id, memoryCost: 19_456, timeCost: 2, parallelism: 1 } as const;

/** Sign-up, login and logout of dashboard users. */
@Injectable()
export class AccountsService implements OnModuleInit {
  private readonly logger = new Logger(AccountsService.name);
  /** Verified against when the email is unknown, so both refusals take as long. */
  private dummyHash: Promise<string>;

  constructor(
    private readonly accounts: AccountsRepository,
    private readonly sessions: SessionService,
    private readonly throttle: AuthThrottle,
    private readonly workspaces: WorkspacesService,
    private readonly billing: BillingService,
    private readonly config: AppConfig,
  ) {}

  onModuleInit(): void {
    this.dummyHash = argon2.hash(randomBytes(32).toString('base64'), PASSWORD_HASH_OPTIONS);
    this.dummyHash.catch(() => undefined);
  }

  /**
   * A user, their workspace (with sign-up's limits) and owner membership in one transaction,
   * then the sign-up credit, once, under the reference `signup:<workspace id>`. When the credit
   * cannot be written, the account is taken back: sign-up then failed as a whole.
   */
  async signup(dto: SignupDto, address: string | undefined): Promise<SignupResultDto> {
    await this.throttle.takeSignup(address);
    const passwordHash = await argon2.hash(dto.password, PASSWORD_HASH_OPTIONS);
    const { rpmLimit, tpmLimit, creditMicros } = this.config.signup;
    const created = await this.accounts.createAccount({
      email: dto.email,
      passwordHash,
      workspaceName: dto.workspace_name,
      rpmLimit,
      tpmLimit,
    });
    if (!created) throw new EmailTakenError();
    const { userId, workspaceId } = created;
    if (creditMicros > 0) {
      try {
        await this.billing.creditOnce(workspaceId, creditMicros, `signup:${workspaceId}`, 'Sign-up credit');
      } catch (err) {
        this.logger.error(`Sign-up credit failed, account taken back: ${(err as Error).message}`);
        await this.accounts.deleteAccount(userId, workspaceId);
        throw err;
      }
    }
    const [token, session] = await Promise.all([
      this.sessions.issue(userId, workspaceId, 'owner', 0),
      this.session({ userId, workspaceId, role: 'owner', email: dto.email }),
    ]);
    return { ...token, ...session };
  }

  /**
   * A session for the user's workspace. A wrong password and an unknown email are the same 401,
   * after the same work (an argon2 verification either way); attempts are throttled per email
   * and per client address before the password is checked.
   */
  async login(dto: LoginDto, address: string | undefined): Promise<SessionTokenDto> {
    await this.throttle.takeLogin(dto.email, address);
    const user = await this.accounts.findCredentials(dto.email);
    const matches = await verifyPassword(user ? user.passwordHash : await this.dummyHash, dto.password);
    if (!user || !matches) throw new InvalidCredentialsError();
    await this.throttle.loginSucceeded(dto.email, address);
    const membership = await this.accounts.defaultMembership(user.id);
    if (!membership) throw new InvalidCredentialsError();
    return this.sessions.issue(user.id, membership.workspaceId, membership.role, user.tokenVersion);
  }

  logout(principal: SessionPrincipal, token: SessionTokenRef): Promise<void> {
    return this.sessions.end(principal.userId, token);
  }

  logoutAll(principal: SessionPrincipal): Promise<void> {
    return this.sessions.endAll(principal.userId);
  }

  /** Who is signed in, and their workspace's balance. */
  async session(principal: SessionPrincipal): Promise<SessionDto> {
    const w = await this.workspaces.get(principal.workspaceId);
    return {
      user: { id: principal.userId, email: principal.email },
      workspace: { id: w.id, name: w.name, role: principal.role, balance_micros: w.balance_micros, available_micros: w.available_micros },
    };
  }
}

async function verifyPassword(hash: string, password: string): Promise<boolean> {
  try {
    return await argon2.verify(hash, password);
  } catch {
    return false;
  }
}
