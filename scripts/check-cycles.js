#!/usr/bin/env node
// `npm run check:cycles` (part of `npm run lint`): fails when the top-level folders of src/
// import each other in a cycle (STYLE.md: "No import cycle between src/ folders").
//
// Every relative module reference of every .ts file under src/ counts: `import … from`,
// `import type`, `export … from`, `import x = require()`, `import()` and `import('…').T` types.
// A file directly under src/ (app.module.ts, main.ts) is a node of its own.
// `--edges` also prints the whole folder graph.
'use strict';
const { readdirSync, readFileSync } = require('node:fs');
const { dirname, join, relative, resolve, sep } = require('node:path');
const ts = require('typescript');

const root = join(__dirname, '..');
const srcDir = join(root, 'src');

function tsFiles(dir) {
  const files = [];
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) files.push(...tsFiles(path));
    else if (entry.name.endsWith('.ts') && !entry.name.endsWith('.d.ts')) files.push(path);
  }
  return files;
}

/** Module specifiers referenced by a file, with their line numbers. */
function references(file) {
  const text = readFileSync(file, 'utf8');
  const source = ts.createSourceFile(file, text, ts.ScriptTarget.Latest, true, ts.ScriptKind.TS);
  const found = [];
  const add = (literal) => {
    if (literal && ts.isStringLiteralLike(literal)) {
      found.push({ specifier: literal.text, line: source.getLineAndCharacterOfPosition(literal.getStart()).line + 1 });
    }
  };
  const visit = (node) => {
    if (ts.isImportDeclaration(node) || ts.isExportDeclaration(node)) add(node.moduleSpecifier);
    else if (ts.isImportEqualsDeclaration(node) && ts.isExternalModuleReference(node.moduleReference)) {
      add(node.moduleReference.expression);
    } else if (ts.isCallExpression(node) && node.expression.kind === ts.SyntaxKind.ImportKeyword) add(node.arguments[0]);
    else if (ts.isImportTypeNode(node) && ts.isLiteralTypeNode(node.argument)) add(node.argument.literal);
    ts.forEachChild(node, visit);
  };
  visit(source);
  return found;
}

/** `billing` for src/billing/…, `app.module` for src/app.module.ts; null outside src/. */
function nodeOf(path) {
  const rel = relative(srcDir, path);
  if (rel === '' || rel.startsWith('..')) return null;
  return rel.split(sep)[0].replace(/\.(ts|js)$/, '');
}

/** edges: Map<from, Map<to, example>>, example = "src/x/y.ts:3 imports '../z/w'" */
function folderGraph() {
  const edges = new Map();
  for (const file of tsFiles(srcDir)) {
    const from = nodeOf(file);
    for (const { specifier, line } of references(file)) {
      if (!specifier.startsWith('.')) continue;
      const to = nodeOf(resolve(dirname(file), specifier));
      if (to === null || to === from) continue;
      if (!edges.has(from)) edges.set(from, new Map());
      const targets = edges.get(from);
      if (!targets.has(to)) targets.set(to, `${relative(root, file)}:${line} imports '${specifier}'`);
    }
  }
  return edges;
}

/** Strongly connected components with more than one node (Tarjan). */
function tangles(nodes, edges) {
  let index = 0;
  const indexOf = new Map();
  const low = new Map();
  const stack = [];
  const onStack = new Set();
  const result = [];
  const connect = (v) => {
    indexOf.set(v, index);
    low.set(v, index++);
    stack.push(v);
    onStack.add(v);
    for (const w of edges.get(v)?.keys() ?? []) {
      if (!indexOf.has(w)) {
        connect(w);
        low.set(v, Math.min(low.get(v), low.get(w)));
      } else if (onStack.has(w)) low.set(v, Math.min(low.get(v), indexOf.get(w)));
    }
    if (low.get(v) === indexOf.get(v)) {
      const component = [];
      let w;
      do {
        w = stack.pop();
        onStack.delete(w);
        component.push(w);
      } while (w !== v);
      if (component.length > 1) result.push(component.sort());
    }
  };
  for (const v of nodes) if (!indexOf.has(v)) connect(v);
  return result;
}

/** Elementary cycles inside one component, each starting at its smallest node; at most `limit`. */
function cyclesIn(component, edges, limit) {
  const members = new Set(component);
  const cycles = [];
  for (const start of component) {
    const path = [start];
    const walk = (v) => {
      for (const w of edges.get(v)?.keys() ?? []) {
        if (cycles.length >= limit || !members.has(w) || w < start) continue;
        if (w === start) cycles.push([...path, start]);
        else if (!path.includes(w)) {
          path.push(w);
          walk(w);
          path.pop();
        }
      }
    };
    walk(start);
  }
  return cycles;
}

const edges = folderGraph();
const nodes = [...new Set([...edges.keys(), ...[...edges.values()].flatMap((t) => [...t.keys()])])].sort();

if (process.argv.includes('--edges')) {
  for (const from of [...edges.keys()].sort()) {
    for (const [to, example] of [...edges.get(from)].sort()) console.log(`${from} -> ${to}    (${example})`);
  }
}

const components = tangles(nodes, edges);
if (components.length === 0) {
  const count = [...edges.values()].reduce((n, t) => n + t.size, 0);
  console.log(`No import cycle between the ${nodes.length} top-level folders of src/ (${count} dependencies).`);
  process.exit(0);
}

const LIMIT = 20;
let total = 0;
console.error('Import cycles between top-level folders of src/ (STYLE.md: no cycle between src/ folders):');
for (const component of components) {
  const cycles = cyclesIn(component, edges, LIMIT);
  total += cycles.length;
  console.error(`\n  ${component.map((n) => `src/${n}`).join(', ')} depend on each other:`);
  for (const cycle of cycles) {
    console.error(`\n    ${cycle.join(' -> ')}`);
    for (let i = 0; i < cycle.length - 1; i++) {
      console.error(`      ${cycle[i]} -> ${cycle[i + 1]}: ${edges.get(cycle[i]).get(cycle[i + 1])}`);
    }
  }
  if (cycles.length >= LIMIT) console.error(`    (first ${LIMIT} cycles only)`);
}
console.error(`\n${total} cycle(s). Move the shared piece to the folder that owns it, or invert the dependency.`);
process.exit(1);
