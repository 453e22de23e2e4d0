import { DynamicModule, Logger, Module } from '@nestjs/common';
import { ServeStaticModule } from '@nestjs/serve-static';
import type { Response } from 'express';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { WebAppController } from './web-app.controller';
import { WEB_APP_ROOT } from './web-app.constants';

/**
 * The customer dashboard (web/, built by Vite into dist/web by the same stale-check as the
 * server), served as static files under /app/. Any other path under /app/ without a file
 * extension answers index.html (the app's history routing); a missing file (a path whose last
 * segment has a dot) falls through to the gateway's 404 in the error shape, as every unknown
 * route outside /app/ does. Helmet's headers for these paths are set in app.factory.ts.
 */
@Module({})
export class WebAppModule {
  private static readonly logger = new Logger('WebApp');

  static register(): DynamicModule {
    const rootPath = webDistPath();
    if (!existsSync(join(rootPath, 'index.html'))) {
      WebAppModule.logger.warn(
        `The dashboard is not built (${rootPath} has no index.html): run \`npm run build\`. ${WEB_APP_ROOT}/ answers 404.`,
      );
      return { module: WebAppModule, controllers: [WebAppController] };
    }
    return {
      module: WebAppModule,
      controllers: [WebAppController],
      imports: [
        ServeStaticModule.forRoot({
          rootPath,
          serveRoot: WEB_APP_ROOT,
          exclude: /\/[^/]*\.[^/]*$/,
          serveStaticOptions: {
            index: 'index.html',
            fallthrough: true,
            dotfiles: 'ignore',
            setHeaders: cacheHeaders,
          },
        }),
      ],
    };
  }
}

/** Hashed assets never change; index.html must be fetched again so a new build is picked up. */
function cacheHeaders(res: Response, path: string): void {
  if (path.includes(`${join('web', 'assets')}`)) res.setHeader('Cache-Control', 'public, max-age=31536000, immutable');
  else res.setHeader('Cache-Control', 'no-cache');
}

/** dist/web of this checkout, whether the server runs compiled (dist/src/web) or from sources (jest). */
function webDistPath(): string {
  let dir = __dirname;
  while (!existsSync(join(dir, 'package.json'))) {
    const parent = dirname(dir);
    if (parent === dir) break;
    dir = parent;
  }
  return join(dir, 'dist', 'web');
}
