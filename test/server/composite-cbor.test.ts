/**
 * Read-Composite and Observe-Composite against a 1.2 device answering in LwM2M CBOR the way Anjay
 * does: values in request order, indefinite-length maps, an object's key opened a second time when
 * its paths are not adjacent. Every value reaches the caller (none lost to the repeated key), and a
 * value given twice with different contents is an error naming the path, not a 2.05 with a guess.
 */
import { strict as assert } from 'node:assert';
import { once } from 'node:events';
import { Lwm2mServer } from '../../lib/server/lwm2m-server';
import { CoapDevice } from '../peers/coap-device';
import { ANJAY_COMPOSITE, ANJAY_COMPOSITE_PATHS, hex } from '../content/fixtures';

const EXPECTED = {
  '/3/0/0': 'Open Mobile Alliance',
  '/3/0/13': new Date(1700000000000),
  '/3303/0/5700': 21.5,
  '/1/1/1': 300,
  '/3/0/15': 'Europe/Berlin',
};

describe('composite operations with an LwM2M CBOR answer that repeats a key (Anjay)', function () {
  let server: Lwm2mServer;
  let device: CoapDevice;

  beforeEach(async function () {
    server = new Lwm2mServer({ address: '127.0.0.1', port: 0 });
    const { port } = await server.start();
    device = new CoapDevice('anjay-like', port);
    await device.start();
    await device.register('lt=60&lwm2m=1.2', '</>;rt="oma.lwm2m";ct=11544,</1/1>,</3/0>,</3303/0>');
  });
  afterEach(async () => {
    await device.stop();
    await server.stop();
  });

  it('Read-Composite returns all five values', async function () {
    device.handler = (request) =>
      request.method === 'FETCH' ? { code: '2.05', contentFormat: 11544, payload: ANJAY_COMPOSITE } : undefined;
    const result = await server.readComposite('anjay-like', ANJAY_COMPOSITE_PATHS);
    assert.deepEqual(result.values, EXPECTED);
    assert.equal(device.requests.find((request) => request.method === 'FETCH')?.accept, 11544);
  });

  it('Observe-Composite: the first answer and every notification carry all five values', async function () {
    device.handler = (request) =>
      request.method === 'FETCH' ? { code: '2.05', contentFormat: 11544, payload: ANJAY_COMPOSITE } : undefined;
    const observed = await server.observeComposite('anjay-like', ANJAY_COMPOSITE_PATHS, { owner: 'n1' });
    assert.deepEqual(observed.values, EXPECTED);
    const next = once(server as never, 'notification') as Promise<[{ value: unknown }]>;
    assert.equal(device.notifyComposite(ANJAY_COMPOSITE), 1);
    const [notification] = await next;
    assert.deepEqual(notification.value, EXPECTED);
  });

  it('a value given twice with different contents fails the read, naming the path', async function () {
    // {_ 3: {_ 0: {_ 9: 100}}, 3: {_ 0: {_ 9: 101}}}
    const conflicting = hex('bf 03 bf 00 bf 09 1864 ff ff 03 bf 00 bf 09 1865 ff ff ff');
    device.handler = (request) =>
      request.method === 'FETCH' ? { code: '2.05', contentFormat: 11544, payload: conflicting } : undefined;
    await assert.rejects(server.readComposite('anjay-like', ['/3/0/9', '/3/0/0']), /more than one value for \/3\/0\/9/);
  });
});
