/**
 * Real devices across a restart of the server on its file store (optional: the clients are built by hand).
 *   WAKAAMA_CLIENT  Eclipse Wakaama's example client without DTLS (`lwm2mclient`, examples/client)
 *   ANJAY_DEMO      AVSystem Anjay's demo client (`output/bin/demo`)
 *   npm run build:test && WAKAAMA_CLIENT=/path/lwm2mclient ANJAY_DEMO=/path/demo \
 *     npx mocha --no-config --timeout 60000 build/test/interop/restart-clients.test.js
 * The device registers, an observation is made, the server stops (nothing but the journal is left) and a new one
 * starts on the same port and file. The device's next Update must be answered 2.04 (a server that forgot it would
 * answer 4.04, and the device would register again), and its observation must still notify.
 */
import { strict as assert } from 'node:assert';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Notification } from '../../lib/server/observation-service';
import { nextEvent } from '../client/helpers';
import { FileServers } from '../store/file-servers';
import { ClientProcess } from './client-process';

const OPTIONS = { lifetimeGraceSeconds: 5 };

const clients: Array<{
  name: string;
  binary: string | undefined;
  args: (port: number, endpoint: string) => string[];
  observed: string;
}> = [
  {
    name: 'Wakaama lwm2mclient',
    binary: process.env.WAKAAMA_CLIENT,
    // -c: the battery level changes by itself (something to notify); lifetime 20 s: an Update within seconds.
    args: (port, endpoint) => [
      '-4',
      '-h',
      '127.0.0.1',
      '-p',
      String(port),
      '-l',
      '0',
      '-t',
      '20',
      '-n',
      endpoint,
      '-c',
    ],
    observed: '/3/0/9',
  },
  {
    name: 'Anjay demo',
    binary: process.env.ANJAY_DEMO,
    args: (port, endpoint) => ['-e', endpoint, '-u', `coap://127.0.0.1:${port}`, '-l', '20'],
    observed: '/3/0/13',
  },
];

for (const client of clients) {
  describe(`interop: ${client.name} across a restart of the server (file store)`, function () {
    this.timeout(90_000);
    let dir: string;
    let device: ClientProcess | undefined;
    const servers = new FileServers();

    before(function () {
      if (client.binary === undefined || !existsSync(client.binary)) this.skip();
      dir = mkdtempSync(join(tmpdir(), 'lwm2m-interop-restart-'));
    });
    after(async () => {
      await device?.stop();
      await servers.stopAll();
      if (dir) rmSync(dir, { recursive: true, force: true });
    });

    it('its next Update is answered 2.04 by the restarted server, and its observation still notifies', async () => {
      const first = servers.open(dir, { ...OPTIONS, port: 0 });
      const port = (await first.server.start()).port;
      const endpoint = `restart-${client.name.split(' ')[0].toLowerCase()}`;
      const registered = nextEvent(first.server, 'registered', 20_000);
      device = new ClientProcess(client.binary!, client.args(port, endpoint));
      await registered;
      await first.server.observe(endpoint, client.observed, { owner: 'interop', attributes: { pmax: 2 } });

      await servers.stop(first);
      const second = servers.open(dir, { ...OPTIONS, port });
      let registeredAgain = false;
      second.server.on('registered', () => (registeredAgain = true));
      const notified = nextEvent<Notification>(second.server, 'notification', 30_000);
      const updated = nextEvent(second.server, 'updated', 30_000);
      await second.server.start();
      await updated;
      const notification = await notified;
      assert.equal(notification.endpoint, endpoint);
      assert.equal(notification.path, client.observed);
      const read = await second.server.read(endpoint, '/3/0/0');
      assert.equal(read.code, '2.05');
      assert.equal(registeredAgain, false, `${client.name} did not have to register again:\n${device.tail()}`);
    });
  });
}
