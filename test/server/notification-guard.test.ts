/**
 * Notification floods stay bounded: notifications faster than an observation's pmin (or the ceiling when its pmin is
 * not known) are coalesced, so the flow sees at most one per interval, the latest value, with the count of those it
 * stands for; a device that keeps flooding has the observation cancelled (RST to its next notification) with a report
 * and an 'observationEnded' event saying why. The device is a raw-datagram peer sending NON notifications.
 */
import { strict as assert } from 'node:assert';
import { Lwm2mServer } from '../../lib/server/lwm2m-server';
import type { Lwm2mServerOptions } from '../../lib/server/lwm2m-server';
import type { LimitReport } from '../../lib/server/limit-warnings';
import type { Notification } from '../../lib/server/observation-service';
import type { StoredObservation } from '../../lib/server/stores';
import { waitFor } from '../client/helpers';
import { NotifyingDevice } from '../peers/notifying-device';

/** Timers may fire a little before the clock says (ms rounding): gaps are compared with this much slack. */
const TIMER_SLACK_MS = 2;

interface Seen {
  notification: Notification;
  at: number;
}

describe('notification guard: coalescing and flood cancellation', function () {
  let server: Lwm2mServer;
  let device: NotifyingDevice;
  const seen: Seen[] = [];
  const reports: LimitReport[] = [];
  /** The device's sending pace, stopped after each test whatever happened. */
  let pace: NodeJS.Timeout | undefined;

  async function start(options: Partial<Lwm2mServerOptions>): Promise<void> {
    server = new Lwm2mServer({
      address: '127.0.0.1',
      port: 0,
      coap: { ackTimeoutMs: 200, maxRetransmit: 2 },
      ...options,
    });
    server.on('notification', (notification) => seen.push({ notification, at: performance.now() }));
    server.on('limited', (report) => reports.push(report));
    const { port } = await server.start();
    device = new NotifyingDevice('flood-1', port);
    await device.start();
    await device.register();
  }

  /** Resolves at the first notification carrying `value`. */
  function valueSeen(value: number): Promise<Seen> {
    return new Promise((resolve) => {
      const check = (notification: Notification) => {
        if (notification.value !== value) return;
        server.off('notification', check);
        resolve(seen[seen.length - 1]);
      };
      server.on('notification', check);
    });
  }

  afterEach(async function () {
    clearInterval(pace);
    await device?.close();
    await server?.stop();
    seen.length = 0;
    reports.length = 0;
  });

  it('pmin unknown: a burst passes, then at most one per interval goes on, the latest, with the count it stands for', async function () {
    await start({ maxNotificationsPerSecond: 20, notificationBurst: 3, floodSeconds: 0 });
    await server.observe('flood-1', '/3303/0/5700');
    const last = valueSeen(300);
    // 300 notifications over about 150 ms (10 every 5 ms): several turns of the 50 ms interval.
    let value = 0;
    pace = setInterval(() => {
      for (let i = 0; i < 10 && value < 300; i++) device.notify(++value);
      if (value === 300) clearInterval(pace);
    }, 5);
    await last;

    const values = seen.map((item) => item.notification.value);
    assert.deepEqual(values.slice(0, 3), [1, 2, 3], 'the burst goes on untouched');
    assert.equal(values[values.length - 1], 300, 'the latest value is never lost');
    const accounted = seen.reduce((sum, item) => sum + 1 + (item.notification.coalesced ?? 0), 0);
    assert.equal(accounted, 300, 'every notification is one that went on or is counted in one');
    assert.ok(seen.length < 300, `coalesced: ${seen.length} went on for 300`);
    assert.ok(seen.length > 4, `several turns (${seen.length} went on)`);
    for (let i = 4; i < seen.length; i++) {
      const gap = seen[i].at - seen[i - 1].at;
      assert.ok(gap >= 50 - TIMER_SLACK_MS, `after the burst one per 50 ms at most (gap ${gap.toFixed(1)} ms)`);
    }
    assert.equal(reports.filter((report) => report.kind === 'notifications-coalesced').length, 1);
    assert.match(reports[0].message, /flood-1 \/3303\/0\/5700: notifications faster than one per 50 ms/);
  });

  it('pmin known (written with the Observe): notifications faster than it are coalesced to one per pmin', async function () {
    await start({ maxNotificationsPerSecond: 0, notificationBurst: 2, floodSeconds: 0 });
    await server.observe('flood-1', '/3303/0/5700', { attributes: { pmin: 1 } });
    assert.deepEqual(device.attributeWrites, [['pmin=1']]);
    const last = valueSeen(10);
    const started = performance.now();
    for (let value = 1; value <= 10; value++) device.notify(value);
    const final = await last;
    assert.deepEqual(
      seen.map((item) => [item.notification.value, item.notification.coalesced]),
      [
        [1, undefined],
        [2, undefined],
        [10, 7],
      ],
    );
    assert.ok(final.at - started >= 1000 - TIMER_SLACK_MS, 'the held value waited for the next turn (pmin 1 s)');
  });

  it('a pmin written later (Write-Attributes on the observed path) is the interval from then on', async function () {
    await start({ maxNotificationsPerSecond: 0, notificationBurst: 1, floodSeconds: 0 });
    await server.observe('flood-1', '/3303/0/5700');
    await server.writeAttributes('flood-1', '/3303/0/5700', { pmin: 1 });
    const last = valueSeen(5);
    const started = performance.now();
    for (let value = 1; value <= 5; value++) device.notify(value);
    const final = await last;
    assert.deepEqual(
      seen.map((item) => [item.notification.value, item.notification.coalesced]),
      [
        [1, undefined],
        [5, 3],
      ],
    );
    assert.ok(final.at - started >= 1000 - TIMER_SLACK_MS, 'held until the next turn of the written pmin');
  });

  it('a sustained flood cancels the observation: RST and a cancel request to the device, an event and a report say why', async function () {
    await start({
      maxNotificationsPerSecond: 20,
      notificationBurst: 3,
      floodNotificationsPerSecond: 50,
      floodSeconds: 2,
    });
    await server.observe('flood-1', '/3303/0/5700');
    const ended = new Promise<[StoredObservation, string, string]>((resolve) =>
      server.on('observationEnded', (observation, reason, cause) => resolve([observation, reason, cause])),
    );
    // About 2,000 notifications a second until the device hears a RST.
    let value = 0;
    pace = setInterval(() => {
      if (device.resets > 0) return;
      for (let i = 0; i < 10; i++) device.notify(++value);
    }, 5);
    const [observation, reason, cause] = await ended;
    assert.equal(cause, 'flood');
    assert.equal(observation.path, '/3303/0/5700');
    assert.match(reason, /flooded: more than 50 notifications a second for 2 s/);
    // Told both ways: RSTs answer the notifications still coming, and a cancel request (GET with Observe=1) follows
    // (a device flooding NON matches a RST against its latest notification only: Wakaama goes on without it).
    await waitFor(() => device.resets > 0 && device.cancels > 0, 5000, 'a RST and a cancel request');
    clearInterval(pace);
    assert.deepEqual(await server.listObservations('flood-1'), []);
    const flooded = reports.filter((report) => report.kind === 'notification-flood');
    assert.equal(flooded.length, 1);
    assert.match(flooded[0].message, /flood-1 \/3303\/0\/5700: flooded/);
    assert.ok(seen.length < value / 10, `the flow saw ${seen.length} of ${value}`);
  });

  it('a device within its limits is not touched: every notification goes on at once', async function () {
    await start({
      maxNotificationsPerSecond: 1000,
      notificationBurst: 10,
      floodNotificationsPerSecond: 5000,
      floodSeconds: 1,
    });
    await server.observe('flood-1', '/3303/0/5700');
    for (let value = 1; value <= 5; value++) {
      const next = valueSeen(value);
      device.notify(value);
      const item = await next;
      assert.equal(item.notification.coalesced, undefined);
    }
    assert.equal(seen.length, 5);
    assert.equal(reports.length, 0);
  });
});
