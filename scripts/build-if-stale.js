#!/usr/bin/env node
// Compiles the TypeScript sources when dist/ is missing or older than any source file
// (always with --force: `npm run build`).
'use strict';
const { statSync, readdirSync, existsSync } = require('node:fs');
const { join } = require('node:path');
const { execFileSync } = require('node:child_process');

const root = join(__dirname, '..');
// written only after a successful build (tsc's own .tsbuildinfo also changes on --noEmit runs)
const marker = join(root, 'dist', '.build-stamp');

function newest(dir) {
  let latest = 0;
  if (!existsSync(dir)) return latest;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) latest = Math.max(latest, newest(path));
    else if (entry.name.endsWith('.ts')) latest = Math.max(latest, statSync(path).mtimeMs);
  }
  return latest;
}

function isStale() {
  if (!existsSync(marker) || !existsSync(join(root, 'dist', 'src', 'main.js'))) return true;
  const built = statSync(marker).mtimeMs;
  const sources = Math.max(
    newest(join(root, 'src')),
    newest(join(root, 'migrations')),
    ...['tsconfig.json', 'tsconfig.build.json', 'package-lock.json'].map((f) => statSync(join(root, f)).mtimeMs),
  );
  return sources > built;
}

if (process.argv.includes('--force') || isStale()) {
  process.stdout.write('Building NexoRouter into dist/ ...\n');
  execFileSync(process.execPath, [require.resolve('typescript/bin/tsc'), '-p', join(root, 'tsconfig.build.json')], {
    stdio: 'inherit',
    cwd: root,
  });
  require('node:fs').writeFileSync(marker, `${new Date().toISOString()}\n`);
}
