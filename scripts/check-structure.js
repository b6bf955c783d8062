#!/usr/bin/env node
// Structure check for lib/: the shape rules of the README's architecture section, run by `npm run lint` (so by CI).
//  - no import cycle between files, and none between lib/'s folders (lib/coap -> lib/server -> lib/coap is a cycle
//    even when no two files form one); a folder's sub-folders belong to it (lib/server/operations is lib/server
//    here: a facade and the operations it delegates to are one layer); type-only imports count too: they tie the
//    modules' meaning together the same way;
//  - no file over 600 lines and no class over 400;
//  - every file opens with a comment that names its concern;
//  - every error class extends Lwm2mError (lib/errors.ts), the one base, not Error itself.
// It reads the sources with the TypeScript compiler's parser (no type check, a second or two), and prints each
// finding with the files involved; `--report` prints the largest files and classes even when all is well.
'use strict';
const fs = require('node:fs');
const path = require('node:path');
const ts = require('typescript');

const MAX_FILE_LINES = 600;
const MAX_CLASS_LINES = 400;
const root = path.resolve(__dirname, '..');
const libDir = path.join(root, 'lib');

function sourceFiles(dir) {
  const found = [];
  for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) found.push(...sourceFiles(full));
    else if (entry.name.endsWith('.ts') && !entry.name.endsWith('.d.ts')) found.push(full);
  }
  return found.sort();
}

/** The .ts file a relative specifier names, or undefined (a package, or a file outside lib/). */
function resolveSpecifier(fromFile, specifier) {
  if (!specifier.startsWith('.')) return undefined;
  const base = path.resolve(path.dirname(fromFile), specifier);
  for (const candidate of [base + '.ts', path.join(base, 'index.ts'), base.replace(/\.js$/, '.ts')]) {
    if (candidate.startsWith(libDir) && fs.existsSync(candidate)) return candidate;
  }
  return undefined;
}

