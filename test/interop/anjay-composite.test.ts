/**
 * Field defects found against AVSystem Anjay's demo client (issue 15), checked against the real client.
 * Optional: runs when ANJAY_DEMO names the demo binary (`output/bin/demo`, built with -DWITH_DEMO=ON).
 *
 *   npm run build:test && ANJAY_DEMO=/path/demo npx mocha --no-config --timeout 60000 build/test/interop/anjay-composite.test.js
 *
 * - A Read-Composite of paths of one object that are not adjacent: Anjay answers in LwM2M CBOR in request order and
 *   opens the object's map twice; every value must come back.
 * - Create of an instance with no resources: SenML cannot carry it and Anjay answers 4.00 to an empty pack; the server
 *   sends a format that can (TLV) and the instance is created.
 */
import { strict as assert } from 'node:assert';
import { existsSync } from 'node:fs';
import type { Registration } from '../../lib/server/registration';
import { Bench, nextEvent } from '../client/helpers';
import { ClientProcess } from './client-process';

const anjay = process.env.ANJAY_DEMO;

describe('interop: AVSystem Anjay demo, LwM2M 1.2 composite answers and empty Create (optional)', function () {
  const endpoint = 'anjay-composite';
  let bench: Bench;
  let client: ClientProcess | undefined;

  before(function () {
    if (anjay === undefined || !existsSync(anjay)) this.skip();
  });
  beforeEach(async function () {
    bench = new Bench();
    await bench.startServer();
    const registered = nextEvent<Registration>(bench.server, 'registered', 20_000);
    client = new ClientProcess(anjay!, [
      '-e',
      endpoint,
      '-u',
      `coap://127.0.0.1:${bench.port}`,
      '-l',
      '60',
      '--maximum-version',
      '1.2',
    ]);
    const registration = await registered.catch((err: Error) => {
      throw new Error(`${err.message}; client output:\n${client?.tail() ?? ''}`);
    });
    assert.equal(registration.lwm2mVersion, '1.2');
  });
  afterEach(async function () {
    await client?.stop();
    client = undefined;
    await bench?.close();
  });

  it('Read-Composite of non-adjacent paths of one object (LwM2M CBOR, a top key given twice): every value comes back', async function () {
    const paths = ['/3/0/0', '/3/0/13', '/1/1/1', '/3/0/15', '/3/0/1'];
    const result = await bench.server.readComposite(endpoint, paths);
    assert.equal(result.contentFormat, 11544, 'LwM2M CBOR, the format that repeats the key');
    assert.deepEqual(Object.keys(result.values).sort(), [...paths].sort());
    assert.match(String(result.values['/3/0/0']), /anjay/i, 'the manufacturer');
    assert.equal(result.values['/1/1/1'], 60);
    assert.ok(result.values['/3/0/13'] instanceof Date || typeof result.values['/3/0/13'] === 'string');
  });

  it('Create of an instance with no resources goes in a format that can carry it, and Anjay creates it', async function () {
    const result = await bench.server.create(endpoint, '/33605', {}, { instanceId: 9 });
    assert.equal(result.code, '2.01');
    assert.equal(result.contentFormat, 11542, 'TLV');
    const discovered = await bench.server.discover(endpoint, '/33605/9');
    assert.equal(discovered.code, '2.05');
  });
});
