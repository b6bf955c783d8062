import { strict as assert } from 'node:assert';
import { Decoder } from 'cbor-x';
import { Lwm2mRequestError } from '../../lib/server/errors';
import { Lwm2mServer } from '../../lib/server/lwm2m-server';
import { CoapDevice } from '../peers/coap-device';
import type { RecordedRequest } from '../peers/coap-device';

const SENML_JSON = 110;
const SENML_CBOR = 112;
const TLV = 11542;
const LWM2M_CBOR = 11544;

/**
 * The content format of a Create (POST to an object). An instance with no resources cannot be said in SenML (a pack
 * without records names no instance): the device gets TLV, or LwM2M CBOR (1.2), when it supports one.
 */
describe('Create: the content format carries the instance', function () {
  let server: Lwm2mServer;
  let device: CoapDevice;
  const creates = () => device.requests.filter((request) => request.method === 'POST' && request.url === '/3303');

  beforeEach(async function () {
    server = new Lwm2mServer({ address: '127.0.0.1', port: 0 });
    const { port } = await server.start();
    device = new CoapDevice('creator', port);
    await device.start();
    // As Anjay does: an empty SenML pack is no instance at all (4.00); everything else is created.
    device.handler = (request: RecordedRequest) => {
      if (request.method !== 'POST' || request.url !== '/3303') return undefined;
      const emptySenml =
        (request.contentFormat === SENML_CBOR && request.payload.equals(Buffer.from([0x80]))) ||
        (request.contentFormat === SENML_JSON && request.payload.toString().trim() === '[]');
      return emptySenml ? { code: '4.00', payload: 'no instance in the payload' } : { code: '2.01' };
    };
  });
  afterEach(async function () {
    await device.stop();
    await server.stop();
  });

  it('an empty instance with its id goes as TLV (an instance of length 0) to a device that announced TLV', async function () {
    await device.register('lt=60&lwm2m=1.1', `</>;rt="oma.lwm2m";ct="${SENML_CBOR} ${SENML_JSON} ${TLV}",</3303/0>`);
    const created = await server.create('creator', '/3303', {}, { instanceId: 7 });
    assert.equal(created.code, '2.01');
    assert.equal(created.instancePath, '/3303/7');
    assert.deepEqual(
      creates().map((request) => [request.contentFormat, request.payload.toString('hex')]),
      [[TLV, '0007']],
    );
  });

  it('an empty instance the device numbers itself goes as an empty TLV body, not as an empty SenML pack', async function () {
    await device.register('lt=60&lwm2m=1.1', `</>;rt="oma.lwm2m";ct="${SENML_CBOR} ${TLV}",</3303/0>`);
    const created = await server.create('creator', '/3303', {});
    assert.equal(created.code, '2.01');
    assert.equal(created.contentFormat, TLV);
    // No body, so no Content-Format on the wire either (the CoAP endpoint leaves it out of an empty payload).
    assert.deepEqual(
      creates().map((request) => [request.contentFormat, request.payload.length]),
      [[undefined, 0]],
    );
  });

  it('1.2: an empty instance goes as LwM2M CBOR when the device announced it and not TLV', async function () {
    await device.register('lt=60&lwm2m=1.2', `</>;rt="oma.lwm2m";ct="${SENML_CBOR} ${LWM2M_CBOR}",</3303/0>`);
    const created = await server.create('creator', '/3303', {}, { instanceId: 4 });
    assert.equal(created.code, '2.01');
    const [create] = creates();
    assert.equal(create.contentFormat, LWM2M_CBOR);
    const body = new Decoder({ mapsAsObjects: false, useRecords: false }).decode(create.payload) as Map<
      unknown,
      unknown
    >;
    assert.deepEqual(
      [...body.entries()].map(([key, value]) => [key, [...(value as Map<unknown, unknown>).entries()]]),
      [[[3303, 4], []]],
    );
  });

  it('a device that speaks only SenML: an empty instance with an id is refused before anything is sent', async function () {
    await device.register('lt=60&lwm2m=1.1', `</>;rt="oma.lwm2m";ct=${SENML_JSON},</3303/0>`);
    await assert.rejects(server.create('creator', '/3303', {}, { instanceId: 7 }), (err: Lwm2mRequestError) => {
      assert.equal(err.code, 'bad-request');
      assert.match(err.message, /empty instance.*SenML/);
      assert.equal(err.path, '/3303');
      return true;
    });
    assert.deepEqual(creates(), []);
    // Asked for SenML by the caller: refused the same way, the id would be lost.
    await assert.rejects(
      server.create('creator', '/3303', {}, { instanceId: 7, format: SENML_CBOR }),
      /empty instance.*SenML/,
    );
    assert.deepEqual(creates(), []);
  });

  it('an instance with resources still goes as SenML CBOR, the first choice for 1.1', async function () {
    await device.register('lt=60&lwm2m=1.1', `</>;rt="oma.lwm2m";ct="${SENML_CBOR} ${SENML_JSON} ${TLV}",</3303/0>`);
    await server.create('creator', '/3303', { 5750: 'cellar' }, { instanceId: 8 });
    assert.deepEqual(
      creates().map((request) => request.contentFormat),
      [SENML_CBOR],
    );
  });
});
