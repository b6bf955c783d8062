import { strict as assert } from 'node:assert';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Lwm2mServerConfigNode } from '../../nodes/shared/server-config';
import { resetHosts } from '../../nodes/shared/server-host';
import { freeUdpPort, helper, nextMessage, ourNodes, registrationOn, until } from './helper';

const deviceNode = require('../../nodes/lwm2m-device');
const serverObjectNode = require('../../nodes/lwm2m-server-object');
/** Node-RED's Complete node: a msg once the device node has handled (done) the msg it was given. */
const completeNode = require('@node-red/nodes/core/common/24-complete.js');

describe('lwm2m-device node (simulated device) with the server nodes', function () {
  afterEach(async function () {
    await helper.unload();
    await resetHosts();
  });

  it('registers, serves reads, reports server writes as msgs, and de-registers on close', async function () {
    const port = await freeUdpPort();
    await helper.load(
      [...ourNodes, deviceNode, completeNode],
      [
        { id: 'f1', type: 'tab', label: 'test' },
        { id: 'srv', type: 'lwm2m-server', address: '127.0.0.1', port: String(port) },
        { id: 'reg', z: 'f1', type: 'lwm2m-register-in', server: 'srv', wires: [['regOut']] },
        { id: 'regOut', z: 'f1', type: 'helper' },
        { id: 'handled', z: 'f1', type: 'complete', scope: ['dev'], wires: [['handledOut']] },
        { id: 'handledOut', z: 'f1', type: 'helper' },
        {
          id: 'dev',
          z: 'f1',
          type: 'lwm2m-device',
          endpoint: 'flow-device',
          serverUri: `coap://127.0.0.1:${port}`,
          objects: '3303, 3425',
          lifetime: '60',
          wires: [['devOut']],
        },
        { id: 'devOut', z: 'f1', type: 'helper' },
      ],
    );
    const config = helper.getNode('srv') as unknown as Lwm2mServerConfigNode;
    const registrations: Record<string, unknown>[] = [];
    helper.getNode('regOut').on('input', (msg: Record<string, unknown>) => registrations.push(msg));
    const deviceMessages: Record<string, unknown>[] = [];
    helper.getNode('devOut').on('input', (msg: Record<string, unknown>) => deviceMessages.push(msg));
    await until(() => registrations.length > 0, 'the register-in msg');
    assert.equal(registrations[0]?.topic, 'flow-device');
    const objects = (registrations[0].payload as { objects: Record<string, unknown> }).objects;
    assert.ok(objects['3303'] && objects['3425'], 'the configured objects are announced');

    // A value set from the flow is what the server reads.
    const handled = nextMessage(helper.getNode('handledOut'));
    helper.getNode('dev').receive({ topic: '/3303/0/5700', payload: '24.5' });
    await handled;
    const read = await config.server.read('flow-device', '/3303/0/5700');
    assert.equal(read.value, 24.5);

    // A write from the server comes out of the device node.
    await config.server.write('flow-device', '/3425/0/3', 50);
    const isWrite = (msg: Record<string, unknown>) => (msg.lwm2m as { event?: string }).event === 'write';
    await until(() => deviceMessages.some(isWrite), 'the write msg from the device node');
    const written = deviceMessages.find(isWrite);
    assert.ok(written, 'the write reached the flow');
    assert.equal(written.topic, 'flow-device/3425/0/3');
    assert.equal(written.payload, 50);

    // A bad path from the flow is an error for a Catch node, not a crash.
    const failed = new Promise<{ args: unknown[] }>((resolve) => helper.getNode('dev').on('call:error', resolve));
    helper.getNode('dev').receive({ topic: 'no-path', payload: 1 });
    assert.match(String(((await failed).args[0] as Error).message), /msg.topic must be the resource path/);
  });

  it('over DTLS: a simulated device with a PSK registers on the CoAPs port, credentials from a file', async function () {
    const key = Buffer.from('flow-psk-key-123').toString('hex');
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'lwm2m-cred-'));
    const file = path.join(dir, 'devices.csv');
    fs.writeFileSync(file, `endpoint,mode,identity,key\nsecure-device,psk,dev-id,${key}\n`);
    const securePort = await freeUdpPort();
    try {
      await helper.load(
        [...ourNodes, deviceNode],
        [
          { id: 'f1', type: 'tab', label: 'test' },
          {
            id: 'srv',
            type: 'lwm2m-server',
            address: '127.0.0.1',
            port: '0',
            plainEnabled: false,
            dtlsEnabled: true,
            securePort: String(securePort),
            credentialsFile: file,
          },
          { id: 'reg', z: 'f1', type: 'lwm2m-register-in', server: 'srv', wires: [['regOut']] },
          { id: 'regOut', z: 'f1', type: 'helper' },
          {
            id: 'dev',
            z: 'f1',
            type: 'lwm2m-device',
            endpoint: 'secure-device',
            serverUri: `coaps://127.0.0.1:${securePort}`,
            lifetime: '60',
            wires: [[]],
          },
        ],
        { dev: { pskIdentity: 'dev-id', pskKey: key } },
      );
      const registrations: Record<string, unknown>[] = [];
      helper.getNode('regOut').on('input', (msg: Record<string, unknown>) => registrations.push(msg));
      await until(() => registrations.length > 0, 'the register-in msg');
      assert.equal(registrations[0]?.topic, 'secure-device');
      assert.equal((registrations[0].payload as { secure?: boolean }).secure, true);
      assert.deepEqual((registrations[0].payload as { security?: unknown }).security, {
        mode: 'psk',
        identity: 'dev-id',
      });
      const config = helper.getNode('srv') as unknown as Lwm2mServerConfigNode;
      assert.equal(config.server.address?.port, securePort, 'DTLS only: the one listener is the secure one');
      assert.equal((await config.server.read('secure-device', '/3/0/0')).code, '2.05');
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('server account node: update trigger and default periods on the device; bad action to Catch', async function () {
    const port = await freeUdpPort();
    await helper.load(
      [...ourNodes, deviceNode, serverObjectNode],
      [
        { id: 'f1', type: 'tab', label: 'test' },
        { id: 'srv', type: 'lwm2m-server', address: '127.0.0.1', port: String(port) },
        {
          id: 'dev',
          z: 'f1',
          type: 'lwm2m-device',
          endpoint: 'acct-dev',
          serverUri: `coap://127.0.0.1:${port}`,
          wires: [[]],
        },
        {
          id: 'act',
          z: 'f1',
          type: 'lwm2m-server-object',
          server: 'srv',
          endpoint: 'acct-dev',
          action: '',
          wires: [['out']],
        },
        { id: 'out', z: 'f1', type: 'helper' },
      ],
    );
    const config = helper.getNode('srv') as unknown as Lwm2mServerConfigNode;
    await registrationOn(config, 'acct-dev');
    const updated = new Promise((resolve) => config.server.once('updated', resolve));
    const out: Record<string, unknown>[] = [];
    helper.getNode('out').on('input', (msg: Record<string, unknown>) => out.push(msg));
    helper.getNode('act').receive({ action: 'update' });
    await updated;
    await until(() => out.length > 0, 'the msg of the update action');
    assert.equal((out[0].lwm2m as Record<string, unknown>).path, '/1/0');
    assert.equal((out[0].lwm2m as Record<string, unknown>).code, '2.04');

    const failed = new Promise<{ args: unknown[] }>((resolve) => helper.getNode('act').on('call:error', resolve));
    helper.getNode('act').receive({ action: 'explode' });
    const [error, msg] = (await failed).args as [Error, Record<string, unknown>];
    assert.match(error.message, /unknown action "explode"/);
    assert.equal((msg.lwm2m as Record<string, unknown>).code, 'bad-request');
  });
});

describe('composite modes of read and write nodes (with a simulated device)', function () {
  afterEach(async function () {
    await helper.unload();
    await resetHosts();
  });

  it('read of "a,b" is one Read-Composite; write mode composite is one Write-Composite', async function () {
    const port = await freeUdpPort();
    await helper.load(
      [...ourNodes, deviceNode, completeNode],
      [
        { id: 'f1', type: 'tab', label: 'test' },
        { id: 'srv', type: 'lwm2m-server', address: '127.0.0.1', port: String(port) },
        { id: 'handled', z: 'f1', type: 'complete', scope: ['dev'], wires: [['handledOut']] },
        { id: 'handledOut', z: 'f1', type: 'helper' },
        {
          id: 'dev',
          z: 'f1',
          type: 'lwm2m-device',
          endpoint: 'cmp',
          serverUri: `coap://127.0.0.1:${port}`,
          objects: '3303',
          wires: [[]],
        },
        {
          id: 'rd',
          z: 'f1',
          type: 'lwm2m-read',
          server: 'srv',
          endpoint: 'cmp',
          path: '/3303/0/5700, /3/0/9',
          wires: [['out']],
        },
        { id: 'wr', z: 'f1', type: 'lwm2m-write', server: 'srv', endpoint: 'cmp', mode: 'composite', wires: [['out']] },
        { id: 'out', z: 'f1', type: 'helper' },
      ],
    );
    const config = helper.getNode('srv') as unknown as Lwm2mServerConfigNode;
    await registrationOn(config, 'cmp');
    const handled = nextMessage(helper.getNode('handledOut'));
    helper.getNode('dev').receive({ topic: '/3303/0/5700', payload: 18.25 });
    await handled;
    const out: Record<string, unknown>[] = [];
    helper.getNode('out').on('input', (msg: Record<string, unknown>) => out.push(msg));
    helper.getNode('rd').receive({});
    await until(() => out.length >= 1, 'the msg of the read');
    const values = out[0].payload as Record<string, unknown>;
    assert.equal(values['/3303/0/5700'], 18.25);
    assert.equal(typeof values['/3/0/9'], 'number');

    helper.getNode('wr').receive({ payload: { '/3303/0/5750': 'greenhouse', '/1/0/1': 120 } });
    await until(() => out.length >= 2, 'the msg of the write');
    assert.equal((out[1].lwm2m as Record<string, unknown>).code, '2.04');
    assert.equal((await config.server.read('cmp', '/3303/0/5750')).value, 'greenhouse');
  });
});
