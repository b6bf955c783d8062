/**
 * A lifetime the server writes into its own account on a device (/1/x/1) is the one the registration expires on,
 * also when the device's next Update carries no `lt` (Wakaama's never does). The device here is node-coap, which
 * answers every Write with 2.04 and sends exactly the Updates the test asks for. Expiry is driven by calling the
 * sweep with a clock value, never by waiting.
 */
import { strict as assert } from 'node:assert';
import { once } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Lwm2mServer } from '../../lib/server/lwm2m-server';
import type { Lwm2mServerOptions } from '../../lib/server/lwm2m-server';
import type { Registration } from '../../lib/server/registration';
import { FileRegistrationStore, openJournal } from '../../lib/store/file';
import type { Journal } from '../../lib/store/file/journal';
import { CoapDevice } from '../peers/coap-device';

const TEXT = 0;
const GRACE_SECONDS = 15;

/** Runs the server's expiry sweep as if the clock said `now`. */
function sweepAt(server: Lwm2mServer, now: number): Promise<void> {
  return (
    server as unknown as { registrationService: { sweep(now?: number): Promise<void> } }
  ).registrationService.sweep(now);
}

async function registration(server: Lwm2mServer, endpoint = 'dev-1'): Promise<Registration> {
  const found = await server.getRegistration(endpoint);
  assert.ok(found, `${endpoint} is registered`);
  return found;
}

