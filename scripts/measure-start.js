#!/usr/bin/env node
// Measures `npm start`: the time from starting it to the editor answering 200 at / (what a user waits for).
//
//   node scripts/measure-start.js [runs=3]
//
// Each run starts `npm start` in the project on a free HTTP port and a fresh user directory (LWM2M_USER_DIR),
// polls http://127.0.0.1:<port>/ every 50 ms, then stops npm and Node-RED (their process group) and prints the
// seconds; the last line gives the median. The first run after a clean clone includes the first build.
'use strict';
const { spawn } = require('node:child_process');
const fs = require('node:fs');
const net = require('node:net');
const os = require('node:os');
const path = require('node:path');
const { setTimeout: sleep } = require('node:timers/promises');
const { fetch } = globalThis;

const root = path.resolve(__dirname, '..');
const runs = Number(process.argv[2] ?? 3);

function freePort() {
  return new Promise((resolve) => {
    const server = net.createServer();
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

async function answers200(url) {
  try {
    const response = await fetch(url);
    await response.arrayBuffer();
    return response.status === 200;
  } catch {
    return false;
  }
}

async function measureOnce() {
  const userDir = fs.mkdtempSync(path.join(os.tmpdir(), 'lwm2m-start-time-'));
  const port = await freePort();
  const started = process.hrtime.bigint();
  // Its own process group, so that stopping it stops Node-RED too (npm runs start.js, which runs Node-RED).
  const child = spawn('npm', ['start'], {
    cwd: root,
    env: { ...process.env, LWM2M_USER_DIR: userDir, PORT: String(port) },
    stdio: ['ignore', 'ignore', 'pipe'],
    detached: true,
  });
  let errors = '';
  child.stderr.on('data', (chunk) => (errors += chunk));
  const exited = new Promise((resolve) => child.once('exit', resolve));
  let seconds;
  try {
    for (;;) {
      if (child.exitCode !== null) throw new Error(`npm start exited (${child.exitCode}):\n${errors}`);
      if (await answers200(`http://127.0.0.1:${port}/`)) break;
      await sleep(50);
    }
    seconds = Number(process.hrtime.bigint() - started) / 1e9;
  } finally {
    if (child.exitCode === null) process.kill(-child.pid, 'SIGTERM');
    await exited;
    fs.rmSync(userDir, { recursive: true, force: true });
  }
  return seconds;
}

(async () => {
  const times = [];
  for (let i = 0; i < runs; i++) {
    const seconds = await measureOnce();
    times.push(seconds);
    console.log(`run ${i + 1}: editor answered 200 after ${seconds.toFixed(2)} s`);
  }
  const sorted = [...times].sort((a, b) => a - b);
  console.log(`median of ${runs}: ${sorted[Math.floor(sorted.length / 2)].toFixed(2)} s`);
})().catch((err) => {
  console.error(err);
  process.exit(1);
});
