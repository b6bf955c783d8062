import { strict as assert } from 'node:assert';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Lwm2mClient } from '../lib/client';
import { CoapDevice } from './peers/coap-device';
import { freeTcpPort } from './nodes/helper';

const root = path.resolve(__dirname, '..', '..');

describe('npm start (Node-RED with our nodes and the getting-started flow)', function () {
  this.timeout(60000);

  it('starts Node-RED, loads every node and takes registrations on UDP 5683 and, with a PSK, on DTLS 5684', async function () {
    const userDir = fs.mkdtempSync(path.join(os.tmpdir(), 'lwm2m-start-'));
    const port = await freeTcpPort();
    const child = spawn(process.execPath, [path.join(root, 'scripts', 'start.js')], {
      cwd: root,
      env: { ...process.env, LWM2M_USER_DIR: userDir, PORT: String(port) },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    child.stdout.on('data', (chunk) => (output += chunk));
    child.stderr.on('data', (chunk) => (output += chunk));
    const exited = new Promise<void>((resolve) => child.on('exit', () => resolve()));
    let device: CoapDevice | undefined;
    let secureDevice: Lwm2mClient | undefined;
    try {
      for (let i = 0; i < 200 && !output.includes('Started flows'); i++) await new Promise((r) => setTimeout(r, 100));
      assert.match(output, /Started flows/, output);
      assert.doesNotMatch(output, /\[error\]/, output);
      const nodes = (await (
        await fetch(`http://127.0.0.1:${port}/nodes`, { headers: { Accept: 'application/json' } })
      ).json()) as {
        module: string;
        types: string[];
      }[];
      const ours = nodes.filter((set) => set.module === 'node-red-contrib-lwm2m-server').flatMap((set) => set.types);
      // Nothing covers the editor on the first visit: no tour, no "Enable Update Notifications" dialog (shown while
      // telemetryEnabled is not set).
      const settings = (await (await fetch(`http://127.0.0.1:${port}/settings`)).json()) as {
        telemetryEnabled?: boolean;
        editorTheme?: { tours?: boolean };
      };
      assert.equal(settings.telemetryEnabled, false);
      assert.equal(settings.editorTheme?.tours, false);
      for (const type of [
        'lwm2m-server',
        'lwm2m-register-in',
        'lwm2m-read',
        'lwm2m-write',
        'lwm2m-execute',
        'lwm2m-observe',
      ]) {
        assert.ok(ours.includes(type), `${type} loaded`);
      }
      // The example flow listens on 5683: a device registers.
      device = new CoapDevice('start-test', 5683);
      await device.start();
      await device.register();
      assert.match(device.location ?? '', /^\/rd\//);
      await device.deregister();
      // Step 4 of the flow: its inject button adds the demo PSK device; then it registers over DTLS on 5684.
      const injected = await fetch(`http://127.0.0.1:${port}/inject/9d2f6a1e8c4b7053`, { method: 'POST' });
      assert.equal(injected.status, 200);
      secureDevice = new Lwm2mClient({
        endpointName: 'sensor-1',
        serverUri: 'coaps://127.0.0.1:5684',
        psk: { identity: 'sensor-1', key: Buffer.from('sensor-1-key-123') },
        registerRetry: { initialDelayMs: 200, maxDelayMs: 500, maxAttempts: 10 },
      });
      await secureDevice.start();
      assert.equal(secureDevice.state, 'registered');
    } finally {
      await secureDevice?.stop({ timeoutMs: 2000 }).catch(() => undefined);
      await device?.stop();
      child.kill('SIGTERM');
      await exited;
      fs.rmSync(userDir, { recursive: true, force: true });
    }
  });
});
