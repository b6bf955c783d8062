#!/usr/bin/env node
// `npm run demo`: Node-RED with the example flow (scripts/start.js) plus a few simulated LwM2M devices
// registering with it, so the flow has devices to show within seconds. Ctrl-C de-registers the
// devices, then stops Node-RED.
//
// Environment: LWM2M_DEMO_COUNT (5), LWM2M_DEMO_PREFIX ("demo-"), LWM2M_DEMO_OBJECTS ("3303,3304,3425"),
// LWM2M_DEMO_SERVER (coap://127.0.0.1:5683), PORT (Node-RED's HTTP port, 1880); other arguments go to Node-RED.
'use strict';
const http = require('node:http');
const path = require('node:path');
const { spawn } = require('node:child_process');
const { setTimeout } = require('node:timers');

const root = path.resolve(__dirname, '..');
const { startFleet } = require(path.join(root, 'dist', 'lib', 'client'));

const count = Number(process.env.LWM2M_DEMO_COUNT || 5);
const prefix = process.env.LWM2M_DEMO_PREFIX || 'demo-';
const objects = (process.env.LWM2M_DEMO_OBJECTS || '3303,3304,3425').split(',').filter(Boolean);
const serverUri = process.env.LWM2M_DEMO_SERVER || 'coap://127.0.0.1:5683';
const uiPort = Number(process.env.PORT) || 1880;

function log(text) {
  console.log(`[demo] ${text}`);
}

// Node-RED in its own process group: Ctrl-C reaches only this script, which stops things in order.
const red = spawn(process.execPath, [path.join(__dirname, 'start.js'), ...process.argv.slice(2)], {
  stdio: 'inherit',
  detached: true,
});
let redExited = false;
const redExit = new Promise((resolve) =>
  red.on('exit', (code, signal) => {
    redExited = true;
    resolve({ code, signal });
  }),
);

/** Resolves once Node-RED answers HTTP (flows are starting), or after `timeoutMs`. */
function waitForNodeRed(timeoutMs) {
  const end = Date.now() + timeoutMs;
  return new Promise((resolve) => {
    const attempt = () => {
      if (redExited || Date.now() > end) return resolve(false);
      const request = http.get({ host: '127.0.0.1', port: uiPort, path: '/', timeout: 1000, agent: false }, (res) => {
        res.resume();
        resolve(true);
      });
      request.on('timeout', () => request.destroy());
      request.on('error', () => setTimeout(attempt, 500));
    };
    attempt();
  });
}

let fleet;
let stopping = false;

async function shutdown(signal) {
  if (stopping) {
    log(`${signal} again: quitting now`);
    if (!redExited) red.kill('SIGKILL');
    process.exit(130);
  }
  stopping = true;
  if (fleet) {
    log(`de-registering ${count} device(s)...`);
    const stats = await fleet.stop({ timeoutMs: 2000 });
    log(`devices stopped (${stats.deregistrations} de-registered, ${stats.notifications} notifications sent)`);
  }
  if (!redExited) {
    log('stopping Node-RED...');
    red.kill('SIGINT');
  }
  const { code } = await redExit;
  process.exitCode = code ?? 0;
}

process.on('SIGINT', () => void shutdown('SIGINT'));
process.on('SIGTERM', () => void shutdown('SIGTERM'));
process.on('exit', () => {
  if (!redExited) red.kill('SIGTERM');
});
redExit.then(({ code }) => {
  if (stopping) return;
  log(`Node-RED exited (code ${code}); stopping the devices`);
  void (fleet ? fleet.stop({ deregister: false }) : Promise.resolve()).then(() => {
    process.exitCode = code ?? 1;
  });
});

(async () => {
  const up = await waitForNodeRed(60_000);
  if (stopping || redExited) return;
  if (!up) log(`Node-RED does not answer on port ${uiPort} yet; starting the devices anyway`);
  fleet = await startFleet({
    serverUri,
    count,
    prefix,
    objects,
    lifetime: 60,
    changeEveryMs: 5000,
    registrationRate: 10,
    // the LwM2M server starts with the flows, a moment after the editor: keep trying
    registerRetry: { initialDelayMs: 1000, maxDelayMs: 5000 },
  });
  log(`${count} simulated device(s) ${prefix}1..${prefix}${count} (objects 3,${objects.join(',')}) -> ${serverUri}`);
  log(
    `open http://127.0.0.1:${uiPort}: the debug sidebar, and the devices in the sidebar tab "LwM2M devices" ` +
      '(menu > View > LwM2M devices); Ctrl-C stops the devices and Node-RED',
  );
  fleet.on('registered', (client) => log(`${client.endpointName} registered (${client.registrationLocation})`));
})().catch((err) => {
  log(`failed: ${err.stack || err}`);
  void shutdown('error');
});
