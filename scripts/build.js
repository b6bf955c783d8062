#!/usr/bin/env node
// Build, incrementally: rebuilds only what changed since the last run.
//
//   node scripts/build.js           the runtime build, what the package ships and Node-RED loads: lib/ and
//                                   nodes/ compiled to dist/ (tsconfig.build.json), the editor files, locales
//                                   and icons copied beside the compiled nodes (Node-RED looks for them there).
//                                   `npm start`, `prepare` (git installs, `npm pack`, `npm publish`).
//   node scripts/build.js --test    the runtime build, then test/ and bench/ compiled to build/ (tsconfig.json),
//                                   with build/lib and build/nodes linked to dist/lib and dist/nodes. `pretest`.
//   --clean                         removes the outputs first (a full rebuild).
//
// TypeScript's build mode (`tsc -b`) keeps its state in dist/ and build/ (*.tsbuildinfo) and skips what is up to
// date. Outputs whose source is gone are deleted here: a stale build/test/x.test.js would still run in mocha.
// Everything the build prints goes to stderr, so that `npm pack --json` (which runs `prepare`) stays JSON.
'use strict';
const fs = require('node:fs');
const path = require('node:path');
const { spawnSync } = require('node:child_process');

const root = path.resolve(__dirname, '..');
const dist = path.join(root, 'dist');
const testOut = path.join(root, 'build');
const started = Date.now();
const args = new Set(process.argv.slice(2));
const withTests = args.has('--test');

/** Files under `dir` (relative paths with '/'), recursively; [] when it does not exist. */
function filesUnder(dir, prefix = '') {
  let entries;
  try {
    entries = fs.readdirSync(dir, { withFileTypes: true });
  } catch {
    return [];
  }
  return entries.flatMap((entry) => {
    const rel = prefix + entry.name;
    if (entry.isDirectory()) return filesUnder(path.join(dir, entry.name), rel + '/');
    return entry.isFile() ? [rel] : [];
  });
}

const isSource = (rel) => rel.endsWith('.ts') && !rel.endsWith('.d.ts');

/** What tsc emits for the sources of `area` (e.g. 'lib'): `<rel>.js` and its map, plus `.d.ts` if `declarations`. */
function compiledOutputs(area, declarations) {
  const outputs = new Set();
  for (const rel of filesUnder(path.join(root, area))) {
    if (isSource(rel)) {
      const base = `${area}/${rel.slice(0, -3)}`;
      outputs.add(`${base}.js`).add(`${base}.js.map`);
      if (declarations) outputs.add(`${base}.d.ts`);
    } else if (rel.endsWith('.json')) {
      outputs.add(`${area}/${rel}`); // resolveJsonModule: an imported .json is copied to the output
    }
  }
  return outputs;
}

/** The files Node-RED needs beside the compiled nodes, as a map target (relative to dist/) -> source path. */
function editorAssets() {
  const assets = new Map();
  for (const rel of filesUnder(path.join(root, 'nodes'))) {
    if (!rel.endsWith('.ts')) assets.set(`nodes/${rel}`, path.join(root, 'nodes', rel));
  }
  // nodes/locales and nodes/plugins/locales came with the walk above; the icons live at the top.
  for (const rel of filesUnder(path.join(root, 'icons')))
    assets.set(`nodes/icons/${rel}`, path.join(root, 'icons', rel));
  return assets;
}

function runTsc(config, force) {
  let tsc;
  try {
    tsc = require.resolve('typescript/bin/tsc');
  } catch {
    console.error('build: TypeScript is not installed (a devDependency): run `npm install` first');
    process.exit(1);
  }
  const tscArgs = [tsc, '-b', path.join(root, config), ...(force ? ['--force'] : [])];
  const result = spawnSync(process.execPath, tscArgs, { stdio: ['ignore', 2, 2], cwd: root });
  if (result.status !== 0) {
    console.error(`build: TypeScript compilation failed (${config})`);
    process.exit(1);
  }
}

