/**
 * Smaller pieces of the client: attributes, registration links, composite operations (FETCH / iPATCH),
 * the alternate root path, the local set/get API and resource handlers.
 */
import { strict as assert } from 'node:assert';
import { ClientError, Lwm2mClient, resource, type ObjectImplementation } from '../../lib/client';
import { applyAttributeQuery, effectiveAttributes, type ClientAttributes } from '../../lib/client/attributes';
import { registrationLinks } from '../../lib/client/links';
import { encodePaths, parseSenmlJson, serializeLinkFormat } from '../../lib/content';
import { LwM2mPath } from '../../lib/model/path';
import { Lwm2mRequestError } from '../../lib/server/errors';
import { Bench, ask, nextEvent } from './helpers';

const SENML_JSON = 110;
const SENML_CBOR = 112;

describe('client: details', function () {
  describe('attributes', function () {
    const path = LwM2mPath.parse('/3303/0/5700');
    const float = {
      id: 5700,
      name: 'Sensor Value',
      operations: 'R',
      multiple: false,
      mandatory: true,
      type: 'float',
    } as const;

    it('applies, removes and checks Write-Attributes queries', function () {
      const a = applyAttributeQuery(undefined, ['pmin=1', 'pmax=10', 'st=0.5'], '1.1', path, float);
      assert.deepEqual(a, { pmin: 1, pmax: 10, st: 0.5 });
      assert.deepEqual(applyAttributeQuery(a, ['st'], '1.1', path, float), { pmin: 1, pmax: 10 });
      assert.throws(() => applyAttributeQuery(a, ['pmax=0.5'], '1.1', path, float), /whole number/);
      assert.throws(() => applyAttributeQuery(a, ['pmax=abc'], '1.1', path, float), /not a number/);
      assert.throws(
        () => applyAttributeQuery(undefined, ['epmin=1'], '1.0', path, float),
        /not supported in LwM2M 1.0/,
      );
      assert.throws(() => applyAttributeQuery(undefined, ['pmin=10', 'pmax=5'], '1.0', path, float), /less than/);
      assert.deepEqual(applyAttributeQuery(undefined, ['con=1', 'hqmax=30'], '1.2', path, float), {
        con: 1,
        hqmax: 30,
      });
    });

    it('inherits pmin/pmax downwards but not gt/lt/st, with the Server defaults below all', function () {
      const stored = new Map<string, ClientAttributes>([
        ['/3303', { pmin: 5, pmax: 50 }],
        ['/3303/0', { pmax: 40 }],
        ['/3303/0/5701', { st: 9 }],
        ['/3303/0/5700', { st: 1 }],
      ]);
      assert.deepEqual(effectiveAttributes(stored, path, { pmin: 1, pmax: 100 }), { pmin: 5, pmax: 40, st: 1 });
      assert.deepEqual(effectiveAttributes(stored, LwM2mPath.parse('/3303/0'), {}), { pmin: 5, pmax: 40 });
      assert.deepEqual(effectiveAttributes(stored, LwM2mPath.parse('/3304/0'), { pmin: 2 }), { pmin: 2 });
    });
  });

  describe('registration links', function () {
    it('writes the root link, versions and instances like Wakaama does', function () {
      const client = new Lwm2mClient({ endpointName: 'links', lwm2mVersion: '1.2', objects: ['3303*2', 6] });
      const objects = client
        .objectIds()
        .map((id) => (client as unknown as { objects: { object(id: number): never } }).objects.object(id)!);
      assert.equal(
        registrationLinks(objects, { lwm2mVersion: '1.2', rootPath: '/lwm2m', contentFormats: [110] }),
        '</lwm2m>;rt="oma.lwm2m";ct=110,</lwm2m/1>;ver=1.2,</lwm2m/1/0>,</lwm2m/3>;ver=1.2,</lwm2m/3/0>,' +
          '</lwm2m/6/0>,</lwm2m/3303>;ver=1.1,</lwm2m/3303/0>,</lwm2m/3303/1>',
      );
      assert.equal(serializeLinkFormat([]), '');
    });
  });

  describe('against our server', function () {
    let bench: Bench;

    beforeEach(async function () {
      bench = new Bench();
      await bench.startServer();
    });

    afterEach(async function () {
      await bench.close();
    });

    it('lives below an alternate root path', async function () {
      const client = await bench.registered({ endpointName: 'root-1', rootPath: '/lwm2m', objects: [3303] });
      const registration = (await bench.server.getRegistration('root-1'))!;
      assert.equal(registration.rootPath, '/lwm2m');
      assert.ok(registration.objects[3303]);
      client.set('/3303/0/5700', 12.5);
      assert.equal((await bench.server.read('root-1', '/3303/0/5700')).value, 12.5);
      const raw = await bench.rawEndpoint();
      const outside = await ask(raw, client, { method: 'GET', pathSegments: ['3303', '0', '5700'] });
      assert.equal(outside.code, '4.04', 'paths outside the root are not ours');
    });

    it('answers Read-Composite (FETCH) and Write-Composite (iPATCH) in SenML', async function () {
      const client = await bench.registered({ endpointName: 'comp-1', objects: [3303, 3342] });
      client.set('/3303/0/5700', 18);
      const raw = await bench.rawEndpoint();
      const paths = ['/3303/0/5700', '/3/0/9', '/3342/0', '/3304/0'].map((p) => LwM2mPath.parse(p));
      const read = await ask(raw, client, {
        method: 'FETCH',
        pathSegments: [],
        contentFormat: SENML_JSON,
        accept: SENML_JSON,
        payload: encodePaths(paths, SENML_JSON),
      });
      assert.equal(read.code, '2.05');
      const records = parseSenmlJson(read.payload);
      assert.deepEqual(
        records.filter((r) => r.name === '/3303/0/5700' || r.name === '/3/0/9').map((r) => r.value),
        [18, 100],
      );
      assert.ok(
        records.some((r) => r.name === '/3342/0/5500'),
        'an instance is expanded',
      );
      const write = await ask(raw, client, {
        method: 'iPATCH',
        pathSegments: [],
        contentFormat: SENML_JSON,
        payload: Buffer.from(
          JSON.stringify([
            { n: '/3303/0/5750', vs: 'attic' },
            { n: '/1/0/1', v: 600 },
          ]),
        ),
      });
      assert.equal(write.code, '2.04');
      assert.equal(client.get('/3303/0/5750'), 'attic');
      assert.equal(client.get('/1/0/1'), 600);
      const readOnly = await ask(raw, client, {
        method: 'iPATCH',
        pathSegments: [],
        contentFormat: SENML_CBOR,
        payload: Buffer.from('81a200662f332f302f39021864', 'hex'), // [{0: "/3/0/9", 2: 100}]
      });
      assert.equal(readOnly.code, '4.05', 'Battery Level is read-only');
      const tlv = await ask(raw, client, {
        method: 'FETCH',
        pathSegments: [],
        contentFormat: 11542,
        payload: Buffer.from('00', 'hex'),
      });
      assert.equal(tlv.code, '4.15');
    });

    it('runs handlers the application gives, and refuses with their code', async function () {
      let setpoint = 20;
      const thermostat: ObjectImplementation = {
        instance: () => ({
          5700: resource({ read: () => setpoint - 0.5 }),
          5750: resource({
            value: 'thermostat',
            write: (value) => {
              if (value === 'forbidden') throw new ClientError('4.03', 'not this name');
            },
          }),
          5605: resource({
            execute: (args) => {
              setpoint = Number(args.replace(/^0='|'$/g, ''));
            },
          }),
        }),
      };
      const client = await bench.registered({
        endpointName: 'app-1',
        objects: [{ id: 3303, implementation: thermostat }],
      });
      assert.equal((await bench.server.read('app-1', '/3303/0/5700')).value, 19.5);
      await bench.server.execute('app-1', '/3303/0/5605', "0='25'");
      assert.equal((await bench.server.read('app-1', '/3303/0/5700')).value, 24.5);
      assert.equal(client.get('/3303/0/5700'), 24.5);
      await assert.rejects(
        bench.server.write('app-1', '/3303/0/5750', 'forbidden'),
        (err: Lwm2mRequestError) => err.code === '4.03',
      );
      assert.equal(client.get('/3303/0/5750'), 'thermostat');
    });

    it('sets and gets values locally by id, by name and as instances', async function () {
      const client = await bench.registered({ endpointName: 'local-1', objects: [3303] });
      client.set('/3303/0', { 'Sensor Value': 3.5, 5701: 'K' });
      assert.equal(client.get('/3303/0/5700'), 3.5);
      client.set('/3/0/7/1', 4200);
      assert.deepEqual(client.get('/3/0/7'), { 0: 3800, 1: 4200 });
      const instance = client.get('/3303/0') as { byName: Record<string, unknown> };
      assert.equal(instance.byName['Sensor Units'], 'K');
      assert.equal(client.get('/3303/9/5700'), undefined);
      assert.throws(() => client.set('/3303/0/5700', 'warm'), /expects a float/);
      assert.throws(() => client.set('/3303/0/9999', 1), /has no resource 9999/);
      const id = client.addInstance(3303, undefined, { 5700: 1 });
      assert.equal(id, 1);
      const updated = nextEvent(bench.server, 'updated');
      await updated;
      assert.deepEqual((await bench.server.getRegistration('local-1'))!.objects[3303].instances, [0, 1]);
    });
  });
});
