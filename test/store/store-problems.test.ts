/**
 * What a file store skips when Node-RED starts (a torn last journal line, entries sealed with another secret) is
 * reported once: a warning in the Node-RED log with the counts, the server node's status, and the device browser.
 * The journal is read while the stores are made, before the config node could listen: the report must not be lost.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { NodeStatus } from '../../nodes/shared/node-red';
import type { Lwm2mServerConfigNode } from '../../nodes/shared/server-config';
import { openBootstrapStores, openServerStores, storeEvents } from '../../nodes/shared/persistence';
import { followStoreLink } from '../../nodes/shared/store-problems';
import { resetHosts } from '../../nodes/shared/server-host';
import { resetBootstrapHosts } from '../../nodes/shared/bootstrap-host';
import { resetDeviceBrowser } from '../../nodes/shared/admin-api';
import { waitFor } from '../client/helpers';
import { freeUdpPort, helper } from '../nodes/helper';
import type { TestNode } from '../nodes/helper';

const nodeModules = [
  require('../../nodes/plugins/lwm2m-device-browser'),
  require('../../nodes/lwm2m-server'),
  require('../../nodes/lwm2m-register-in'),
  require('../../nodes/lwm2m-bootstrap'),
  require('../../nodes/lwm2m-bootstrap-in'),
];

/** Three device keys sealed with a secret the flow does not have, then a line cut short by a kill. */
async function spoilServerJournal(dir: string): Promise<void> {
  const stores = openServerStores({ kind: 'file', dir, secret: 'the secret of another installation' }, () => undefined);
  await stores.ready;
  for (const name of ['pump-1', 'pump-2', 'pump-3'])
    await stores.securityStore.add({
      endpoint: name,
      mode: 'psk',
      identity: name,
      key: Buffer.from('0123456789abcdef'),
    });
  await stores.close();
  fs.appendFileSync(path.join(dir, 'server.journal'), '["p","registrations","half-writ');
}

/** One bootstrap configuration (sealed) with another secret, and a torn line. */
async function spoilBootstrapJournal(dir: string): Promise<void> {
  const stores = openBootstrapStores(
    { kind: 'file', dir, secret: 'the secret of another installation' },
    () => undefined,
  );
  await stores.ready;
  await stores.configStore.set('valve-*', {
    servers: [{ shortServerId: 101, uri: 'coap://127.0.0.1:5683', lifetime: 300 }],
  });
  await stores.close();
  fs.appendFileSync(path.join(dir, 'bootstrap.journal'), '["s","bootstrap-configs","va');
}

