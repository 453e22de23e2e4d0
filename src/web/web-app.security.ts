import type { RequestHandler } from 'express';
import helmet from 'helmet';

/**
 * Helmet's hardening headers for the dashboard's pages, with a strict Content-Security-Policy:
 * the app loads only its own scripts, styles and images and talks only to this gateway; no
 * inline script or style element, no third-party origin, no framing. (React's `style` prop sets
 * CSSOM properties, which style-src does not govern.) The API routes do not get these headers:
 * they answer JSON to programs, and the hot path stays lean.
 */
export function webAppSecurityHeaders(): RequestHandler {
  return helmet({
    contentSecurityPolicy: {
      useDefaults: false,
      directives: {
        defaultSrc: ["'self'"],
        scriptSrc: ["'self'"],
        styleSrc: ["'self'"],
        imgSrc: ["'self'", 'data:'],
        fontSrc: ["'self'"],
        connectSrc: ["'self'"],
        objectSrc: ["'none'"],
        baseUri: ["'self'"],
        formAction: ["'self'"],
        frameAncestors: ["'none'"],
      },
    },
    referrerPolicy: { policy: 'no-referrer' },
    crossOriginEmbedderPolicy: false,
  });
}
