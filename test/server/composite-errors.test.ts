import { strict as assert } from 'node:assert';
import { Lwm2mRequestError } from '../../lib/server/errors';
import { Lwm2mServer } from '../../lib/server/lwm2m-server';
import { CoapDevice } from '../peers/coap-device';

const SENML_JSON = 110;
const PATHS = ['/3/0/0', '/3303/0/5700'];
const NAMED = '/3/0/0,/3303/0/5700';

/** Checks that an error of a composite operation names the paths asked for (the request itself goes to `/`). */
function namesPaths(operation: string, code: string, reason: RegExp) {
  return (err: unknown) => {
    assert.ok(err instanceof Lwm2mRequestError, String(err));
    assert.equal(err.code, code);
    assert.equal(err.path, NAMED);
    assert.equal(err.endpoint, 'composite');
    assert.ok(err.message.startsWith(`${operation} ${NAMED} on composite`), err.message);
    assert.match(err.message, reason);
    assert.ok(!/ \/ /.test(err.message) && !err.message.startsWith('/'), `no bare "/" in: ${err.message}`);
    return true;
  };
}

describe('composite operations: errors name the paths asked for', function () {
  let server: Lwm2mServer;
  let device: CoapDevice;

  beforeEach(async function () {
    server = new Lwm2mServer({ address: '127.0.0.1', port: 0 });
    const { port } = await server.start();
    device = new CoapDevice('composite', port);
    await device.start();
    await device.register('lt=60&lwm2m=1.1', `</>;rt="oma.lwm2m";ct=${SENML_JSON},</3/0>,</3303/0>`);
  });
  afterEach(async function () {
    await device.stop();
    await server.stop();
  });

  it('a device error code: Read-, Write- and Observe-Composite', async function () {
    device.handler = (request) =>
      request.method === 'FETCH'
        ? { code: '4.04', payload: 'no such resource' }
        : request.method === 'iPATCH'
          ? { code: '4.00' }
          : undefined;
    await assert.rejects(
      server.readComposite('composite', PATHS),
      namesPaths('Read-Composite', '4.04', /failed: 4\.04 Not Found: no such resource$/),
    );
    await assert.rejects(
      server.writeComposite('composite', { '/3/0/14': '+01:00', '/3303/0/5750': 'cellar' }),
      (err: Lwm2mRequestError) => {
        assert.equal(err.path, '/3/0/14,/3303/0/5750');
        assert.equal(err.message, 'Write-Composite /3/0/14,/3303/0/5750 on composite failed: 4.00 Bad Request');
        return true;
      },
    );
    await assert.rejects(
      server.observeComposite('composite', PATHS, { owner: 'n1' }),
      namesPaths('Observe-Composite', '4.04', /failed: 4\.04 Not Found/),
    );
  });

  it('no answer (timeout)', async function () {
    device.dropIf = (request) => request.method === 'FETCH';
    await assert.rejects(
      server.readComposite('composite', PATHS, { timeoutMs: 300 }),
      namesPaths('Read-Composite', 'timeout', /: no answer from the device \(timeout\)$/),
    );
  });

  it('an answer that cannot be decoded: named after the operation that asked', async function () {
    device.handler = (request) =>
      request.method === 'FETCH' ? { code: '2.05', contentFormat: SENML_JSON, payload: '[{"n":' } : undefined;
    await assert.rejects(
      server.readComposite('composite', PATHS),
      namesPaths('Read-Composite', 'invalid-response', /the device's answer could not be decoded/),
    );
    await assert.rejects(
      server.observeComposite('composite', PATHS, { owner: 'n1' }),
      namesPaths('Observe-Composite', 'invalid-response', /the device's answer could not be decoded/),
    );
  });

  it('a device that is not registered', async function () {
    await assert.rejects(server.readComposite('nobody', PATHS), (err: Lwm2mRequestError) => {
      assert.equal(err.code, 'not-registered');
      assert.equal(err.path, NAMED);
      assert.match(
        err.message,
        /^Read-Composite \/3\/0\/0,\/3303\/0\/5700 on nobody: device "nobody" is not registered$/,
      );
      return true;
    });
  });
});
