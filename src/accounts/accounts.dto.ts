import { ApiProperty } from '@nestjs/swagger';
import { Transform } from 'class-transformer';
import { IsEmail, IsString, Length, Matches, MaxLength } from 'class-validator';

const normaliseEmail = ({ value }: { value: unknown }) => (typeof value === 'string' ? value.trim().toLowerCase() : value);
const trim = ({ value }: { value: unknown }) => (typeof value === 'string' ? value.trim() : value);

export const MIN_PASSWORD_LENGTH = 10;
export const MAX_PASSWORD_LENGTH = 256;

export class SignupDto {
  /** Trimmed and lower-cased; one account per email */
  @ApiProperty({ example: 'ada@example.com', maxLength: 254 })
  @Transform(normaliseEmail)
  @IsString()
  @MaxLength(254)
  @IsEmail({}, { message: 'email must be an email address' })
  email: string;

  @ApiProperty({ minLength: MIN_PASSWORD_LENGTH, maxLength: MAX_PASSWORD_LENGTH, format: 'password' })
  @IsString()
  @Length(MIN_PASSWORD_LENGTH, MAX_PASSWORD_LENGTH)
  password: string;

  @ApiProperty({ example: 'Acme', maxLength: 200 })
  @Transform(trim)
  @IsString()
  @Length(1, 200)
  @Matches(/\S/, { message: 'workspace_name must not be blank' })
  workspace_name: string;
}

export class LoginDto {
  @ApiProperty({ example: 'ada@example.com', maxLength: 254 })
  @Transform(normaliseEmail)
  @IsString()
  @Length(1, 254)
  email: string;

  @ApiProperty({ format: 'password', maxLength: MAX_PASSWORD_LENGTH })
  @IsString()
  @Length(1, MAX_PASSWORD_LENGTH)
  password: string;
}

export class SessionTokenDto {
  /** The session token: send it as `Authorization: Bearer <access_token>` to the dashboard API */
  access_token: string;
  token_type: 'bearer';
  /** Seconds until the token expires */
  expires_in: number;
}

export class SessionUserDto {
  id: string;
  email: string;
}

export class SessionWorkspaceDto {
  id: string;
  name: string;
  role: 'owner' | 'member';
  /** Settled balance, micro-USD */
  balance_micros: number;
  /** Balance minus money held for requests in flight */
  available_micros: number;
}

/** Who is signed in: `GET /auth/session`. */
export class SessionDto {
  user: SessionUserDto;
  workspace: SessionWorkspaceDto;
}

/** `POST /auth/signup`: the new account, its workspace, and a session. */
export class SignupResultDto extends SessionTokenDto {
  user: SessionUserDto;
  workspace: SessionWorkspaceDto;
}