/** Deletes files under `outDir`'s `areas` that are not in `expected` (paths relative to outDir), then empty folders. */
function prune(outDir, areas, expected) {
  let removed = 0;
  for (const area of areas) {
    for (const rel of filesUnder(path.join(outDir, area), `${area}/`)) {
      if (!expected.has(rel)) {
        fs.rmSync(path.join(outDir, rel));
        removed++;
      }
    }
    removeEmptyFolders(path.join(outDir, area));
  }
  return removed;
}

function removeEmptyFolders(dir) {
  let entries;
  try {
    entries = fs.readdirSync(dir, { withFileTypes: true });
  } catch {
    return;
  }
  for (const entry of entries) if (entry.isDirectory()) removeEmptyFolders(path.join(dir, entry.name));
  if (fs.readdirSync(dir).length === 0) fs.rmdirSync(dir);
}

/** Copies `source` to `target` unless the target already has its size and a modification time not older. */
function copyIfChanged(source, target) {
  const from = fs.statSync(source);
  try {
    const to = fs.statSync(target);
    if (to.size === from.size && to.mtimeMs >= from.mtimeMs) return false;
  } catch {
    // not there yet
  }
  fs.mkdirSync(path.dirname(target), { recursive: true });
  fs.copyFileSync(source, target);
  return true;
}

/** Points `link` at `target` (a folder), replacing whatever is at `link` (an older build's real folder). */
function ensureLink(link, target) {
  try {
    if (fs.realpathSync(link) === fs.realpathSync(target)) return;
  } catch {
    // missing, dangling or target not built: replaced below
  }
  fs.rmSync(link, { recursive: true, force: true });
  fs.mkdirSync(path.dirname(link), { recursive: true });
  // A junction on Windows (no privilege needed; it wants an absolute target); a relative symlink elsewhere.
  if (process.platform === 'win32') fs.symlinkSync(target, link, 'junction');
  else fs.symlinkSync(path.relative(path.dirname(link), target), link, 'dir');
}

if (args.has('--clean')) {
  fs.rmSync(dist, { recursive: true, force: true });
  for (const name of ['test', 'bench', 'lib', 'nodes', 'tsconfig.tsbuildinfo']) {
    fs.rmSync(path.join(testOut, name), { recursive: true, force: true });
  }
}

// The runtime build. Anything else at dist/'s top (build/test, build/bench of the old single build) goes.
const runtimeOutputs = new Set([...compiledOutputs('lib', true), ...compiledOutputs('nodes', true)]);
const assets = editorAssets();
for (const name of fs.existsSync(dist) ? fs.readdirSync(dist) : []) {
  if (!['lib', 'nodes', 'tsconfig.build.tsbuildinfo'].includes(name))
    fs.rmSync(path.join(dist, name), { recursive: true });
}
// tsc -b trusts its build info: if an output was deleted by hand, only a forced build brings it back.
const runtimeMissing = [...runtimeOutputs].some((rel) => rel.endsWith('.js') && !fs.existsSync(path.join(dist, rel)));
runTsc('tsconfig.build.json', runtimeMissing);
let copied = 0;
for (const [target, source] of assets) if (copyIfChanged(source, path.join(dist, target))) copied++;
const pruned = prune(dist, ['lib', 'nodes'], new Set([...runtimeOutputs, ...assets.keys()]));
const parts = [
  `dist/ ready`,
  `${copied} editor file(s) copied`,
  ...(pruned ? [`${pruned} stale file(s) removed`] : []),
];

if (withTests) {
  const testOutputs = new Set([...compiledOutputs('test', false), ...compiledOutputs('bench', false)]);
  const testMissing = [...testOutputs].some((rel) => rel.endsWith('.js') && !fs.existsSync(path.join(testOut, rel)));
  runTsc('tsconfig.json', testMissing);
  ensureLink(path.join(testOut, 'lib'), path.join(dist, 'lib'));
  ensureLink(path.join(testOut, 'nodes'), path.join(dist, 'nodes'));
  const prunedTests = prune(testOut, ['test', 'bench'], testOutputs);
  parts.push('build/ (tests, benchmarks) ready', ...(prunedTests ? [`${prunedTests} stale test file(s) removed`] : []));
}
console.error(`build: ${parts.join(', ')} (${((Date.now() - started) / 1000).toFixed(1)} s)`);
