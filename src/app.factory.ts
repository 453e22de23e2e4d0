import { INestApplication, INestApplicationContext } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { DocumentBuilder, SwaggerModule } from '@nestjs/swagger';
import type { Express } from 'express';
import type { Server } from 'node:http';
import type { DestinationStream } from 'pino';
import { AppModule } from './app.module';
import { ProxyLane } from './chat/proxy-lane';
import { requestIdMiddleware } from './common/http/body-parser';
import { publicApiCors } from './common/http/public-api-cors';
import { requestScopeMiddleware } from './common/http/request-scope';
import { AppConfig } from './config/app-config';
import { HttpDrain } from './health/http-drain.service';
import { accessLog } from './logging/access-log';
import { AppLogger } from './logging/app-logger';
import { MetricsService } from './metrics/metrics.service';
import { WEB_APP_ROOT } from './web/web-app.constants';
import { webAppSecurityHeaders } from './web/web-app.security';

/**
 * The process's logger: JSON lines in production and tests, short text lines in development,
 * at LOG_LEVEL; the configured secrets are scrubbed from anything written.
 */
export function appLogger(config: AppConfig, destination?: DestinationStream): AppLogger {
  return new AppLogger({
    level: config.logLevel,
    format: config.nodeEnv === 'development' ? 'text' : 'json',
    secrets: [
      config.adminToken,
      config.metricsToken,
      config.jwtSecret,
      config.stripe.secretKey,
      config.stripe.webhookSecret,
      ...Object.values(config.providerOverrides).map((o) => o.apiKey),
    ],
    destination,
  });
}

/** The HTTP application, set up identically for `npm start` and the tests. */
export async function createHttpApp(config: AppConfig, logger: AppLogger = appLogger(config)): Promise<INestApplication> {
  const app = await NestFactory.create(AppModule.forRoot(config), { bodyParser: false, logger });
  const express = app.getHttpAdapter().getInstance() as Express;
  express.disable('x-powered-by');
  express.set('etag', false);
  // first: what a graceful shutdown waits for; then the request's id and scope; then, once it
  // has finished, its access line and metrics; then the public API's CORS (preflights end there)
  const drain = app.get(HttpDrain);
  const server = app.getHttpServer() as Server;
  drain.attach(server);
  const first = [drain.track, requestIdMiddleware, accessLog(logger, app.get(MetricsService), [WEB_APP_ROOT]), publicApiCors];
  for (const middleware of first) app.use(middleware);
  // the lane runs `first` only: its requests pass their id to what logs (request-scope.ts)
  app.use(requestScopeMiddleware);
  app.useGlobalInterceptors(drain);
  // the two proxy routes skip Express's router and Nest's layers (same middleware, guard, checks, filter)
  app.get(ProxyLane).attach(server, express, first);
  app.use(WEB_APP_ROOT, webAppSecurityHeaders());
  // no body parser here: the guard reads a body once its key or admin token has been checked
  setupDocs(app);
  // SIGTERM and SIGINT are handled by main.ts (drain, then close); tests close the app themselves
  return app;
}

/** Workers only (NEXO_ROLE=worker): no HTTP server. */
export async function createWorkerContext(config: AppConfig, logger: AppLogger = appLogger(config)): Promise<INestApplicationContext> {
  return NestFactory.createApplicationContext(AppModule.forRoot(config), { logger });
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