describe('store problems found when Node-RED starts (file store, through node-red-node-test-helper)', function () {
  this.timeout(20_000);
  let dir: string;

  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'lwm2m-store-problems-'));
  });
  afterEach(async () => {
    await helper.unload();
    resetDeviceBrowser();
    await resetHosts();
    await resetBootstrapHosts();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  /**
   * The store warnings a node gave since the flow was loaded: Node-RED's node methods are sinon spies the helper sets
   * before the flow starts, shared by every node, so the calls made while the config node was constructed count.
   */
  function storeWarnings(nodeId: string): string[] {
    const spy = helper.getNode(nodeId).warn as unknown as {
      getCalls(): Array<{ thisValue: { id: string }; args: unknown[] }>;
    };
    return spy
      .getCalls()
      .filter((call) => call.thisValue.id === nodeId)
      .map((call) => String(call.args[0]))
      .filter((text) => text.startsWith('store:'));
  }

  function record(nodeId: string, call: 'warn' | 'status'): unknown[] {
    const calls: unknown[] = [];
    (helper.getNode(nodeId) as TestNode).on(`call:${call}`, (event: { args: [unknown] }) => calls.push(event.args[0]));
    return calls;
  }

  it('lwm2m-server: one warning with the counts, a yellow status that says so, and the device browser shows it', async () => {
    const serverDir = path.join(dir, 'server');
    await spoilServerJournal(serverDir);
    const flow = [
      { id: 'f1', type: 'tab', label: 'store problems' },
      {
        id: 'srv',
        type: 'lwm2m-server',
        address: '127.0.0.1',
        port: await freeUdpPort(),
        dtlsEnabled: false,
        store: 'file',
        storeDir: serverDir,
      },
      { id: 'reg', type: 'lwm2m-register-in', z: 'f1', server: 'srv', wires: [[]] },
    ];
    await helper.load(nodeModules, flow, { srv: { storeSecret: 'this installation' } });
    const statuses = record('reg', 'status') as NodeStatus[];
    await (helper.getNode('srv') as unknown as Lwm2mServerConfigNode).ready();

    const warnings = storeWarnings('srv');
    assert.equal(warnings.length, 1, `one warning: ${JSON.stringify(warnings)}`);
    assert.match(warnings[0], /1 unreadable line in .*server\.journal skipped/);
    assert.match(warnings[0], /3 encrypted entries of "security" in .*server\.journal could not be decrypted/);
    await waitFor(() => statuses.some((status) => /store:/.test(status.text ?? '')), 5000, 'a status about the store');
    const yellow = statuses.find((status) => /store:/.test(status.text ?? ''))!;
    assert.equal(yellow.fill, 'yellow');
    assert.match(yellow.text!, /· 0 devices · store: 1 torn line, 3 unreadable$/);

    const api = helper.request();
    const listing = await api.get('/lwm2m/servers').expect(200);
    const entry = (
      listing.body as { servers: Array<{ id: string; store?: { note?: string; messages: string[] } }> }
    ).servers.find((listed) => listed.id === 'srv');
    assert.equal(entry?.store?.note, 'store: 1 torn line, 3 unreadable');
    assert.equal(entry?.store?.messages.length, 2);

    // A redeploy (same stores, kept by the process): the status still says so, the log is not told again.
    await helper.unload();
    await helper.load(nodeModules, flow, { srv: { storeSecret: 'this installation' } });
    const statusesAgain = record('reg', 'status') as NodeStatus[];
    await waitFor(
      () => statusesAgain.some((status) => /store: 1 torn line, 3 unreadable/.test(status.text ?? '')),
      5000,
      'the status after the redeploy',
    );
    assert.deepEqual(storeWarnings('srv'), []);
  });

  it('lwm2m-bootstrap: the same for its store', async () => {
    const bootstrapDir = path.join(dir, 'bootstrap');
    await spoilBootstrapJournal(bootstrapDir);
    const flow = [
      { id: 'f1', type: 'tab', label: 'store problems' },
      {
        id: 'bs',
        type: 'lwm2m-bootstrap',
        address: '127.0.0.1',
        port: await freeUdpPort(),
        store: 'file',
        storeDir: bootstrapDir,
      },
      { id: 'bsin', type: 'lwm2m-bootstrap-in', z: 'f1', bootstrap: 'bs', wires: [[]] },
    ];
    await helper.load(nodeModules, flow, { bs: { storeSecret: 'this installation' } });
    const statuses = record('bsin', 'status') as NodeStatus[];
    await waitFor(() => statuses.some((status) => /store:/.test(status.text ?? '')), 5000, 'a status about the store');
    const warnings = storeWarnings('bs');
    assert.equal(warnings.length, 1, JSON.stringify(warnings));
    assert.match(warnings[0], /1 unreadable line in .*bootstrap\.journal skipped/);
    assert.match(warnings[0], /1 encrypted entry of "bootstrap-configs" in .*could not be decrypted/);
    const yellow = statuses.find((status) => /store:/.test(status.text ?? ''))!;
    assert.equal(yellow.fill, 'yellow');
    assert.match(yellow.text!, /store: 1 torn line, 1 unreadable$/);
  });
});

describe('followStoreLink (nodes/shared/store-problems.ts): Redis of one host going and coming', function () {
  it("tells its own host's down and up once each, another host's never, and nothing once stopped", function () {
    const told: string[] = [];
    const listening = storeEvents.listenerCount('down') + storeEvents.listenerCount('up');
    const link = followStoreLink('host-a', {
      down: (err) => told.push(`down ${err.message}`),
      up: () => told.push('up'),
    });
    try {
      storeEvents.emit('down', 'host-b', new Error('b'));
      storeEvents.emit('up', 'host-a');
      assert.equal(link.down, false);
      storeEvents.emit('down', 'host-a', new Error('first'));
      storeEvents.emit('down', 'host-a', new Error('again'));
      assert.equal(link.down, true);
      storeEvents.emit('up', 'host-b');
      storeEvents.emit('up', 'host-a');
      storeEvents.emit('up', 'host-a');
      assert.equal(link.down, false);
      assert.deepEqual(told, ['down first', 'up']);
    } finally {
      link.stop();
    }
    storeEvents.emit('down', 'host-a', new Error('after stop'));
    assert.deepEqual(told, ['down first', 'up']);
    assert.equal(storeEvents.listenerCount('down') + storeEvents.listenerCount('up'), listening);
  });
});
