import { ConsoleLogger, INestApplication, INestApplicationContext, LoggerService, LogLevel } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { DocumentBuilder, SwaggerModule } from '@nestjs/swagger';
import type { Express } from 'express';
import { AppModule } from './app.module';
import { requestIdMiddleware } from './common/http/body-parser';
import { AppConfig } from './config/app-config';
import { WEB_APP_ROOT } from './web/web-app.constants';
import { webAppSecurityHeaders } from './web/web-app.security';

/** Quiet in tests; one JSON object per line in production (for log shippers); readable otherwise. */
export function appLogger(config: AppConfig): LoggerService {
  const order: LogLevel[] = ['fatal', 'error', 'warn', 'log', 'debug'];
  const logLevels = order.slice(0, order.indexOf(config.logLevel) + 1);
  return new ConsoleLogger({ logLevels, json: config.isProduction });
}

/** The HTTP application, set up identically for `npm start` and the tests. */
export async function createHttpApp(config: AppConfig): Promise<INestApplication> {
  const app = await NestFactory.create(AppModule.forRoot(config), { bodyParser: false, logger: appLogger(config) });
  const express = app.getHttpAdapter().getInstance() as Express;
  express.disable('x-powered-by');
  express.set('etag', false);
  app.use(requestIdMiddleware);
  app.use(WEB_APP_ROOT, webAppSecurityHeaders());
  // no body parser here: the guard reads a body once its key or admin token has been checked
  setupDocs(app);
  app.enableShutdownHooks();
  return app;
}

/** Workers only (NEXO_ROLE=worker): no HTTP server. */
export async function createWorkerContext(config: AppConfig): Promise<INestApplicationContext> {
  const ctx = await NestFactory.createApplicationContext(AppModule.forRoot(config), { logger: appLogger(config) });
  ctx.enableShutdownHooks();
  return ctx;
}

function setupDocs(app: INestApplication): void {
  const document = SwaggerModule.createDocument(
    app,
    new DocumentBuilder()
      .setTitle('NexoRouter')
      .setDescription(
        'OpenAI-compatible model gateway with prepaid billing. Money is in micro-USD (1 USD = 1,000,000). ' +
          'Public API: `Authorization: Bearer <api key>`. Admin API: `Authorization: Bearer $ADMIN_TOKEN`. ' +
          'Dashboard API: `Authorization: Bearer <session token>` from `POST /auth/login`.',
      )
      .setVersion('1')
      .addBearerAuth({ type: 'http', scheme: 'bearer', description: 'NexoRouter API key (nxr_...)' }, 'api-key')
      .addBearerAuth({ type: 'http', scheme: 'bearer', description: 'ADMIN_TOKEN' }, 'admin')
      .addBearerAuth({ type: 'http', scheme: 'bearer', bearerFormat: 'JWT', description: 'Session token from POST /auth/login' }, 'session')
      .build(),
  );
  SwaggerModule.setup('docs', app, document, { jsonDocumentUrl: 'docs-json', customSiteTitle: 'NexoRouter API' });
}
