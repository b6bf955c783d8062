#!/usr/bin/env node
// `npm start`: Node-RED with this package's nodes and the getting-started example flow.
// The user directory is .node-red-data/ in the project; the package is linked into its
// node_modules so Node-RED loads it exactly as it would an installed module.
'use strict';
const fs = require('node:fs');
const path = require('node:path');
const { spawn } = require('node:child_process');

const root = path.resolve(__dirname, '..');
const userDir = process.env.LWM2M_USER_DIR || path.join(root, '.node-red-data');
const moduleLink = path.join(userDir, 'node_modules', 'node-red-contrib-lwm2m-server');
const flowFile = path.join(userDir, 'flows.json');
const exampleFlow = path.join(root, 'examples', process.env.LWM2M_EXAMPLE || 'getting-started.json');

fs.mkdirSync(path.dirname(moduleLink), { recursive: true });
try {
  if (fs.realpathSync(moduleLink) !== root) fs.rmSync(moduleLink, { recursive: true, force: true });
} catch {
  // not there yet
}
if (!fs.existsSync(moduleLink)) fs.symlinkSync(root, moduleLink, 'dir');
if (!fs.existsSync(flowFile)) fs.copyFileSync(exampleFlow, flowFile);

const redMain = require.resolve('node-red/red.js');
const args = [
  redMain,
  '--userDir',
  userDir,
  '--settings',
  path.join(__dirname, 'node-red-settings.js'),
  ...process.argv.slice(2),
];
const child = spawn(process.execPath, args, { stdio: 'inherit' });
for (const signal of ['SIGINT', 'SIGTERM']) process.on(signal, () => child.kill(signal));
child.on('exit', (code, signal) => process.exit(signal ? 0 : (code ?? 0)));
