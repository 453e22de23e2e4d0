import { Module } from '@nestjs/common';
import { JwtModule } from '@nestjs/jwt';
import { TypeOrmModule } from '@nestjs/typeorm';
import { BillingModule } from '../billing/billing.module';
import { AppConfig } from '../config/app-config';
import { WorkspacesModule } from '../workspaces/workspaces.module';
import { AccountsController } from './accounts.controller';
import { AccountsRepository } from './accounts.repository';
import { AccountsService } from './accounts.service';
import { AuthThrottle } from './auth-throttle';
import { SESSION_AUDIENCE, SESSION_ISSUER, SESSION_TTL_SECONDS, SessionService } from './session.service';
import { UserEntity } from './user.entity';
import { WorkspaceMemberEntity } from './workspace-member.entity';

/**
 * Dashboard accounts: users, workspace memberships, sign-up, login and sessions. The global
 * guard (auth/) verifies sessions with SessionService.
 */
@Module({
  imports: [
    TypeOrmModule.forFeature([UserEntity, WorkspaceMemberEntity]),
    JwtModule.registerAsync({
      inject: [AppConfig],
      useFactory: (config: AppConfig) => ({
        secret: config.jwtSecret,
        signOptions: { algorithm: 'HS256', expiresIn: SESSION_TTL_SECONDS, issuer: SESSION_ISSUER, audience: SESSION_AUDIENCE },
        verifyOptions: { algorithms: ['HS256'], issuer: SESSION_ISSUER, audience: SESSION_AUDIENCE },
      }),
    }),
    WorkspacesModule,
    BillingModule,
  ],
  controllers: [AccountsController],
  providers: [AccountsRepository, AccountsService, AuthThrottle, SessionService],
  exports: [SessionService],
})
export class AccountsModule {}
