/**
 * Our client against our server, over real UDP on loopback: every Device Management operation in every
 * content format the server speaks (forced with the server's `format` option), and the error codes.
 */
import { strict as assert } from 'node:assert';
import type { Lwm2mClient } from '../../lib/client';
import { Lwm2mRequestError } from '../../lib/server/errors';
import type { Registration } from '../../lib/server/registration';
import { Bench, ask, nextEvent } from './helpers';

const TEXT = 0;
const OPAQUE = 42;
const CBOR = 60;
const SENML_JSON = 110;
const SENML_CBOR = 112;
const TLV = 11542;
const JSON_FORMAT = 11543;
const MULTI_FORMATS = [TLV, SENML_JSON, SENML_CBOR, JSON_FORMAT];
const SINGLE_FORMATS = [TEXT, CBOR, ...MULTI_FORMATS];

function rejectsWith(code: string): (err: unknown) => boolean {
  return (err) => {
    assert.ok(err instanceof Lwm2mRequestError, String(err));
    assert.equal(err.code, code, err.message);
    return true;
  };
}

describe('client: Lwm2mClient against Lwm2mServer', function () {
  let bench: Bench;
  let client: Lwm2mClient;

  beforeEach(async function () {
    bench = new Bench();
    await bench.startServer();
    client = await bench.registered({
      endpointName: 'dev-1',
      objects: [
        3303,
        { id: 6, instances: [{ 4: Buffer.from('01020304', 'hex') }] },
        { id: 3425, instances: [{ 5: [7, 8] }] },
        '3342*2',
      ],
    });
  });

  afterEach(async function () {
    await bench.close();
  });

  describe('registration as the server sees it', function () {
    it('announces objects, versions and content formats (1.1)', async function () {
      const registration = (await bench.server.getRegistration('dev-1'))!;
      assert.equal(registration.lwm2mVersion, '1.1');
      assert.equal(registration.lifetime, 300);
      assert.equal(registration.binding, 'U');
      assert.equal(registration.queueMode, false);
      assert.deepEqual(registration.supportedContentFormats, [SENML_JSON], '1.1: ct is the preferred format');
      assert.deepEqual(registration.objects[3303], { instances: [0], version: '1.1' });
      assert.deepEqual(registration.objects[3342], { instances: [0, 1], version: '1.1' });
      assert.deepEqual(registration.objects[1], { instances: [0], version: '1.1' });
      assert.equal(registration.objects[0], undefined, 'the Security object is never announced');
      assert.equal(registration.port, client.localAddress()!.port);
      assert.equal(client.registrationLocation, `/rd/${registration.id}`);
    });

    it('announces every format it accepts in 1.2', async function () {
      await bench.registered({ endpointName: 'new-1', lwm2mVersion: '1.2', objects: [3303] });
      const registration = (await bench.server.getRegistration('new-1'))!;
      assert.equal(registration.lwm2mVersion, '1.2');
      assert.deepEqual(registration.supportedContentFormats, [SENML_JSON, SENML_CBOR, TLV, JSON_FORMAT, CBOR]);
      assert.deepEqual(registration.objects[1], { instances: [0], version: '1.2' });
    });

    it('registers a 1.0 device with TLV as its format', async function () {
      await bench.registered({ endpointName: 'old-1', lwm2mVersion: '1.0', objects: [3303] });
      const registration = (await bench.server.getRegistration('old-1'))!;
      assert.equal(registration.lwm2mVersion, '1.0');
      assert.deepEqual(registration.supportedContentFormats, []);
      assert.equal(registration.rootPath, '');
      const read = await bench.server.read('old-1', '/3303/0');
      assert.equal(read.contentFormat, TLV);
      assert.equal(typeof (read.value as { byId: Record<string, unknown> }).byId['5700'], 'number');
    });
  });

  describe('Read', function () {
    for (const format of SINGLE_FORMATS) {
      it(`reads a single resource as ${format}`, async function () {
        client.set('/3303/0/5700', 22.25);
        const result = await bench.server.read('dev-1', '/3303/0/5700', { format });
        assert.equal(result.code, '2.05');
        assert.equal(result.contentFormat, format);
        assert.equal(result.value, 22.25);
      });
    }

    it('reads an opaque resource as 42 and as text (base64)', async function () {
      const opaque = await bench.server.read('dev-1', '/6/0/4', { format: OPAQUE });
      assert.deepEqual(opaque.value, Buffer.from('01020304', 'hex'));
      const text = await bench.server.read('dev-1', '/6/0/4', { format: TEXT });
      assert.deepEqual(text.value, Buffer.from('01020304', 'hex'));
    });

    for (const format of MULTI_FORMATS) {
      it(`reads an instance, an object and a multiple resource as ${format}`, async function () {
        const instance = await bench.server.read('dev-1', '/3/0', { format });
        const byId = (instance.value as { byId: Record<string, unknown> }).byId;
        assert.equal(byId['0'], 'node-red-contrib-lwm2m');
        assert.deepEqual(byId['7'], { 0: 3800, 1: 5000 });
        assert.equal(byId['4'], undefined, 'executable resources are not read');
        const object = await bench.server.read('dev-1', '/3342', { format });
        assert.deepEqual(Object.keys(object.value as object), ['0', '1']);
        const multiple = await bench.server.read('dev-1', '/3/0/6', { format });
        assert.deepEqual(multiple.value, { 0: 1, 1: 5 });
        const one = await bench.server.read('dev-1', '/3/0/7/1', { format });
        assert.equal(one.value, 5000);
      });
    }

    it('answers 4.06 when an instance is asked for as text', async function () {
      await assert.rejects(bench.server.read('dev-1', '/3/0', { format: TEXT }), rejectsWith('4.06'));
    });

    it('answers 4.04 for what does not exist and 4.05 for what cannot be read', async function () {
      await assert.rejects(bench.server.read('dev-1', '/3303/7'), rejectsWith('4.04'));
      await assert.rejects(bench.server.read('dev-1', '/3304'), rejectsWith('4.04'));
      await assert.rejects(bench.server.read('dev-1', '/3303/0/5800'), rejectsWith('4.04'));
      await assert.rejects(bench.server.read('dev-1', '/3/0/4'), rejectsWith('4.05'));
      await assert.rejects(bench.server.read('dev-1', '/0/0'), rejectsWith('4.01'));
    });

    it('answers 4.06 for a format it does not support', async function () {
      await bench.registered({ endpointName: 'json-only', contentFormats: [SENML_JSON], objects: [3303] });
      await assert.rejects(bench.server.read('json-only', '/3303/0', { format: TLV }), rejectsWith('4.06'));
      // without a forced format the server falls back on what the device announced
      const read = await bench.server.read('json-only', '/3303/0');
      assert.equal(read.contentFormat, SENML_JSON);
    });
  });

  describe('Write', function () {
    for (const format of SINGLE_FORMATS) {
      it(`replaces a single resource written as ${format}`, async function () {
        const writes: unknown[] = [];
        client.on('write', (event) => writes.push(event));
        const result = await bench.server.write('dev-1', '/3303/0/5750', `kitchen-${format}`, { format });
        assert.equal(result.code, '2.04');
        assert.equal(client.get('/3303/0/5750'), `kitchen-${format}`);
        assert.deepEqual(writes, [{ path: '/3303/0/5750', value: `kitchen-${format}`, mode: 'replace' }]);
      });
    }

    for (const format of MULTI_FORMATS) {
      it(`updates an instance (POST) and replaces a multiple resource as ${format}`, async function () {
        const update = await bench.server.write(
          'dev-1',
          '/3425/0',
          { 'Default status': 1, 'Scheduler ID': { 5: 50 } },
          { format, mode: 'update' },
        );
        assert.equal(update.code, '2.04');
        assert.equal(client.get('/3425/0/1'), 1);
        assert.deepEqual(client.get('/3425/0/5'), { 0: 7, 1: 8, 5: 50 }, 'a partial update merges instances');
        await bench.server.write('dev-1', '/3425/0/5', [3], { format });
        assert.deepEqual(client.get('/3425/0/5'), { 0: 3 }, 'a replace replaces every instance');
      });
    }

    it('writes one resource instance (1.1)', async function () {
      await bench.server.write('dev-1', '/3425/0/5/1', 99, { format: TEXT });
      assert.deepEqual(client.get('/3425/0/5'), { 0: 7, 1: 99 });
    });

    it('runs the built-in behaviour of a write (irrigation valve command moves the status)', async function () {
      await bench.server.write('dev-1', '/3425/0/3', 1);
      assert.equal(client.get('/3425/0/2'), 1);
    });

    it('answers 4.05 for read-only resources and 4.04 for unknown ones', async function () {
      await assert.rejects(bench.server.write('dev-1', '/3/0/0', 'x'), rejectsWith('4.05'));
      await assert.rejects(
        bench.server.write('dev-1', '/3303/0', { 5700: 1 }, { mode: 'update', format: SENML_JSON }),
        rejectsWith('4.05'),
      );
      await assert.rejects(bench.server.write('dev-1', '/3303/9/5750', 'x'), rejectsWith('4.04'));
    });

    it('answers 4.15 for a content format it does not accept, 4.00 for a bad payload', async function () {
      const raw = await bench.rawEndpoint();
      const unsupported = await ask(raw, client, {
        method: 'PUT',
        pathSegments: ['3303', '0', '5750'],
        contentFormat: 1234,
        payload: Buffer.from('x'),
      });
      assert.equal(unsupported.code, '4.15');
      const bad = await ask(raw, client, {
        method: 'PUT',
        pathSegments: ['3303', '0', '5750'],
        contentFormat: TLV,
        payload: Buffer.from('ff', 'hex'),
      });
      assert.equal(bad.code, '4.00');
      const notNumber = await ask(raw, client, {
        method: 'PUT',
        pathSegments: ['3425', '0', '1'],
        contentFormat: TEXT,
        payload: Buffer.from('twelve'),
      });
      assert.equal(notNumber.code, '4.00');
    });
  });

  describe('Execute', function () {
    it('executes with arguments and emits execute', async function () {
      const executed = nextEvent<{ path: string; args: string }>(client, 'execute');
      const result = await bench.server.execute('dev-1', '/3303/0/5605', "0='a',1");
      assert.equal(result.code, '2.04');
      assert.deepEqual(await executed, { path: '/3303/0/5605', args: "0='a',1" });
    });

    it('answers 4.05 when the resource is not executable, 4.00 for bad arguments', async function () {
      const raw = await bench.rawEndpoint();
      const notExecutable = await ask(raw, client, { method: 'POST', pathSegments: ['3303', '0', '5700'] });
      assert.equal(notExecutable.code, '4.05');
      const badArgs = await ask(raw, client, {
        method: 'POST',
        pathSegments: ['3303', '0', '5605'],
        contentFormat: TEXT,
        payload: Buffer.from('zzz'),
      });
      assert.equal(badArgs.code, '4.00');
    });
  });

  describe('Discover', function () {
    it('lists an object, its instances and resources, with attributes and dim', async function () {
      await bench.server.writeAttributes('dev-1', '/3303/0/5700', { pmin: 5, pmax: 60, st: 0.5 });
      const object = await bench.server.discover('dev-1', '/3303');
      const uris = object.links.map((link) => link.uri);
      assert.equal(uris[0], '/3303');
      assert.ok(uris.includes('/3303/0'));
      assert.ok(uris.includes('/3303/0/5605'), 'executable resources are listed');
      const sensor = object.links.find((link) => link.uri === '/3303/0/5700')!;
      assert.deepEqual(sensor.params, { pmin: '5', pmax: '60', st: '0.5' });
      const device = await bench.server.discover('dev-1', '/3/0');
      assert.equal(device.links[0].uri, '/3/0');
      assert.equal(device.links.find((link) => link.uri === '/3/0/7')!.params.dim, '2');
      const resource = await bench.server.discover('dev-1', '/3/0/7');
      assert.deepEqual(
        resource.links.map((link) => link.uri),
        ['/3/0/7'],
      );
      await assert.rejects(bench.server.discover('dev-1', '/3304'), rejectsWith('4.04'));
    });
  });

  describe('Create and Delete', function () {
    for (const format of MULTI_FORMATS) {
      it(`creates an instance with an id given in ${format}, then deletes it`, async function () {
        const created = nextEvent<{ path: string }>(client, 'create');
        const updated = nextEvent<Registration>(bench.server, 'updated');
        const result = await bench.server.create('dev-1', '/3303', { 5700: 1.5, 5701: 'K' }, { format, instanceId: 4 });
        assert.equal(result.code, '2.01');
        assert.equal(result.instancePath, '/3303/4');
        assert.deepEqual(await created, { path: '/3303/4' });
        assert.equal(client.get('/3303/4/5700'), 1.5);
        assert.equal(client.get('/3303/4/5701'), 'K');
        // the new instance is announced with an Update
        assert.deepEqual((await updated).objects[3303].instances, [0, 4]);
        const removed = await bench.server.delete('dev-1', '/3303/4');
        assert.equal(removed.code, '2.02');
        assert.equal(client.get('/3303/4/5700'), undefined);
      });
    }

    it('creates an instance whose id it picks itself (TLV without instance)', async function () {
      const result = await bench.server.create('dev-1', '/3303', { 5700: 3 }, { format: TLV });
      assert.equal(result.instancePath, '/3303/1');
      assert.equal(client.get('/3303/1/5700'), 3);
    });

    it('refuses duplicates (4.00), single-instance objects and core instances (4.05)', async function () {
      await assert.rejects(
        bench.server.create('dev-1', '/3303', { 5700: 1 }, { instanceId: 0, format: TLV }),
        rejectsWith('4.00'),
      );
      await assert.rejects(bench.server.create('dev-1', '/3', { 0: 'x' }, { instanceId: 1 }), rejectsWith('4.05'));
      await assert.rejects(bench.server.delete('dev-1', '/3/0'), rejectsWith('4.05'));
      await assert.rejects(bench.server.delete('dev-1', '/3303/9'), rejectsWith('4.04'));
      await assert.rejects(bench.server.create('dev-1', '/3304', { 5700: 1 }, { instanceId: 0 }), rejectsWith('4.04'));
    });
  });

  describe('Write-Attributes', function () {
    it('stores attributes per version and refuses invalid ones with 4.00', async function () {
      const result = await bench.server.writeAttributes('dev-1', '/3303/0', { pmin: 1, pmax: 10 });
      assert.equal(result.code, '2.04');
      const raw = await bench.rawEndpoint();
      const ask1 = (query: string[], path = ['3303', '0', '5700']) =>
        ask(raw, client, { method: 'PUT', pathSegments: path, query });
      assert.equal((await ask1(['gt=30', 'lt=10'])).code, '2.04');
      assert.equal((await ask1(['lt=40'])).code, '4.00', 'lt must stay below gt');
      assert.equal((await ask1(['st=1'], ['3303', '0'])).code, '4.00', 'st applies to resources');
      assert.equal((await ask1(['st=1'], ['3303', '0', '5701'])).code, '4.00', 'st needs a numeric resource');
      assert.equal((await ask1(['foo=1'])).code, '4.00');
      assert.equal((await ask1(['edge=1'])).code, '4.00', 'edge is 1.2');
      assert.equal((await ask1(['epmin=2', 'epmax=20'])).code, '2.04', 'epmin/epmax are 1.1');
      assert.equal((await ask1(['pmin=1'], ['3303', '9'])).code, '4.04');
      assert.equal((await ask1(['gt'])).code, '2.04', 'a name without value removes it');
    });
  });
});
