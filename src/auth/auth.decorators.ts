import { applyDecorators, SetMetadata } from '@nestjs/common';
import { ApiBearerAuth, ApiSecurity } from '@nestjs/swagger';

/** The key that authenticated this request: keys/ owns it, routes in any domain read it. */
export { CurrentKey } from '../keys/current-key.decorator';

export const AUTH_KIND = 'nexo:auth-kind';
export type AuthKind = 'public' | 'admin' | 'metrics' | 'api-key';

/** No credentials needed (health, docs, webhooks). */
export const Public = () => SetMetadata(AUTH_KIND, 'public' satisfies AuthKind);

/** `Authorization: Bearer $ADMIN_TOKEN`. */
export const AdminOnly = () => applyDecorators(SetMetadata(AUTH_KIND, 'admin' satisfies AuthKind), ApiBearerAuth('admin'));

/** `Authorization: Bearer $METRICS_TOKEN` or `$ADMIN_TOKEN`: Prometheus metrics show revenue. */
export const MetricsAuth = () => applyDecorators(SetMetadata(AUTH_KIND, 'metrics' satisfies AuthKind), ApiBearerAuth('admin'));

/** `Authorization: Bearer <api key>`; the default for every route without another marker. */
export const ApiKeyAuth = () => applyDecorators(SetMetadata(AUTH_KIND, 'api-key' satisfies AuthKind), ApiSecurity('api-key'));
