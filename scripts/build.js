#!/usr/bin/env node
// Build: compile TypeScript to dist/, then copy what Node-RED loads beside each compiled node
// (editor .html, locales, icons: Node-RED looks for icons only next to the node's .js file).
'use strict';
const fs = require('node:fs');
const path = require('node:path');
const { execFileSync } = require('node:child_process');

const root = path.resolve(__dirname, '..');
const dist = path.join(root, 'dist');

fs.rmSync(dist, { recursive: true, force: true });
const tsc = require.resolve('typescript/bin/tsc');
try {
  execFileSync(process.execPath, [tsc, '-p', path.join(root, 'tsconfig.json')], { stdio: 'inherit', cwd: root });
} catch {
  console.error('build: TypeScript compilation failed');
  process.exit(1);
}

function copyTree(from, to, filter) {
  if (!fs.existsSync(from)) return;
  for (const entry of fs.readdirSync(from, { withFileTypes: true })) {
    const source = path.join(from, entry.name);
    const target = path.join(to, entry.name);
    if (entry.isDirectory()) copyTree(source, target, filter);
    else if (!filter || filter(entry.name)) {
      fs.mkdirSync(to, { recursive: true });
      fs.copyFileSync(source, target);
    }
  }
}

copyTree(path.join(root, 'nodes'), path.join(dist, 'nodes'), (name) => !name.endsWith('.ts'));
copyTree(path.join(root, 'icons'), path.join(dist, 'nodes', 'icons'));
console.log('build: dist/ ready');
