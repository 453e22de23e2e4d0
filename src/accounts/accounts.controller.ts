import { Body, Controller, Get, HttpCode, Post, UsePipes } from '@nestjs/common';
import {
  ApiConflictResponse,
  ApiCreatedResponse,
  ApiNoContentResponse,
  ApiOkResponse,
  ApiOperation,
  ApiTags,
  ApiTooManyRequestsResponse,
  ApiUnauthorizedResponse,
} from '@nestjs/swagger';
import { Public, SessionAuth } from '../common/auth-scope';
import { strictValidation } from '../common/validation';
import { LoginDto, SessionDto, SessionTokenDto, SignupDto, SignupResultDto } from './accounts.dto';
import { AccountsService } from './accounts.service';
import { ClientAddress } from './client-address.decorator';
import { CurrentSession, CurrentSessionToken } from './current-session.decorator';
import type { SessionPrincipal, SessionTokenRef } from './session-principal';

@ApiTags('Dashboard: accounts')
@UsePipes(strictValidation)
@Controller('auth')
export class AccountsController {
  constructor(private readonly accounts: AccountsService) {}

  @Post('signup')
  @Public()
  @ApiOperation({ summary: 'Create an account, its workspace (you are its owner) and a session' })
  @ApiCreatedResponse({ type: SignupResultDto })
  @ApiConflictResponse({ description: '`email_taken`' })
  @ApiTooManyRequestsResponse({ description: 'too many sign-ups from this address (`Retry-After`)' })
  signup(@Body() dto: SignupDto, @ClientAddress() address: string | undefined): Promise<SignupResultDto> {
    return this.accounts.signup(dto, address);
  }

  @Post('login')
  @Public()
  @HttpCode(200)
  @ApiOperation({ summary: 'A session token (valid for an hour) for the dashboard API' })
  @ApiOkResponse({ type: SessionTokenDto })
  @ApiUnauthorizedResponse({ description: '`invalid_credentials`: wrong password or unknown email, alike' })
  @ApiTooManyRequestsResponse({ description: 'too many failed logins for this account or address (`Retry-After`)' })
  login(@Body() dto: LoginDto, @ClientAddress() address: string | undefined): Promise<SessionTokenDto> {
    return this.accounts.login(dto, address);
  }

  @Get('session')
  @SessionAuth()
  @ApiOperation({ summary: 'Who is signed in: the user, the workspace, the role and the balance' })
  @ApiOkResponse({ type: SessionDto })
  session(@CurrentSession() session: SessionPrincipal): Promise<SessionDto> {
    return this.accounts.session(session);
  }

  @Post('logout')
  @SessionAuth()
  @HttpCode(204)
  @ApiOperation({ summary: 'End this session (on every gateway process at once)' })
  @ApiNoContentResponse()
  logout(@CurrentSession() session: SessionPrincipal, @CurrentSessionToken() token: SessionTokenRef): Promise<void> {
    return this.accounts.logout(session, token);
  }

  @Post('logout-all')
  @SessionAuth()
  @HttpCode(204)
  @ApiOperation({ summary: 'End every session of this user (on every gateway process within a second)' })
  @ApiNoContentResponse()
  logoutAll(@CurrentSession() session: SessionPrincipal): Promise<void> {
    return this.accounts.logoutAll(session);
  }
}
