import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Lwm2mServer } from '../../lib/server/lwm2m-server';
import type { Notification } from '../../lib/server/observation-service';
import { FileObservationStore, FileRegistrationStore, FileSecurityStore, openJournal } from '../../lib/store/file';
import type { Journal } from '../../lib/store/journal';
import { Bench, FAST_COAP, nextEvent } from '../client/helpers';

/** A server on the file store of `dir`, as a restarted process would make it. */
function fileServer(dir: string, port: number): { server: Lwm2mServer; journal: Journal } {
  const journal = openJournal(dir, 'server');
  const server = new Lwm2mServer({
    address: '127.0.0.1',
    port,
    lifetimeGraceSeconds: 0,
    coap: { ...FAST_COAP },
    registrationStore: new FileRegistrationStore(journal),
    observationStore: new FileObservationStore(journal),
    securityStore: new FileSecurityStore(journal),
  });
  return { server, journal };
}

describe('a server restarted on its file store', () => {
  let dir: string;
  const bench = new Bench();
  const opened: Array<{ server: Lwm2mServer; journal: Journal }> = [];

  before(() => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'lwm2m-restart-'));
  });
  after(async () => {
    await bench.close();
    for (const { server, journal } of opened) {
      await server.stop();
      await journal.close();
    }
    rmSync(dir, { recursive: true, force: true });
  });

  it('still knows its devices and their observations: notifications flow and reads work with no re-registration', async () => {
    const first = fileServer(dir, 0);
    opened.push(first);
    const port = (await first.server.start()).port;
    bench.port = port;
    const device = await bench.registered({ endpointName: 'irrigation-7', lifetime: 3600 });
    await first.server.observe('irrigation-7', '/3/0/9', { owner: 'flow-node-1' });
    device.set('/3/0/9', 55);
    const seen = await nextEvent<Notification>(first.server, 'notification');
    assert.equal(seen.value, 55);

    // The process goes away: the socket closes, and nothing but the file remains.
    await first.server.stop();
    await first.journal.close();
    opened.shift();

    const second = fileServer(dir, port);
    opened.push(second);
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
