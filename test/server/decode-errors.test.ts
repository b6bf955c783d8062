import { strict as assert } from 'node:assert';
import { Lwm2mRequestError } from '../../lib/server/errors';
import { Lwm2mServer } from '../../lib/server/lwm2m-server';
import { CoapDevice } from '../peers/coap-device';

const SENML_JSON = 110;

/** An error for an answer that could not be decoded, named after the operation that asked. */
function undecodable(operation: string) {
  return (err: unknown) => {
    assert.ok(err instanceof Lwm2mRequestError, String(err));
    assert.equal(err.code, 'invalid-response');
    assert.equal(err.path, '/3303/0/5700');
    assert.ok(
      err.message.startsWith(`${operation} /3303/0/5700 on undecodable: the device's answer could not be decoded`),
      err.message,
    );
    return true;
  };
}

describe('an answer that cannot be decoded: the error names the operation that asked', function () {
  let server: Lwm2mServer;
  let device: CoapDevice;

  beforeEach(async function () {
    server = new Lwm2mServer({ address: '127.0.0.1', port: 0 });
    const { port } = await server.start();
    device = new CoapDevice('undecodable', port);
    await device.start();
    await device.register('lt=60&lwm2m=1.1', `</>;rt="oma.lwm2m";ct=${SENML_JSON},</3303/0>`);
    device.handler = (request) =>
      request.method === 'GET' ? { code: '2.05', contentFormat: SENML_JSON, payload: '[{"n":' } : undefined;
  });
  afterEach(async function () {
    await device.stop();
    await server.stop();
  });

  it('Read', async function () {
    await assert.rejects(server.read('undecodable', '/3303/0/5700'), undecodable('Read'));
  });

  it('Observe (was reported as a Read)', async function () {
    await assert.rejects(server.observe('undecodable', '/3303/0/5700', { owner: 'n1' }), undecodable('Observe'));
  });
});
