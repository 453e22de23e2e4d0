// Jest transformer for *.dto.ts and *.entity.ts (see jest.config.js): compiles them as
// scripts/build-if-stale.js does, with the @nestjs/swagger plugin, so the tests serve the
// /docs-json of production. ts-jest cannot do it here: it compiles one file at a time
// (isolatedModules), and the plugin needs the types of the whole program; ts-jest without
// isolatedModules type-checks every file (about +50 % time and 3x memory), and a second
// ts-jest entry for these files would share the first one's settings (ts-jest keeps one
// config per Jest project).
'use strict';
const { createHash } = require('node:crypto');
const { readdirSync, readFileSync } = require('node:fs');
const { join } = require('node:path');
const ts = require('typescript');
const plugin = require('../scripts/swagger-plugin');

const root = join(__dirname, '..');
const tsconfigPath = join(root, 'tsconfig.json');

let options; // tsconfig.json's compiler options, read once per Jest worker
let program; // one program (and type checker) for every DTO and entity of src/, made on first use
const sourceFiles = new Map(); // fileName -> SourceFile, so a new program reparses only what changed

function compilerOptions() {
  if (!options) {
    const parsed = ts.getParsedCommandLineOfConfigFile(
      tsconfigPath,
      {},
      {
        ...ts.sys,
        onUnRecoverableConfigFileDiagnostic: (d) => {
          throw new Error(ts.flattenDiagnosticMessageText(d.messageText, '\n'));
        },
      },
    );
    // an inline source map, which Jest reads from the code
    options = { ...parsed.options, sourceMap: false, inlineSourceMap: true, inlineSources: true, declaration: false };
  }
  return options;
}

function programWith(fileName, text) {
  if (program && program.getSourceFile(fileName)?.text === text) return program;
  const opts = compilerOptions();
  const host = ts.createCompilerHost(opts);
  const readFile = host.readFile;
  host.readFile = (f) => (f === fileName ? text : readFile(f));
  host.getSourceFile = (f, languageVersion) => {
    const content = host.readFile(f);
    if (content === undefined) return undefined;
    const cached = sourceFiles.get(f);
    if (cached && cached.text === content) return cached;
    const sourceFile = ts.createSourceFile(f, content, languageVersion);
    sourceFiles.set(f, sourceFile);
    return sourceFile;
  };
  const rootNames = new Set(program ? program.getRootFileNames() : tsFiles(join(root, 'src')).filter((f) => /\.(dto|entity)\.ts$/.test(f)));
  rootNames.add(fileName);
  program = ts.createProgram({ rootNames: [...rootNames], options: opts, host, oldProgram: program });
  return program;
}

const formatHost = { getCurrentDirectory: () => root, getCanonicalFileName: (f) => f, getNewLine: () => '\n' };

function tsFiles(dir) {
  const files = [];
  for (const entry of readdirSync(dir, { withFileTypes: true }).sort((a, b) => a.name.localeCompare(b.name))) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) files.push(...tsFiles(path));
    else if (entry.name.endsWith('.ts')) files.push(path);
  }
  return files;
}

/** What a DTO's output depends on besides its own text: the types it imports, so all of src/. */
let sourcesDigest;
function digestOfSources() {
  if (!sourcesDigest) {
    const hash = createHash('sha256');
    for (const file of tsFiles(join(root, 'src'))) hash.update(file).update(readFileSync(file));
    sourcesDigest = hash.digest('hex');
  }
  return sourcesDigest;
}

module.exports = {
  getCacheKey(sourceText, sourcePath, { configString }) {
    return createHash('sha256')
      .update(sourceText)
      .update(sourcePath)
      .update(configString)
      .update(plugin.signature)
      .update(ts.version)
      .update(readFileSync(tsconfigPath))
      .update(readFileSync(__filename))
      .update(digestOfSources())
      .digest('hex');
  },

  process(sourceText, sourcePath) {
    const prog = programWith(sourcePath, sourceText);
    const sourceFile = prog.getSourceFile(sourcePath);
    const syntax = prog.getSyntacticDiagnostics(sourceFile);
    if (syntax.length > 0) throw new Error(ts.formatDiagnostics(syntax, formatHost));
    let code;
    const emitted = prog.emit(
      sourceFile,
      (name, text) => {
        if (name.endsWith('.js')) code = text;
      },
      undefined,
      false,
      { before: [plugin.before(prog)] },
    );
    if (emitted.diagnostics.length > 0 || code === undefined) {
      throw new Error(`${sourcePath}: not compiled\n${ts.formatDiagnostics(emitted.diagnostics, formatHost)}`);
    }
    return { code };
  },
};
