import { applyDecorators, SetMetadata } from '@nestjs/common';
import { ApiBearerAuth, ApiSecurity } from '@nestjs/swagger';

/**
 * Who may call a route: metadata read by the one global guard (auth/). Pure decorators, so
 * controllers of any domain can use them without importing auth/ (which imports the domains
 * it authenticates with).
 */
export const AUTH_KIND = 'nexo:auth-kind';
export type AuthKind = 'public' | 'admin' | 'metrics' | 'api-key' | 'session';

/** The least role a session route needs (`@RequireRole('owner')`). */
export const REQUIRED_ROLE = 'nexo:required-role';
export type WorkspaceRole = 'owner' | 'member';

/** No credentials needed (health, docs, webhooks, sign-up and login). */
export const Public = () => SetMetadata(AUTH_KIND, 'public' satisfies AuthKind);

/** `Authorization: Bearer $ADMIN_TOKEN`. */
export const AdminOnly = () => applyDecorators(SetMetadata(AUTH_KIND, 'admin' satisfies AuthKind), ApiBearerAuth('admin'));

/** `Authorization: Bearer $METRICS_TOKEN` or `$ADMIN_TOKEN`: Prometheus metrics show revenue. */
export const MetricsAuth = () => applyDecorators(SetMetadata(AUTH_KIND, 'metrics' satisfies AuthKind), ApiBearerAuth('admin'));

/** `Authorization: Bearer <api key>`; the default for every route without another marker. */
export const ApiKeyAuth = () => applyDecorators(SetMetadata(AUTH_KIND, 'api-key' satisfies AuthKind), ApiSecurity('api-key'));

/**
 * `Authorization: Bearer <session token>` (from `POST /auth/login`): the dashboard's routes.
 * API keys never open them, and sessions never open the API-key routes.
 */
export const SessionAuth = () => applyDecorators(SetMetadata(AUTH_KIND, 'session' satisfies AuthKind), ApiBearerAuth('session'));

/**
 * A session route only members of this role may use (`owner`: delete the workspace, change
 * its members); implies SessionAuth. Refused with 403 `permission_denied`.
 */
export const RequireRole = (role: WorkspaceRole) => applyDecorators(SessionAuth(), SetMetadata(REQUIRED_ROLE, role));

/** Whether a member with `role` may use a route that requires `required`. */
export function roleSatisfies(role: WorkspaceRole, required: WorkspaceRole | undefined): boolean {
  return required === undefined || required === 'member' || role === 'owner';
}
