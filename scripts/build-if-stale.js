#!/usr/bin/env node
// Compiles the TypeScript sources when dist/ is missing or older than any source file, and
// builds the web dashboard (web/, Vite) into dist/web when it is missing or older than any file
// of web/ (both always with --force: `npm run build`). Compiles as `tsc -p tsconfig.build.json` does
// (incremental, same diagnostics), plus the @nestjs/swagger plugin (scripts/swagger-plugin.js),
// which tsc cannot load: the Nest CLI could, but its schematics need Node 22.
'use strict';
const { statSync, readdirSync, existsSync, readFileSync, rmSync, writeFileSync } = require('node:fs');
const { join } = require('node:path');
const { spawnSync } = require('node:child_process');

const root = join(__dirname, '..');
// written only after a successful build (tsc's own .tsbuildinfo also changes on --noEmit runs);
// holds the plugin signature, so a changed plugin or option rebuilds every file
const marker = join(root, 'dist', '.build-stamp');

/** The newest modification time of the files under `dir` whose names pass `wanted` (0 when none). */
function newest(dir, wanted = (name) => name.endsWith('.ts')) {
  let latest = 0;
  if (!existsSync(dir)) return latest;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) latest = Math.max(latest, newest(path, wanted));
    else if (wanted(entry.name)) latest = Math.max(latest, statSync(path).mtimeMs);
  }
  return latest;
}

/** The plugin signature of the last successful build, or null. */
function builtSignature() {
  if (!existsSync(marker)) return null;
  const line = readFileSync(marker, 'utf8')
    .split('\n')
    .find((l) => l.startsWith('plugin: '));
  return line ? line.slice('plugin: '.length) : null;
}

function isStale(signature) {
  if (!existsSync(marker) || !existsSync(join(root, 'dist', 'src', 'main.js'))) return true;
  if (builtSignature() !== signature) return true;
  const built = statSync(marker).mtimeMs;
  const sources = Math.max(
    newest(join(root, 'src')),
    newest(join(root, 'migrations')),
    ...['tsconfig.json', 'tsconfig.build.json', 'package-lock.json'].map((f) => statSync(join(root, f)).mtimeMs),
  );
  return sources > built;
}

/** `tsc -p tsconfig.build.json` through the compiler API; false when it reported an error. */
function compile(ts, plugin) {
  const configPath = join(root, 'tsconfig.build.json');
  const diagnostics = [];
  const config = ts.getParsedCommandLineOfConfigFile(
    configPath,
    {},
    { ...ts.sys, onUnRecoverableConfigFileDiagnostic: (d) => diagnostics.push(d) },
  );
  if (config) {
    // tsc's .tsbuildinfo knows nothing of the plugin: emitting only changed files would keep
    // files emitted without it (or with other options)
    if (builtSignature() !== plugin.signature && config.options.tsBuildInfoFile) rmSync(config.options.tsBuildInfoFile, { force: true });
    const builder = ts.createIncrementalProgram({
      rootNames: config.fileNames,
      options: config.options,
      projectReferences: config.projectReferences,
      configFileParsingDiagnostics: ts.getConfigFileParsingDiagnostics(config),
      host: ts.createIncrementalCompilerHost(config.options),
    });
    // the order tsc reports them in; semantic errors only when the syntax is sound
    diagnostics.push(
      ...builder.getConfigFileParsingDiagnostics(),
      ...builder.getOptionsDiagnostics(),
      ...builder.getGlobalDiagnostics(),
      ...builder.getSyntacticDiagnostics(),
    );
    if (!diagnostics.some((d) => d.category === ts.DiagnosticCategory.Error)) diagnostics.push(...builder.getSemanticDiagnostics());
    // like tsc without noEmitOnError, files are written even when there are type errors
    const emitted = builder.emit(undefined, undefined, undefined, false, { before: [plugin.before(builder.getProgram())] });
    diagnostics.push(...emitted.diagnostics);
  }
  report(ts, diagnostics);
  return !diagnostics.some((d) => d.category === ts.DiagnosticCategory.Error);
}

/** Diagnostics as tsc prints them (with colour and context on a terminal), then its summary line. */
function report(ts, diagnostics) {
  if (diagnostics.length === 0) return;
  const host = { getCurrentDirectory: () => root, getCanonicalFileName: (f) => f, getNewLine: () => ts.sys.newLine };
  const sorted = ts.sortAndDeduplicateDiagnostics(diagnostics);
  const pretty = process.stdout.isTTY && !process.env.NO_COLOR;
  process.stdout.write(pretty ? ts.formatDiagnosticsWithColorAndContext(sorted, host) : ts.formatDiagnostics(sorted, host));
  const errors = sorted.filter((d) => d.category === ts.DiagnosticCategory.Error);
  if (errors.length > 0) {
    const files = new Set(errors.filter((d) => d.file).map((d) => d.file.fileName)).size;
    const where = files > 1 ? ` in ${files} files` : files === 1 ? ' in 1 file' : '';
    process.stdout.write(`${pretty ? '\n' : ''}Found ${errors.length} error${errors.length === 1 ? '' : 's'}${where}.\n`);
  }
}

const webSources = join(root, 'web');
const webOut = join(root, 'dist', 'web');
const webMarker = join(root, 'dist', '.web-build-stamp');

function webIsStale() {
  if (!existsSync(join(webSources, 'index.html'))) return false; // no dashboard in this tree
  if (!existsSync(webMarker) || !existsSync(join(webOut, 'index.html'))) return true;
  const sources = Math.max(
    newest(webSources, () => true),
    statSync(join(root, 'package-lock.json')).mtimeMs,
  );
  return sources > statSync(webMarker).mtimeMs;
}

/** `vite build` of web/ into dist/web, in a child process so this script stays synchronous. */
function buildWeb() {
  // vite's exports map hides bin/: its own package.json names the CLI
  const vitePackage = require.resolve('vite/package.json');
  const vite = join(vitePackage, '..', require(vitePackage).bin.vite);
  const result = spawnSync(process.execPath, [vite, 'build', '--config', join(webSources, 'vite.config.ts'), '--logLevel', 'warn'], {
    cwd: root,
    stdio: 'inherit',
  });
  return result.status === 0;
}

const plugin = require('./swagger-plugin');
if (process.argv.includes('--force') || isStale(plugin.signature)) {
  process.stdout.write('Building NexoRouter into dist/ ...\n');
  if (!compile(require('typescript'), plugin)) {
    process.stderr.write('Build failed: see the errors above (dist/ is not marked as built).\n');
    process.exit(1);
  }
  writeFileSync(marker, `${new Date().toISOString()}\nplugin: ${plugin.signature}\n`);
}
if (process.argv.includes('--force') ? existsSync(join(webSources, 'index.html')) : webIsStale()) {
  process.stdout.write('Building the web dashboard into dist/web ...\n');
  if (!buildWeb()) {
    process.stderr.write('Dashboard build failed: see the errors above (dist/web is not marked as built).\n');
    process.exit(1);
  }
  writeFileSync(webMarker, `${new Date().toISOString()}\n`);
}
