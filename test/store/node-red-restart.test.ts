import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import dgram from 'node:dgram';
import type { ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Lwm2mClient } from '../../lib/client';
import { FAST_COAP, waitFor } from '../client/helpers';
import { freeTcpPort, freeUdpPort } from '../nodes/helper';

const root = path.resolve(__dirname, '..', '..', '..');

/** Node-RED as `npm start` runs it, on this user directory; resolves once its flows have started. */
async function startNodeRed(userDir: string, httpPort: number): Promise<{ child: ChildProcess; output: () => string }> {
  const child = spawn(process.execPath, [path.join(root, 'scripts', 'start.js')], {
    cwd: root,
    env: { ...process.env, LWM2M_USER_DIR: userDir, PORT: String(httpPort) },
    stdio: ['ignore', 'pipe', 'pipe'],
    // Its own process group: a SIGKILL must reach Node-RED itself, not only the start script.
    detached: true,
  });
  let output = '';
  child.stdout!.on('data', (chunk) => (output += chunk));
  child.stderr!.on('data', (chunk) => (output += chunk));
  await waitFor(() => output.includes('Started flows') || child.exitCode !== null, 20_000, 'Node-RED to start');
  assert.match(output, /Started flows/, output);
  return { child, output: () => output };
}

/**
 * Resolves once a CoAP endpoint answers on `port` (a CoAP ping: an empty CON, answered with a Reset).
 * "Started flows" is logged before the server node's socket is bound.
 */
async function coapAnswers(port: number, timeoutMs = 10_000): Promise<void> {
  const socket = dgram.createSocket('udp4');
  let answered = false;
  socket.on('message', () => (answered = true));
  await new Promise<void>((resolve) => socket.bind(0, '127.0.0.1', () => resolve()));
  try {
    const end = Date.now() + timeoutMs;
    for (let messageId = 1; !answered; messageId++) {
      if (Date.now() > end) throw new Error(`nothing answered a CoAP ping on port ${port}`);
      socket.send(Buffer.from([0x40, 0x00, messageId >> 8, messageId & 0xff]), port, '127.0.0.1');
      await waitFor(() => answered, 200).catch(() => undefined);
    }
  } finally {
    await new Promise<void>((resolve) => socket.close(() => resolve()));
  }
}

async function kill(child: ChildProcess, signal: NodeJS.Signals): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((resolve) => child.once('exit', resolve));
  // start.js forwards SIGTERM to Node-RED; SIGKILL cannot be forwarded, so it goes to Node-RED's process group.
  if (signal === 'SIGKILL') process.kill(-child.pid!, 'SIGKILL');
  else child.kill(signal);
  await exited;
}

describe('Node-RED killed (SIGKILL) and started again on its file store', function () {
  this.timeout(90_000);
  let userDir: string;
  let device: Lwm2mClient | undefined;
  let nodeRed: { child: ChildProcess } | undefined;

  after(async () => {
    await device?.stop({ deregister: false, timeoutMs: 500 }).catch(() => undefined);
    if (nodeRed) await kill(nodeRed.child, 'SIGTERM');
    fs.rmSync(userDir, { recursive: true, force: true });
  });

  it('keeps the device registered and observed: notifications reach the flow again with no re-registration', async () => {
    userDir = fs.mkdtempSync(path.join(os.tmpdir(), 'lwm2m-nr-restart-'));
    const coapPort = await freeUdpPort();
    const out = path.join(userDir, 'notifications.txt');
    const flow = [
      { id: 'tab1', type: 'tab', label: 'restart' },
      {
        id: 'srv',
        type: 'lwm2m-server',
        name: '',
        address: '127.0.0.1',
        port: coapPort,
        plainEnabled: true,
        dtlsEnabled: false,
        store: 'file',
        ackTimeout: 300,
        ackRandomFactor: 1.2,
        maxRetransmit: 2,
        nstart: 1,
      },
      {
        id: 'obs',
        type: 'lwm2m-observe',
        z: 'tab1',
        server: 'srv',
        endpoint: 'field-valve-3',
        path: '/3/0/9',
        startOn: 'deploy',
        wires: [['out']],
      },
      {
        id: 'out',
        type: 'file',
        z: 'tab1',
        filename: out,
        filenameType: 'str',
        appendNewline: true,
        createDir: true,
        overwriteFile: 'false',
        encoding: 'none',
        wires: [],
      },
    ];
    fs.writeFileSync(path.join(userDir, 'flows.json'), JSON.stringify(flow));

    nodeRed = await startNodeRed(userDir, await freeTcpPort());
    device = new Lwm2mClient({
      endpointName: 'field-valve-3',
      serverUri: `coap://127.0.0.1:${coapPort}`,
      bindAddress: '127.0.0.1',
      lifetime: 3600,
      coap: { ...FAST_COAP },
    });
    let registrations = 0;
    device.on('registered', () => registrations++);
    let observes = 0;
    device.on('observe', () => observes++);
    await device.start();
    await waitFor(() => observes === 1, 10_000, 'the flow to observe the device');
    device.set('/3/0/9', 11);
    await waitFor(
      () => fs.existsSync(out) && fs.readFileSync(out, 'utf8').includes('11'),
      10_000,
      'first notification',
    );

    // No goodbye: the process is killed. The journal is all that is left.
    await kill(nodeRed.child, 'SIGKILL');
    nodeRed = undefined;
    nodeRed = await startNodeRed(userDir, await freeTcpPort());
    await coapAnswers(coapPort);
    device.set('/3/0/9', 22);
    await waitFor(() => fs.readFileSync(out, 'utf8').includes('22'), 10_000, 'a notification after the restart');
    assert.equal(registrations, 1, 'the device never had to register again');
    assert.equal(observes, 1, 'the observation made before the restart is the one still notifying');
  });
});
