import { strict as assert } from 'node:assert';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { CoapDevice } from './peers/coap-device';

const root = path.resolve(__dirname, '..', '..');

function freeTcpPort(): Promise<number> {
  return new Promise((resolve) => {
    const server = net.createServer();
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

describe('npm start (Node-RED with our nodes and the getting-started flow)', function () {
  this.timeout(60000);

  it('starts Node-RED, loads every node and takes device registrations on UDP 5683', async function () {
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
    } finally {
      await device?.stop();
      child.kill('SIGTERM');
      await exited;
      fs.rmSync(userDir, { recursive: true, force: true });
    }
  });
});
