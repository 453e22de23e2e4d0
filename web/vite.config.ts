import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vite';

// The dashboard, built by scripts/build-if-stale.js (`npm start`, `npm test`, `npm run build`) into
// dist/web, which the gateway serves under /app/. No React plugin is needed: esbuild compiles JSX
// with the automatic runtime; there is no dev server in this project's workflow.
export default defineConfig({
  root: fileURLToPath(new URL('.', import.meta.url)),
  base: '/app/',
  publicDir: false,
  logLevel: 'warn',
  esbuild: { jsx: 'automatic' },
  build: {
    outDir: fileURLToPath(new URL('../dist/web', import.meta.url)),
    emptyOutDir: true,
    target: 'es2022',
    // the CSP allows no inline script: no polyfill snippet, no inlined assets
    modulePreload: { polyfill: false },
    assetsInlineLimit: 0,
    chunkSizeWarningLimit: 1000,
  },
});
