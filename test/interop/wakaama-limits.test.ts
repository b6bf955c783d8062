/**
 * Eclipse Wakaama's example client against the server's written lifetime and its notification guard (optional: the
 * client is built by hand):
 *   npm run build:test && WAKAAMA_CLIENT=/path/lwm2mclient npx mocha --no-config --timeout 60000 \
 *     build/test/interop/wakaama-limits.test.js
 * - Wakaama registers with lifetime 60 s; the server writes 300 s into /1/0/1. Wakaama never sends `lt` in an Update
 *   (and sends none for minutes): a server that kept 60 s expired it at 75 s, and Wakaama fell into bootstrap. The
 *   sweep is run as if 76 s had passed: the registration stays.
 * - A Write-Attributes that clears pmax makes Wakaama notify without pause (42,000 a second were seen): the
 *   observation is coalesced, then cancelled; the cancel request stops Wakaama (a RST alone does not: it matches a
 *   RST against the last notification it sent).
 */
import { strict as assert } from 'node:assert';
import { existsSync } from 'node:fs';
import { Lwm2mServer } from '../../lib/server/lwm2m-server';
import type { LimitReport } from '../../lib/server/limit-warnings';
import type { StoredObservation } from '../../lib/server/stores';
import { nextEvent } from '../client/helpers';
import { ClientProcess } from './client-process';

const binary = process.env.WAKAAMA_CLIENT;

describe('interop: Wakaama lwm2mclient, a written lifetime and a notification flood', function () {
  this.timeout(60_000);
  let server: Lwm2mServer;
  let device: ClientProcess | undefined;
  const reports: LimitReport[] = [];

  before(function () {
    if (binary === undefined || !existsSync(binary)) this.skip();
  });

  async function start(endpoint: string, options: ConstructorParameters<typeof Lwm2mServer>[0] = {}): Promise<void> {
    server = new Lwm2mServer({ address: '127.0.0.1', port: 0, lifetimeGraceSeconds: 15, ...options });
    server.on('limited', (report) => reports.push(report));
    const { port } = await server.start();
    const registered = nextEvent(server, 'registered', 20_000);
    device = new ClientProcess(binary!, [
      '-4',
      '-h',
      '127.0.0.1',
      '-p',
      String(port),
      '-l',
      '0',
      '-t',
      '60',
      '-n',
      endpoint,
      '-c',
    ]);
    await registered;
  }

  afterEach(async function () {
    await device?.stop();
    device = undefined;
    await server?.stop();
    reports.length = 0;
  });

  it('the lifetime written 60 -> 300 s keeps it registered past 75 s', async function () {
    await start('wk-lifetime');
    assert.equal((await server.getRegistration('wk-lifetime'))?.lifetime, 60);
    assert.equal((await server.write('wk-lifetime', '/1/0/1', 300)).code, '2.04');
    const registration = (await server.getRegistration('wk-lifetime'))!;
    assert.equal(registration.lifetime, 300);
    assert.equal(registration.lifetimeSource, 'written');
    const sweep = (server as unknown as { registrationService: { sweep(now?: number): Promise<void> } })
      .registrationService;
    await sweep.sweep(registration.lastUpdateAt + 76_000);
    assert.ok(await server.getRegistration('wk-lifetime'), `still registered at 76 s:\n${device!.tail()}`);
    assert.equal((await server.read('wk-lifetime', '/1/0/1')).value, 300, 'Wakaama holds the written lifetime');
  });

  it('pmax cleared: the flood is coalesced, then cancelled, and Wakaama stops notifying', async function () {
    await start('wk-flood', { floodNotificationsPerSecond: 100, floodSeconds: 2 });
    const notifications: number[] = [];
    server.on('notification', (notification) => notifications.push(notification.value as number));
    await server.observe('wk-flood', '/3/0/9', { attributes: { pmax: 5 } });
    const ended = new Promise<[StoredObservation, string, string]>((resolve) =>
      server.on('observationEnded', (observation, reason, cause) => resolve([observation, reason, cause])),
    );
    await server.writeAttributes('wk-flood', '/3/0/9', { pmax: null }); // '?pmax': spec-valid, and Wakaama floods
    const [observation, reason, cause] = await ended;
    assert.equal(cause, 'flood');
    assert.equal(observation.path, '/3/0/9');
    assert.match(reason, /flooded/);
    assert.ok(
      reports.some((report) => report.kind === 'notification-flood'),
      reports.map((report) => report.message).join('\n'),
    );
    // Still usable, and Wakaama took the cancel: a read is answered (its flood would have queued behind it).
    assert.equal((await server.read('wk-flood', '/3/0/0')).code, '2.05');
    assert.deepEqual(await server.listObservations('wk-flood'), []);
    assert.ok(notifications.length < 100, `the application saw ${notifications.length} notifications`);
  });
});