describe('a lifetime the server wrote is adopted by the registration', function () {
  let server: Lwm2mServer;
  let device: CoapDevice;
  let dir: string | undefined;
  let journal: Journal | undefined;

  async function startServer(options: Partial<Lwm2mServerOptions> = {}): Promise<number> {
    server = new Lwm2mServer({
      address: '127.0.0.1',
      port: 0,
      lifetimeGraceSeconds: GRACE_SECONDS,
      coap: { ackTimeoutMs: 150, maxRetransmit: 2 },
      ...options,
    });
    return (await server.start()).port;
  }

  async function startDevice(port: number, links = '</1/0>,</3/0>', query = 'lt=60&lwm2m=1.1&b=U'): Promise<void> {
    device = new CoapDevice('dev-1', port);
    await device.start();
    device.resources.set('/1/0/0', { contentFormat: TEXT, payload: '101' });
    device.resources.set('/1/1/0', { contentFormat: TEXT, payload: '102' });
    const registered = once(server, 'registered');
    await device.register(query, links);
    await registered;
  }

  afterEach(async function () {
    await device?.stop();
    await server?.stop();
    await journal?.close();
    journal = undefined;
    if (dir) rmSync(dir, { recursive: true, force: true });
    dir = undefined;
  });

  it('written 60 -> 300 s: the next Update without lt keeps it alive past 75 s, until 300 s (+ grace)', async function () {
    await startDevice(await startServer());
    assert.equal((await registration(server)).lifetime, 60);

    const updated = once(server, 'updated');
    const written = await server.write('dev-1', '/1/0/1', 300);
    assert.equal(written.code, '2.04');
    assert.equal((await registration(server)).lifetime, 300);
    assert.equal((await registration(server)).lifetimeSource, 'written');
    // Told as an update of the registration (register-in's 'updated', the device browser).
    const [adopted] = (await updated) as [Registration];
    assert.equal(adopted.lifetime, 300);
    assert.equal(adopted.lifetimeSource, 'written');

    // Wakaama's Update after the Write: no lt.
    assert.equal(await device.update(''), '2.04');
    const afterUpdate = await registration(server);
    assert.equal(afterUpdate.lifetime, 300);
    assert.equal(afterUpdate.lifetimeSource, 'written');

    const from = afterUpdate.lastUpdateAt;
    await sweepAt(server, from + 76_000); // the old lifetime (60 + 15 s grace) is over
    assert.equal((await registration(server)).id, afterUpdate.id, 'still registered at 76 s');
    await sweepAt(server, from + (300 + GRACE_SECONDS) * 1000 - 1000);
    assert.ok(await server.getRegistration('dev-1'), 'still registered just before 300 s + grace');

    const expired = once(server, 'expired');
    await sweepAt(server, from + (300 + GRACE_SECONDS) * 1000 + 1000);
    await expired;
    assert.equal(await server.getRegistration('dev-1'), undefined);
  });

  it('an Update that states a lifetime again replaces the written one, and the mark goes', async function () {
    await startDevice(await startServer());
    await server.write('dev-1', '/1/0/1', 300);
    assert.equal((await registration(server)).lifetimeSource, 'written');
    assert.equal(await device.update('lt=120'), '2.04');
    const current = await registration(server);
    assert.equal(current.lifetime, 120);
    assert.equal(current.lifetimeSource, undefined);
    assert.equal(current.lifetimeWrittenAt, undefined);
    assert.ok(!('lifetimeSource' in current), 'no leftover key in the record');
  });

  it('adopts it from a Write of the instance (/1/0 with resource 1) and from a Write-Composite', async function () {
    await startDevice(await startServer(), '</>;rt="oma.lwm2m";ct=110,</1/0>,</3/0>');
    device.handler = (request) => (request.method === 'iPATCH' ? { code: '2.04' } : undefined);
    await server.write('dev-1', '/1/0', { 1: 120, 2: 5 }, { mode: 'update' });
    assert.equal((await registration(server)).lifetime, 120);
    assert.equal((await registration(server)).lifetimeSource, 'written');

    await server.writeComposite('dev-1', { '/3/0/14': '+01:00', '/1/0/1': 600 });
    assert.equal((await registration(server)).lifetime, 600);

    // A Write of another resource of the account changes nothing.
    await server.write('dev-1', '/1/0/2', 10);
    assert.equal((await registration(server)).lifetime, 600);
  });

  it('with several Server accounts: only the one known to be this server (by its Short Server ID) counts', async function () {
    await startDevice(await startServer(), '</1/0>,</1/1>,</3/0>');
    // Not known yet which of /1/0 and /1/1 is this server's account: another server's lifetime is not ours.
    await server.write('dev-1', '/1/1/1', 300);
    assert.equal((await registration(server)).lifetime, 60);
    await server.write('dev-1', '/1/0/1', 300);
    assert.equal((await registration(server)).lifetime, 60);

    // The flow says this server is Short Server ID 101: /1/0 reads 101.
    assert.equal(await server.serverAccountPath('dev-1', 101), '/1/0');
    await server.write('dev-1', '/1/1/1', 900);
    assert.equal((await registration(server)).lifetime, 60, "the other server's account");
    await server.write('dev-1', '/1/0/1', 300);
    assert.equal((await registration(server)).lifetime, 300);
    assert.equal((await registration(server)).lifetimeSource, 'written');
  });

  it('a device that refuses the Write keeps its lifetime', async function () {
    await startDevice(await startServer());
    device.handler = (request) => (request.method === 'PUT' ? { code: '4.05' } : undefined);
    await assert.rejects(server.write('dev-1', '/1/0/1', 300), /4\.05/);
    assert.equal((await registration(server)).lifetime, 60);
    assert.equal((await registration(server)).lifetimeSource, undefined);
  });

  it('is kept with the registration in the file store, and expiry follows it after a restart', async function () {
    dir = mkdtempSync(path.join(os.tmpdir(), 'lwm2m-written-lifetime-'));
    journal = openJournal(dir, 'server');
    const port = await startServer({ registrationStore: new FileRegistrationStore(journal) });
    await startDevice(port);
    await server.write('dev-1', '/1/0/1', 300);
    assert.equal(await device.update(''), '2.04');
    const before = await registration(server);
    await server.stop();
    await journal.close();

    // A restart: the process forgot everything but the file.
    journal = openJournal(dir, 'server');
    await startServer({ registrationStore: new FileRegistrationStore(journal) });
    const reloaded = await registration(server);
    assert.equal(reloaded.lifetime, 300);
    assert.equal(reloaded.lifetimeSource, 'written');
    assert.equal(reloaded.lifetimeWrittenAt, before.lifetimeWrittenAt);
    await sweepAt(server, before.lastUpdateAt + 76_000);
    assert.ok(await server.getRegistration('dev-1'), 'still registered at 76 s after the restart');
  });
});
