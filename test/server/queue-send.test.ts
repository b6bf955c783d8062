import { strict as assert } from 'node:assert';
import { once } from 'node:events';
import { encode as encodeCbor } from 'cbor-x';
import { Lwm2mRequestError } from '../../lib/server/errors';
import { Lwm2mServer } from '../../lib/server/lwm2m-server';
import type { SendReport } from '../../lib/server/lwm2m-server';
import type { Registration } from '../../lib/server/registration';
import { CoapDevice } from '../peers/coap-device';

describe('Send (POST /dp) from devices', function () {
  let server: Lwm2mServer;
  let device: CoapDevice;

  async function setUp(options: ConstructorParameters<typeof Lwm2mServer>[0] = {}) {
    server = new Lwm2mServer({ address: '127.0.0.1', port: 0, ...options });
    const { port } = await server.start();
    device = new CoapDevice('sender', port);
    await device.start();
  }
  afterEach(async () => {
    await device.stop();
    await server.stop();
  });

  it('decodes a SenML JSON time series, matches the device by address, and answers 2.04', async function () {
    await setUp();
    await device.register('lt=60&lwm2m=1.1');
    const sent = once(server as never, 'send') as Promise<[SendReport]>;
    const payload = JSON.stringify([
      { bn: '/3303/0/', bt: 1700000000, n: '5700', v: 21.5 },
      { n: '5700', v: 22.5, t: 60 },
      { bn: '/3/0/', n: '9', v: 87 },
    ]);
    assert.equal(await device.sendData(payload, 110), '2.04');
    const [report] = await sent;
    assert.equal(report.endpoint, 'sender');
    assert.equal(report.contentFormat, 110);
    const temperatures = report.values.filter((entry) => entry.path === '/3303/0/5700');
    assert.deepEqual(
      temperatures.map((entry) => entry.value),
      [21.5, 22.5],
    );
    assert.deepEqual(
      temperatures.map((entry) => entry.time?.toISOString()),
      ['2023-11-14T22:13:20.000Z', '2023-11-14T22:14:20.000Z'],
    );
    assert.equal(report.values.find((entry) => entry.path === '/3/0/9')?.value, 87);
  });

  it('refuses Send from an unregistered peer, a bad payload, and when turned off', async function () {
    await setUp({ acceptSend: false });
    assert.equal(await device.sendData('[{"n":"/3/0/9","v":1}]', 110), '4.04');
    await device.register('lt=60&lwm2m=1.1');
    assert.equal(await device.sendData('[{"n":"/3/0/9","v":1}]', 110), '4.03');
    await device.stop();
    await server.stop();
    await setUp();
    await device.register('lt=60&lwm2m=1.1');
    assert.equal(await device.sendData('not json', 110), '4.00');
    assert.equal(await device.sendData('x', 0), '4.15');
  });
});

