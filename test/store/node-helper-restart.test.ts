import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Lwm2mClient } from '../../lib/client';
import { resetHosts } from '../../nodes/shared/server-host';
import { FAST_COAP, waitFor } from '../client/helpers';
import { freeUdpPort, helper, ourNodes } from '../nodes/helper';
import type { TestNode } from '../nodes/helper';

describe('lwm2m-server node on the file store: flows unloaded, the process state forgotten, flows loaded again', function () {
  this.timeout(30_000);
  let storeDir: string;
  let device: Lwm2mClient | undefined;

  before(() => {
    storeDir = fs.mkdtempSync(path.join(os.tmpdir(), 'lwm2m-helper-restart-'));
  });
  after(async () => {
    await device?.stop({ deregister: false, timeoutMs: 500 }).catch(() => undefined);
    await helper.unload();
    await resetHosts();
    fs.rmSync(storeDir, { recursive: true, force: true });
  });

  it('registrations, observations and device credentials come back from the file', async () => {
    const port = await freeUdpPort();
    const flow = [
      {
        id: 'srv',
        type: 'lwm2m-server',
        address: '127.0.0.1',
        port,
        dtlsEnabled: false,
        store: 'file',
        storeDir,
        ackTimeout: 200,
        ackRandomFactor: 1.2,
      },
      {
        id: 'obs',
        type: 'lwm2m-observe',
        server: 'srv',
        endpoint: 'tank-level-1',
        path: '/3/0/9',
        startOn: 'deploy',
        wires: [['sink']],
      },
      { id: 'sink', type: 'helper' },
    ];
    await helper.load(ourNodes, flow, { srv: { storeSecret: 'flow secret' } });
    const values: unknown[] = [];
    const listen = () =>
      (helper.getNode('sink') as TestNode).on('input', (msg: Record<string, unknown>) => values.push(msg.payload));
    listen();
    device = new Lwm2mClient({
      endpointName: 'tank-level-1',
      serverUri: `coap://127.0.0.1:${port}`,
      bindAddress: '127.0.0.1',
      lifetime: 3600,
      coap: { ...FAST_COAP },
    });
    let registrations = 0;
    device.on('registered', () => registrations++);
    await device.start();
    await waitFor(() => values.length > 0, 5000, 'the first value');
    const server = (helper.getNode('srv') as unknown as { server: import('../../lib/server/lwm2m-server').Lwm2mServer })
      .server;
    await server.securityStore.add({
      endpoint: 'other-device',
      mode: 'psk',
      identity: 'other-device',
      key: Buffer.from('0123456789abcdef'),
    });

    await helper.unload();
    await resetHosts(); // what a new process would start from: nothing in memory
    assert.ok(fs.readdirSync(storeDir).includes('server.journal'));

    await helper.load(ourNodes, flow, { srv: { storeSecret: 'flow secret' } });
    values.length = 0;
    listen();
    const restarted = (
      helper.getNode('srv') as unknown as { server: import('../../lib/server/lwm2m-server').Lwm2mServer }
    ).server;
    await waitFor(() => restarted.running, 5000, 'the server to start');
    assert.ok(await restarted.getRegistration('tank-level-1'));
    assert.equal((await restarted.securityStore.getByPskIdentity('other-device'))?.endpoint, 'other-device');
    values.length = 0;
    device.set('/3/0/9', 73);
    await waitFor(() => values.includes(73), 5000, 'a notification after the reload');
    assert.equal(registrations, 1);
  });
});
