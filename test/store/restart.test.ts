import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Notification } from '../../lib/server/observation-service';
import { Bench, FAST_COAP, nextEvent } from '../client/helpers';
import { FileServers } from './file-servers';

const OPTIONS = { lifetimeGraceSeconds: 0, coap: { ...FAST_COAP } };

describe('a server restarted on its file store', () => {
  let dir: string;
  const bench = new Bench();
  const servers = new FileServers();

  before(() => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'lwm2m-restart-'));
  });
  after(async () => {
    await bench.close();
    await servers.stopAll();
    rmSync(dir, { recursive: true, force: true });
  });

  it('still knows its devices and their observations: notifications flow and reads work with no re-registration', async () => {
    const first = servers.open(dir, { ...OPTIONS, port: 0 });
    const port = (await first.server.start()).port;
    bench.port = port;
    const device = await bench.registered({ endpointName: 'irrigation-7', lifetime: 3600 });
    await first.server.observe('irrigation-7', '/3/0/9', { owner: 'flow-node-1' });
    device.set('/3/0/9', 55);
    const seen = await nextEvent<Notification>(first.server, 'notification');
    assert.equal(seen.value, 55);

    // The process goes away: the socket closes, and nothing but the file remains.
    await servers.stop(first);

    const second = servers.open(dir, { ...OPTIONS, port });
    await second.server.start();
    const registration = await second.server.getRegistration('irrigation-7');
    assert.ok(registration, 'registration read back from the file');
    assert.deepEqual(
      (await second.server.listObservations('irrigation-7')).map((o) => [o.path, o.owners]),
      [['/3/0/9', ['flow-node-1']]],
    );
    let registeredAgain = false;
    device.once('registered', () => (registeredAgain = true));
    device.set('/3/0/9', 61);
    const notification = await nextEvent<Notification>(second.server, 'notification');
    assert.equal(notification.value, 61);
    assert.deepEqual(notification.owners, ['flow-node-1']);
    const read = await second.server.read('irrigation-7', '/3/0/0');
    assert.equal(typeof read.value, 'string');
    assert.equal(registeredAgain, false, 'the device did not have to register again');
  });
});