describe('queue mode: requests wait for a sleeping device', function () {
  let server: Lwm2mServer;
  let device: CoapDevice;

  beforeEach(async function () {
    server = new Lwm2mServer({
      address: '127.0.0.1',
      port: 0,
      queueAwakeWindowMs: 200,
      queuedRequestTtlMs: 60_000,
      coap: { ackTimeoutMs: 150, maxRetransmit: 1 },
    });
    const { port } = await server.start();
    device = new CoapDevice('sleepy', port);
    await device.start();
    device.resources.set('/3/0/9', { contentFormat: 0, payload: '77' });
  });
  afterEach(async () => {
    await device.stop();
    await server.stop();
  });

  it('holds a read while the device sleeps and delivers it when the device updates', async function () {
    const awake = once(server as never, 'awake') as Promise<[Registration]>;
    await device.register('lt=60&lwm2m=1.1&Q');
    assert.equal((await awake)[0].queueMode, true);
    const sleeping = once(server as never, 'sleeping') as Promise<[Registration]>;
    await sleeping;
    const registration = (await server.getRegistration('sleepy'))!;
    assert.equal(server.queueStatus(registration), 'sleeping');

    const before = device.requests.length;
    const reading = server.read('sleepy', '/3/0/9');
    await new Promise((resolve) => setTimeout(resolve, 300));
    assert.equal(device.requests.length, before, 'nothing was sent to the sleeping device');
    assert.equal(server.queuedRequests('sleepy'), 1);

    assert.equal(await device.update(), '2.04');
    const result = await reading;
    assert.equal(result.value, 77);
    assert.equal(server.queuedRequests('sleepy'), 0);
  });

  it('fails a held request with a clear error when its time to live runs out', async function () {
    await server.stop();
    server = new Lwm2mServer({ address: '127.0.0.1', port: 0, queueAwakeWindowMs: 100, queuedRequestTtlMs: 300 });
    const { port } = await server.start();
    await device.stop();
    device = new CoapDevice('sleepy', port);
    await device.start();
    await device.register('lt=60&lwm2m=1.0&b=UQ');
    await once(server as never, 'sleeping');
    await assert.rejects(server.read('sleepy', '/3/0/9'), (err: Lwm2mRequestError) => {
      assert.equal(err.code, 'expired');
      assert.match(err.message, /did not wake up in time/);
      return true;
    });
  });

  it('fails held requests when the device de-registers, and bounds the queue', async function () {
    await device.register('lt=60&lwm2m=1.1&Q');
    await once(server as never, 'sleeping');
    const held = Array.from({ length: 32 }, () =>
      server.read('sleepy', '/3/0/9').catch((err: Lwm2mRequestError) => err),
    );
    await assert.rejects(server.read('sleepy', '/3/0/9'), (err: Lwm2mRequestError) => err.code === 'overloaded');
    // De-registering (a DELETE is an uplink too, but the registration ends with it).
    await device.deregister();
    const outcomes = await Promise.all(held);
    // The first ones may have gone out in the instant the DELETE woke the device; the rest fail clearly.
    const failures = outcomes.filter((outcome): outcome is Lwm2mRequestError => outcome instanceof Lwm2mRequestError);
    assert.ok(failures.length > 0);
    for (const failure of failures)
      assert.ok(['not-registered', 'timeout', '4.04'].includes(failure.code), failure.code);
  });
});

