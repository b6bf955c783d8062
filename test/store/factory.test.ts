// The store factory as a user of the library meets it (lib/index.ts): stores opened on a folder, given to an
// Lwm2mServer or a BootstrapServer, survive a restart; memory stores are the default kind.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { BootstrapServer, Lwm2mServer, openBootstrapStores, openServerStores } from '../../lib';
import type { Lwm2mServerOptions, Notification, ServerStores, StoreSettings } from '../../lib';
import { Bench, FAST_COAP, nextEvent } from '../client/helpers';

/** A server on `stores`, as a user of the library wires them (plain CoAP, so no DTLS session store). */
function serverOn(stores: ServerStores, port: number): Lwm2mServer {
  const options: Partial<Lwm2mServerOptions> = {
    address: '127.0.0.1',
    port,
    lifetimeGraceSeconds: 0,
    coap: { ...FAST_COAP },
    registrationStore: stores.registrationStore,
    observationStore: stores.observationStore,
    securityStore: stores.securityStore,
    queuedRequestStore: stores.queuedRequests,
  };
  return new Lwm2mServer(options);
}

describe('the store factory, from lib/index.ts', () => {
  let dir: string;
  const bench = new Bench();
  const opened: Array<{ stores: ServerStores; server: Lwm2mServer }> = [];

  beforeEach(() => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'lwm2m-factory-'));
  });
  afterEach(async () => {
    await bench.close();
    for (const { server, stores } of opened.splice(0)) {
      await server.stop();
      await stores.close();
    }
    rmSync(dir, { recursive: true, force: true });
  });

  it('file: a server restarted on stores opened again on the same folder knows its devices, observations and credentials', async () => {
    const settings: StoreSettings = { kind: 'file', dir, secret: 'factory test secret' };
    const firstStores = openServerStores(settings);
    await firstStores.ready;
    assert.equal(firstStores.describe, `file ${path.join(dir, 'server.journal')}`);
    const first = serverOn(firstStores, 0);
    const port = (await first.start()).port;
    bench.port = port;
    const device = await bench.registered({ endpointName: 'pump-3', lifetime: 3600 });
    await first.observe('pump-3', '/3/0/9', { owner: 'owner-1' });
    await firstStores.securityStore.add({
      endpoint: 'valve-1',
      mode: 'psk',
      identity: 'valve-1-id',
      key: Buffer.from('00112233', 'hex'),
    });
    // The process goes away: the socket closes, the journal is closed; only the folder remains.
    await first.stop();
    await firstStores.close();

    const stores = openServerStores(settings);
    await stores.ready;
    const server = serverOn(stores, port);
    opened.push({ stores, server });
    await server.start();
    assert.ok(await server.getRegistration('pump-3'), 'registration read back from the file');
    assert.deepEqual(
      (await server.listObservations('pump-3')).map((o) => [o.path, o.owners]),
      [['/3/0/9', ['owner-1']]],
    );
    const credentials = await stores.securityStore.getByPskIdentity('valve-1-id');
    assert.equal(credentials?.endpoint, 'valve-1');
    assert.deepEqual(credentials?.key, Buffer.from('00112233', 'hex'));
    device.set('/3/0/9', 42);
    const notification = await nextEvent<Notification>(server, 'notification');
    assert.equal(notification.value, 42);
  });

  it('file: a bootstrap server gets its configurations back from the folder', async () => {
    const settings: StoreSettings = { kind: 'file', dir, secret: 'factory test secret' };
    const first = openBootstrapStores(settings);
    await first.ready;
    await first.configStore.set('valve-*', {
      servers: [{ shortServerId: 101, uri: 'coap://127.0.0.1:5683', lifetime: 300 }],
    });
    await first.close();

    const problems: string[] = [];
    const stores = openBootstrapStores(settings, { onProblem: (message) => problems.push(message) });
    await stores.ready;
    const server = new BootstrapServer({
      address: '127.0.0.1',
      port: 0,
      configStore: stores.configStore,
      securityStore: stores.securityStore,
    });
    try {
      const config = await server.configStore.get('valve-7');
      assert.equal(config?.servers[0]?.shortServerId, 101);
      assert.deepEqual(problems, []);
    } finally {
      await server.stop();
      await stores.close();
    }
  });

  it('memory: stores that start empty and keep nothing', async () => {
    const stores = openServerStores({ kind: 'memory' });
    await stores.ready;
    assert.equal(stores.describe, 'memory');
    assert.equal(stores.link, undefined);
    assert.equal(await stores.registrationStore.size(), 0);
    await stores.close();
  });

  it('file: refuses settings without a folder', () => {
    assert.throws(() => openServerStores({ kind: 'file' }), /needs the folder/);
  });
});
