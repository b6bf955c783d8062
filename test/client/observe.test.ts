/**
 * Information Reporting: our server observes our client; notifications honour pmin / pmax / gt / lt /
 * st, epmin / epmax (1.1), edge (1.2), come as NON or CON, stop on cancel and on RST.
 */
import { strict as assert } from 'node:assert';
import type { Lwm2mClient } from '../../lib/client';
import type { IncomingResponse } from '../../lib/coap/types';
import type { Notification } from '../../lib/server/observation-service';
import { Lwm2mRequestError } from '../../lib/server/errors';
import { Bench, peerOf, sleep, waitFor } from './helpers';

const TEXT = 0;
const SENML_JSON = 110;
const SENML_CBOR = 112;
const TLV = 11542;
const JSON_FORMAT = 11543;

describe('client: observations and notifications', function () {
  let bench: Bench;
  let client: Lwm2mClient;
  let notifications: Array<Notification & { at: number }>;

  async function start(options: Partial<Parameters<Bench['client']>[0]> = {}): Promise<void> {
    client = await bench.registered({ endpointName: 'obs-1', objects: [3303, 3342], ...options });
    client.set('/3303/0/5700', 20);
  }

  beforeEach(async function () {
    bench = new Bench();
    await bench.startServer();
    notifications = [];
    bench.server.on('notification', (n) => notifications.push({ ...n, at: Date.now() }));
  });

  afterEach(async function () {
    await bench.close();
  });

  for (const format of [TEXT, TLV, SENML_JSON, SENML_CBOR, JSON_FORMAT]) {
    it(`notifies each change at once without attributes (${format})`, async function () {
      await start();
      const observed = await bench.server.observe('obs-1', '/3303/0/5700', { format });
      assert.equal(observed.value, 20);
      client.set('/3303/0/5700', 21.5);
      await waitFor(() => notifications.length === 1, 2000, 'first notification');
      client.set('/3303/0/5700', 22.5);
      client.set('/3303/0/5700', 22.5); // no change: no notification
      await waitFor(() => notifications.length === 2, 2000, 'second notification');
      await sleep(50);
      assert.deepEqual(
        notifications.map((n) => n.value),
        [21.5, 22.5],
      );
      assert.ok(notifications.every((n) => n.contentFormat === format && n.path === '/3303/0/5700'));
      assert.ok(notifications[1].sequence! > notifications[0].sequence!, 'Observe sequence numbers increase');
      assert.equal(client.stats().observations, 1);
    });
  }

  it('notifies an instance observation when any resource below changes', async function () {
    await start();
    await bench.server.observe('obs-1', '/3303/0', { format: SENML_CBOR });
    client.set('/3303/0/5750', 'cellar');
    await waitFor(() => notifications.length === 1);
    const value = notifications[0].value as { byId: Record<string, unknown> };
    assert.equal(value.byId['5750'], 'cellar');
    assert.equal(value.byId['5700'], 20);
  });

  it('holds changes back until pmin has passed, then sends the latest value', async function () {
    await start();
    await bench.server.writeAttributes('obs-1', '/3303/0/5700', { pmin: 1 });
    const observedAt = Date.now();
    await bench.server.observe('obs-1', '/3303/0/5700');
    client.set('/3303/0/5700', 21);
    client.set('/3303/0/5700', 22);
    client.set('/3303/0/5700', 23);
    await waitFor(() => notifications.length === 1, 3000);
    assert.ok(notifications[0].at - observedAt >= 900, `sent after ${notifications[0].at - observedAt} ms`);
    assert.equal(notifications[0].value, 23);
    await sleep(300);
    assert.equal(notifications.length, 1);
  });

  it('sends every pmax seconds when nothing changes', async function () {
    await start();
    await bench.server.writeAttributes('obs-1', '/3303/0/5700', { pmax: 1 });
    const observedAt = Date.now();
    await bench.server.observe('obs-1', '/3303/0/5700');
    await waitFor(() => notifications.length === 2, 3500, 'two pmax notifications');
    assert.ok(notifications[0].at - observedAt >= 900);
    assert.ok(notifications[1].at - notifications[0].at >= 900);
    assert.deepEqual(
      notifications.map((n) => n.value),
      [20, 20],
    );
  });

  it('takes pmin and pmax from the object level and from the Server object defaults', async function () {
    await start({ defaultPmax: 1 });
    await bench.server.observe('obs-1', '/3303/0/5700');
    await waitFor(() => notifications.length === 1, 2500, 'a notification from the default pmax');
    await bench.server.writeAttributes('obs-1', '/3303', { pmin: 2, pmax: 30 });
    const before = notifications.length;
    client.set('/3303/0/5700', 30);
    await sleep(400);
    assert.equal(notifications.length, before, 'pmin inherited from /3303 holds the change back');
  });

  it('notifies only steps of at least st', async function () {
    await start();
    await bench.server.writeAttributes('obs-1', '/3303/0/5700', { st: 2 });
    await bench.server.observe('obs-1', '/3303/0/5700');
    client.set('/3303/0/5700', 21);
    client.set('/3303/0/5700', 21.9);
    await sleep(150);
    assert.equal(notifications.length, 0, 'less than st away from the last notified 20');
    client.set('/3303/0/5700', 22.1);
    await waitFor(() => notifications.length === 1);
    client.set('/3303/0/5700', 23);
    await sleep(150);
    assert.equal(notifications.length, 1, 'less than st away from 22.1');
    client.set('/3303/0/5700', 20);
    await waitFor(() => notifications.length === 2);
    assert.deepEqual(
      notifications.map((n) => n.value),
      [22.1, 20],
    );
  });

  it('notifies when the value crosses gt or lt', async function () {
    await start();
    await bench.server.writeAttributes('obs-1', '/3303/0/5700', { gt: 25, lt: 15 });
    await bench.server.observe('obs-1', '/3303/0/5700');
    for (const value of [22, 26, 27, 24, 18, 14, 12, 16]) {
      client.set('/3303/0/5700', value);
      await sleep(20);
    }
    await waitFor(() => notifications.length >= 4, 5000, 'four notifications');
    assert.deepEqual(
      notifications.map((n) => n.value),
      [26, 24, 14, 16],
    );
  });

  it('evaluates at most every epmin and at least every epmax (1.1)', async function () {
    await start();
    await bench.server.writeAttributes('obs-1', '/3303/0/5700', { epmin: 1 });
    const observedAt = Date.now();
    await bench.server.observe('obs-1', '/3303/0/5700');
    client.set('/3303/0/5700', 25);
    await waitFor(() => notifications.length === 1, 3000);
    assert.ok(notifications[0].at - observedAt >= 900, 'the change waited for the next evaluation');
    // Current Time is computed on every read: only a periodic evaluation can see it move
    await bench.server.writeAttributes('obs-1', '/3/0/13', { epmax: 1 });
    await bench.server.observe('obs-1', '/3/0/13');
    await waitFor(() => notifications.filter((n) => n.path === '/3/0/13').length >= 1, 3000, 'epmax');
  });

  it('notifies a boolean on its rising edge only (1.2 edge)', async function () {
    await start({ lwm2mVersion: '1.2' });
    await bench.server.writeAttributes('obs-1', '/3342/0/5500', { edge: 1 });
    await bench.server.observe('obs-1', '/3342/0/5500');
    for (const value of [true, false, true, false]) {
      client.set('/3342/0/5500', value);
      await sleep(30);
    }
    await waitFor(() => notifications.length >= 2, 5000, 'two notifications');
    assert.deepEqual(
      notifications.map((n) => n.value),
      [true, true],
    );
  });

  it('sends confirmable notifications when asked to, and they are acknowledged', async function () {
    await start({ confirmableNotifications: true });
    await bench.server.observe('obs-1', '/3303/0/5700');
    client.set('/3303/0/5700', 30);
    client.set('/3303/0/5700', 31);
    await waitFor(() => notifications.length === 2);
    assert.deepEqual(
      notifications.map((n) => n.value),
      [30, 31],
    );
  });

  it('stops notifying when the server cancels', async function () {
    await start();
    await bench.server.observe('obs-1', '/3303/0/5700');
    const cancelled = new Promise((resolve) => client.once('observeCancelled', resolve));
    await bench.server.cancelObservation('obs-1', '/3303/0/5700');
    await cancelled;
    assert.equal(client.stats().observations, 0);
    client.set('/3303/0/5700', 40);
    await sleep(100);
    assert.equal(notifications.length, 0);
  });

  it('answers 4.06 to an Observe in a format it does not support, and keeps no observation', async function () {
    await start({ contentFormats: [SENML_JSON] });
    await assert.rejects(
      bench.server.observe('obs-1', '/3303/0', { format: TLV }),
      (err: Lwm2mRequestError) => err.code === '4.06',
    );
    assert.equal(client.stats().observations, 0);
  });

  it('drops an observation whose notification gets a RST', async function () {
    await start();
    const raw = await bench.rawEndpoint();
    const seen: IncomingResponse[] = [];
    const { response, observation } = await raw.observe(
      peerOf(client),
      { method: 'GET', pathSegments: ['3303', '0', '5700'] },
      (n) => seen.push(n),
    );
    assert.equal(response.code, '2.05');
    assert.equal(response.contentFormat, TEXT);
    client.set('/3303/0/5700', 50);
    await waitFor(() => seen.length === 1);
    assert.ok(seen[0].observe! > response.observe!);
    assert.deepEqual(seen[0].token, observation!.token);
    await observation!.cancel('passive'); // forget it: the next notification is answered with RST
    client.set('/3303/0/5700', 51);
    await waitFor(() => client.stats().observations === 0, 2000, 'the observation dropped after RST');
  });

  it('sends a large value in blocks and the server reassembles the notification', async function () {
    await start();
    client.set('/3/0/17', 'a'.repeat(3000));
    const observed = await bench.server.observe('obs-1', '/3/0/17');
    assert.equal((observed.value as string).length, 3000);
    client.set('/3/0/17', 'b'.repeat(2500));
    await waitFor(() => notifications.length === 1, 3000);
    assert.equal(notifications[0].value, 'b'.repeat(2500));
  });

  it('forgets observations when the device reboots, and the server observes again', async function () {
    await start();
    await bench.server.observe('obs-1', '/3303/0/5700');
    const reRegistered = new Promise((resolve) => bench.server.once('registered', resolve));
    await bench.server.execute('obs-1', '/3/0/4');
    await reRegistered;
    await waitFor(() => client.stats().observations === 1, 3000, 're-observation after the reboot');
    client.set('/3303/0/5700', 33);
    await waitFor(() => notifications.some((n) => n.value === 33));
  });
});