describe('composite operations (FETCH / iPATCH) against a node-coap device', function () {
  let server: Lwm2mServer;
  let device: CoapDevice;

  beforeEach(async function () {
    server = new Lwm2mServer({ address: '127.0.0.1', port: 0 });
    const { port } = await server.start();
    device = new CoapDevice('composite', port);
    await device.start();
  });
  afterEach(async () => {
    await device.stop();
    await server.stop();
  });

  it('Read-Composite asks with a SenML path list and returns values keyed by path', async function () {
    await device.register('lt=60&lwm2m=1.1', '</>;rt="oma.lwm2m";ct=110,</3/0>,</3303/0>');
    device.handler = (request) =>
      request.method === 'FETCH'
        ? {
            code: '2.05',
            contentFormat: 110,
            payload: JSON.stringify([
              { bn: '/3303/0/', n: '5700', v: 19.5 },
              { bn: '/3/0/', n: '9', v: 80 },
            ]),
          }
        : undefined;
    const result = await server.readComposite('composite', ['/3303/0/5700', '/3/0/9']);
    assert.deepEqual(result.values, { '/3303/0/5700': 19.5, '/3/0/9': 80 });
    const fetch = device.requests.find((request) => request.method === 'FETCH');
    assert.ok(fetch);
    assert.equal(fetch.contentFormat, 110);
    assert.equal(fetch.accept, 110);
    assert.deepEqual(
      JSON.parse(fetch.payload.toString()).map(
        (record: { n?: string; bn?: string }) => (record.bn ?? '') + (record.n ?? ''),
      ),
      ['/3303/0/5700', '/3/0/9'],
    );
  });

  it('Write-Composite sends one iPATCH with every value', async function () {
    await device.register('lt=60&lwm2m=1.1', '</>;rt="oma.lwm2m";ct=110,</1/0>,</3303/0>');
    device.handler = (request) => (request.method === 'iPATCH' ? { code: '2.04' } : undefined);
    const result = await server.writeComposite('composite', { '/3303/0/5701': 'Cel', '/1/0/3': 60 });
    assert.equal(result.code, '2.04');
    const patch = device.requests.find((request) => request.method === 'iPATCH');
    assert.ok(patch);
    const records = JSON.parse(patch.payload.toString()) as { bn?: string; n?: string; v?: number; vs?: string }[];
    const byPath = Object.fromEntries(
      records.map((record) => [(record.bn ?? '') + (record.n ?? ''), record.v ?? record.vs]),
    );
    assert.deepEqual(byPath, { '/3303/0/5701': 'Cel', '/1/0/3': 60 });
  });

  it('1.2: asks with a SenML-ETCH CBOR path list and takes an LwM2M CBOR answer', async function () {
    await device.register('lt=60&lwm2m=1.2', '</>;rt="oma.lwm2m";ct="11544 112",</3/0>,</3303/0>');
    const answer = encodeCbor(
      new Map<unknown, unknown>([
        [[3303, 0, 5700], 19.5],
        [[3, 0, 9], 80],
      ]),
    );
    device.handler = (request) =>
      request.method === 'FETCH' ? { code: '2.05', contentFormat: 11544, payload: answer } : undefined;
    const result = await server.readComposite('composite', ['/3303/0/5700', '/3/0/9']);
    assert.deepEqual(result.values, { '/3303/0/5700': 19.5, '/3/0/9': 80 });
    const fetch = device.requests.find((request) => request.method === 'FETCH');
    assert.equal(fetch?.contentFormat, 322);
    assert.equal(fetch?.accept, 11544);
  });

  it('1.2 Write-Composite: SenML-ETCH body, a null value deletes a resource instance', async function () {
    await device.register('lt=60&lwm2m=1.2', '</>;rt="oma.lwm2m";ct="110",</3/0>,</3303/0>');
    device.handler = (request) => (request.method === 'iPATCH' ? { code: '2.04' } : undefined);
    await server.writeComposite('composite', { '/3303/0/5750': 'greenhouse', '/3/0/7/1': null });
    const patch = device.requests.find((request) => request.method === 'iPATCH');
    assert.equal(patch?.contentFormat, 320);
    const records = JSON.parse(patch!.payload.toString()) as Record<string, unknown>[];
    const byPath = Object.fromEntries(records.map((record) => [`${record.bn ?? ''}${record.n ?? ''}`, record]));
    assert.equal(byPath['/3303/0/5750']?.vs, 'greenhouse');
    assert.ok('v' in byPath['/3/0/7/1'] && byPath['/3/0/7/1'].v === null, 'a deletion is a record with "v": null');
    await assert.rejects(server.writeComposite('composite', { '/3/0/7': null }), /deletes a resource instance/);
  });

  it('Observe-Composite: one notification carries every path; cancel is a FETCH with Observe=1', async function () {
    await device.register('lt=60&lwm2m=1.1', '</>;rt="oma.lwm2m";ct=110,</3/0>,</3303/0>');
    const senml = (temperature: number, battery: number) =>
      JSON.stringify([
        { bn: '/3303/0/', n: '5700', v: temperature },
        { bn: '/3/0/', n: '9', v: battery },
      ]);
    device.handler = (request) =>
      request.method === 'FETCH' ? { code: '2.05', contentFormat: 110, payload: senml(19.5, 80) } : undefined;
    const observed = await server.observeComposite('composite', ['/3303/0/5700', '/3/0/9'], { owner: 'n1' });
    assert.deepEqual(observed.values, { '/3303/0/5700': 19.5, '/3/0/9': 80 });
    const next = once(server as never, 'notification') as Promise<[{ path: string; value: unknown; owners: string[] }]>;
    assert.equal(device.notifyComposite(senml(21, 79)), 1);
    const [notification] = await next;
    assert.equal(notification.path, '/3303/0/5700,/3/0/9');
    assert.deepEqual(notification.value, { '/3303/0/5700': 21, '/3/0/9': 79 });
    assert.deepEqual(notification.owners, ['n1']);

    assert.equal(await server.cancelObservation('composite', '/3303/0/5700,/3/0/9', 'n1'), true);
    const cancel = device.requests.filter((request) => request.method === 'FETCH').at(-1);
    assert.equal(cancel?.observe, 1);
    assert.equal(cancel?.contentFormat, 110);
  });

  it('refuses composite operations for a 1.0 device before sending anything', async function () {
    await device.register('lt=60&lwm2m=1.0');
    const before = device.requests.length;
    await assert.rejects(server.readComposite('composite', ['/3/0/9']), /LwM2M 1\.1/);
    assert.equal(device.requests.length, before);
  });
});