function read(file) {
  const text = fs.readFileSync(file, 'utf8');
  const source = ts.createSourceFile(file, text, ts.ScriptTarget.Latest, true);
  const imports = new Set();
  const classes = [];
  const errorClasses = [];
  const lineOf = (pos) => source.getLineAndCharacterOfPosition(pos).line + 1;
  const visit = (node) => {
    if ((ts.isImportDeclaration(node) || ts.isExportDeclaration(node)) && node.moduleSpecifier) {
      const target = resolveSpecifier(file, node.moduleSpecifier.text);
      if (target) imports.add(target);
    } else if (ts.isCallExpression(node) && node.expression.kind === ts.SyntaxKind.ImportKeyword) {
      const [arg] = node.arguments;
      if (arg && ts.isStringLiteral(arg)) {
        const target = resolveSpecifier(file, arg.text);
        if (target) imports.add(target);
      }
    } else if (ts.isImportTypeNode(node) && ts.isLiteralTypeNode(node.argument)) {
      const target = resolveSpecifier(file, node.argument.literal.text);
      if (target) imports.add(target);
    }
    if (ts.isClassDeclaration(node) || ts.isClassExpression(node)) {
      const base = (node.heritageClauses || [])
        .filter((clause) => clause.token === ts.SyntaxKind.ExtendsKeyword)
        .flatMap((clause) => clause.types.map((type) => type.expression.getText(source)));
      if (base.includes('Error') && file !== path.join(libDir, 'errors.ts')) {
        errorClasses.push(node.name ? node.name.text : '(anonymous)');
      }
      const first = lineOf(node.getStart(source));
      const last = lineOf(node.end);
      classes.push({ name: node.name ? node.name.text : '(anonymous)', lines: last - first + 1 });
    }
    ts.forEachChild(node, visit);
  };
  visit(source);
  const lines = text.endsWith('\n') ? text.split('\n').length - 1 : text.split('\n').length;
  const opensWithComment = /^(#![^\n]*\n)?\s*(\/\/|\/\*)/.test(text);
  return { imports: [...imports], classes, errorClasses, lines, opensWithComment };
}

/** Strongly connected components with more than one member, or a member importing itself (Tarjan). */
function cycles(graph) {
  let index = 0;
  const indexOf = new Map();
  const low = new Map();
  const stack = [];
  const onStack = new Set();
  const found = [];
  const connect = (v) => {
    indexOf.set(v, index);
    low.set(v, index);
    index++;
    stack.push(v);
    onStack.add(v);
    for (const w of graph.get(v) || []) {
      if (!indexOf.has(w)) {
        connect(w);
        low.set(v, Math.min(low.get(v), low.get(w)));
      } else if (onStack.has(w)) {
        low.set(v, Math.min(low.get(v), indexOf.get(w)));
      }
    }
    if (low.get(v) === indexOf.get(v)) {
      const component = [];
      let w;
      do {
        w = stack.pop();
        onStack.delete(w);
        component.push(w);
      } while (w !== v);
      if (component.length > 1 || (graph.get(v) || new Set()).has(v)) found.push(component.sort());
    }
  };
  for (const v of graph.keys()) if (!indexOf.has(v)) connect(v);
  return found;
}

/** One shortest path from `from` back to itself inside a component: what a reader needs to see the cycle. */
function loopThrough(graph, from, members) {
  const previous = new Map([[from, undefined]]);
  const queue = [from];
  while (queue.length > 0) {
    const v = queue.shift();
    for (const w of graph.get(v) || []) {
      if (!members.has(w)) continue;
      if (w === from) {
        const loop = [from];
        for (let step = v; step !== from; step = previous.get(step)) loop.splice(1, 0, step);
        return [...loop, from];
      }
      if (!previous.has(w)) {
        previous.set(w, v);
        queue.push(w);
      }
    }
  }
  return [from];
}

function main() {
  const report = process.argv.includes('--report');
  const rel = (file) => path.relative(root, file);
  const folderOf = (file) => path.relative(libDir, path.dirname(file)).split(path.sep)[0] || '.';
  const files = sourceFiles(libDir);
  const facts = new Map(files.map((file) => [file, read(file)]));
  const problems = [];

  const fileGraph = new Map(files.map((file) => [file, new Set(facts.get(file).imports)]));
  for (const component of cycles(fileGraph)) {
    const loop = loopThrough(fileGraph, component[0], new Set(component));
    problems.push(
      `import cycle between files: ${loop.map(rel).join(' -> ')}` +
        (component.length > loop.length - 1 ? ` (${component.length} files in the knot)` : ''),
    );
  }
  // lib/index.ts is the package's face: it imports every folder by design and nothing in lib/ imports it. Other
  // files directly in lib/ (the error base class) form the folder '.', below everything.
  const face = path.join(libDir, 'index.ts');
  const folderGraph = new Map();
  for (const [file, { imports }] of facts) {
    if (file === face) continue;
    const from = folderOf(file);
    if (!folderGraph.has(from)) folderGraph.set(from, new Set());
    for (const target of imports) {
      const to = folderOf(target);
      if (to !== from) folderGraph.get(from).add(to);
    }
  }
  for (const component of cycles(folderGraph)) {
    const loop = loopThrough(folderGraph, component[0], new Set(component));
    const edges = [];
    for (let i = 0; i + 1 < loop.length; i++) {
      const witness = files.find(
        (file) =>
          folderOf(file) === loop[i] && facts.get(file).imports.some((target) => folderOf(target) === loop[i + 1]),
      );
      const target = facts.get(witness).imports.find((t) => folderOf(t) === loop[i + 1]);
      edges.push(`${rel(witness)} imports ${rel(target)}`);
    }
    problems.push(`import cycle between folders: ${loop.join(' -> ')} (${edges.join('; ')})`);
  }

  for (const [file, fact] of facts) {
    if (fact.lines > MAX_FILE_LINES) problems.push(`${rel(file)}: ${fact.lines} lines (at most ${MAX_FILE_LINES})`);
    for (const cls of fact.classes) {
      if (cls.lines > MAX_CLASS_LINES) {
        problems.push(`${rel(file)}: class ${cls.name} is ${cls.lines} lines (at most ${MAX_CLASS_LINES})`);
      }
    }
    for (const name of fact.errorClasses) {
      problems.push(`${rel(file)}: class ${name} extends Error; extend Lwm2mError (lib/errors.ts)`);
    }
    if (!fact.opensWithComment) problems.push(`${rel(file)}: no opening comment naming the file's concern`);
  }

  if (report) {
    console.log('folders and the folders they import:');
    for (const [folder, targets] of [...folderGraph].sort())
      console.log(`  ${folder} -> ${[...targets].sort().join(', ')}`);
    const largest = [...facts].sort((a, b) => b[1].lines - a[1].lines).slice(0, 10);
    console.log('largest files:');
    for (const [file, fact] of largest) console.log(`  ${String(fact.lines).padStart(5)}  ${rel(file)}`);
    const classes = [...facts].flatMap(([file, fact]) => fact.classes.map((cls) => ({ file, ...cls })));
    console.log('largest classes:');
    for (const cls of classes.sort((a, b) => b.lines - a.lines).slice(0, 10)) {
      console.log(`  ${String(cls.lines).padStart(5)}  ${cls.name} (${rel(cls.file)})`);
    }
  }
  if (problems.length > 0) {
    console.error(`check-structure: ${problems.length} problem(s) in lib/:`);
    for (const problem of problems) console.error(`  ${problem}`);
    process.exit(1);
  }
  console.log(
    `check-structure: ${files.length} files in lib/, no import cycle, none over ${MAX_FILE_LINES} lines, ` +
      `no class over ${MAX_CLASS_LINES}`,
  );
}

main();
