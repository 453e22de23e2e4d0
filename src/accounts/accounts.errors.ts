import { ApiError } from '../common/errors/api-error';

/** A wrong password and an unknown email get exactly this. */
export class InvalidCredentialsError extends ApiError {
  constructor() {
    super(401, 'invalid_credentials', 'Incorrect email or password.');
  }
}

export class InvalidSessionError extends ApiError {
  constructor(
    message = 'Incorrect, expired or missing session token. Log in with POST /auth/login and send "Authorization: Bearer <access_token>".',
  ) {
    super(401, 'invalid_session', message);
  }
}

export class PermissionDeniedError extends ApiError {
  constructor(message = 'Only an owner of this workspace may do this.') {
    super(403, 'permission_denied', message);
  }
}

export class EmailTakenError extends ApiError {
  constructor() {
    super(409, 'email_taken', 'An account with this email already exists. Log in instead.', 'invalid_request_error', 'email');
  }
}
