/**
 * dim (0-255) and ssid (1-65534) where a device states them: a Register or Update payload with one
 * out of range gets 4.00 with a diagnostic naming the link, a Discover answer with one fails the
 * request with an error naming the link. In range, both go through as before.
 */
import { strict as assert } from 'node:assert';
import { Lwm2mServer } from '../../lib/server/lwm2m-server';
import { CoapDevice } from '../peers/coap-device';

describe('link attributes dim and ssid out of range', function () {
  let server: Lwm2mServer;
  let device: CoapDevice;

  beforeEach(async function () {
    server = new Lwm2mServer({ address: '127.0.0.1', port: 0 });
    const { port } = await server.start();
    device = new CoapDevice('ranges', port);
    await device.start();
  });
  afterEach(async () => {
    await device.stop();
    await server.stop();
  });

  it('a Register or Update with ssid or dim out of range is answered 4.00 naming the link', async function () {
    const refused = await device.tryRegister('ep=ranges&lt=60&lwm2m=1.1', '</1/0>;ssid=0,</3/0>');
    assert.equal(refused.code, '4.00');
    assert.match(refused.diagnostic, /<\/1\/0> attribute ssid=0 is not an integer from 1 to 65534/);
    const dim = await device.tryRegister('ep=ranges&lt=60&lwm2m=1.1', '</1/0>,</3/0>;dim=256');
    assert.equal(dim.code, '4.00');
    assert.match(dim.diagnostic, /<\/3\/0> attribute dim=256 is not an integer from 0 to 255/);
    assert.equal(await server.getRegistration('ranges'), undefined);

    const accepted = await device.tryRegister('ep=ranges&lt=60&lwm2m=1.1', '</1/0>;ssid=65534,</3/0>;dim=255');
    assert.equal(accepted.code, '2.01');
    assert.equal(await device.update('', '</1/0>;ssid=65535,</3/0>'), '4.00');
    assert.equal(await device.update('', '</1/0>;ssid=101,</3/0>'), '2.04');
  });

  it('a Discover answer with dim or ssid out of range fails, naming the link', async function () {
    let answer = '</3/0>,</3/0/6>;dim=2,</3/0/7>;dim=300';
    device.handler = (request) =>
      request.accept === 40 ? { code: '2.05', contentFormat: 40, payload: answer } : undefined;
    await device.register('lt=60&lwm2m=1.1');
    await assert.rejects(server.discover('ranges', '/3/0'), (err: Error & { code?: string }) =>
      /Discover \/3\/0 on ranges: the device's answer could not be decoded: .*<\/3\/0\/7> attribute dim=300 is not an integer from 0 to 255/.test(
        err.message,
      ),
    );
    answer = '</1/0>;ssid=0';
    await assert.rejects(
      server.discover('ranges', '/1/0'),
      /<\/1\/0> attribute ssid=0 is not an integer from 1 to 65534/,
    );
    answer = '</3/0>,</3/0/6>;dim=2,</3/0/7>;dim=255';
    const result = await server.discover('ranges', '/3/0');
    assert.deepEqual(
      result.links.map((link) => [link.uri, link.params.dim]),
      [
        ['/3/0', undefined],
        ['/3/0/6', '2'],
        ['/3/0/7', '255'],
      ],
    );
  });
});
