import { strict as assert } from 'node:assert';
import type {
  BootstrapFailedEvent,
  BootstrapFinishedEvent,
  BootstrapServerOptions,
  BootstrapStartedEvent,
} from '../../lib/bootstrap';
import { BootstrapServer } from '../../lib/bootstrap';
import { decodeNode, decodeNodes, encodeNode, parseSenmlJson } from '../../lib/content';
import { ContentFormat } from '../../lib/content/types';
import { LwM2mPath } from '../../lib/model/path';
import { fromPlain } from '../../lib/model/values';
import { CoapDevice } from '../peers/coap-device';
import type { RecordedRequest } from '../peers/coap-device';
import { FAST_COAP, MODEL, decodeWrite, delay, nextEvent, resourcesOf, sequence } from './helpers';

const DM = { shortServerId: 101, uri: 'coap://dm.example.com:5683', lifetime: 300 };
const DM_PSK = {
  shortServerId: 102,
  uri: 'coaps://dm.example.com:5684',
  securityMode: 'psk',
  pskIdentity: 'dev-psk',
  pskKey: '0123456789abcdef0123456789abcdef',
};

describe('BootstrapServer over plain UDP (node-coap as the device)', function () {
  let server: BootstrapServer;
  let device: CoapDevice;
  const devices: CoapDevice[] = [];

  async function startServer(options: Partial<BootstrapServerOptions> = {}): Promise<void> {
    server = new BootstrapServer({ address: '127.0.0.1', port: 0, coap: FAST_COAP, model: MODEL, ...options });
    await server.start();
  }

  async function newDevice(endpoint: string): Promise<CoapDevice> {
    const created = new CoapDevice(endpoint, server.address!.port);
    await created.start();
    devices.push(created);
    return created;
  }

  beforeEach(async function () {
    await startServer();
    device = await newDevice('dev-1');
  });

  afterEach(async function () {
    await server.stop();
    for (const created of devices.splice(0)) await created.stop();
  });

  function finished(): Promise<BootstrapFinishedEvent> {
    return nextEvent<BootstrapFinishedEvent>(server, 'bootstrapFinished');
  }

  function failed(): Promise<BootstrapFailedEvent> {
    return nextEvent<BootstrapFailedEvent>(server, 'bootstrapFailed');
  }

  function writes(): RecordedRequest[] {
    return device.requests.filter((request) => request.method === 'PUT');
  }

  it('provisions a 1.0 device: BS-Delete /0 and /1, BS-Write Security and Server in TLV, Bootstrap-Finish', async function () {
    await server.configStore.set('dev-1', { servers: [DM], lwm2mVersion: '1.0' });
    const started = nextEvent<BootstrapStartedEvent>(server, 'bootstrapStarted');
    const done = finished();
    assert.deepEqual(await device.bootstrapRequest(), { code: '2.04', diagnostic: '' });
    const start = await started;
    assert.equal(start.endpoint, 'dev-1');
    assert.deepEqual(start.peer, { address: '127.0.0.1', port: device.port, secure: false });
    const result = await done;
    assert.deepEqual(sequence(device.requests), ['DELETE /0', 'DELETE /1', 'PUT /0/2', 'PUT /1/0', 'POST /bs']);
    for (const write of writes()) assert.equal(write.contentFormat, ContentFormat.TLV);
    assert.deepEqual(decodeWrite(writes()[0]), { 0: DM.uri, 1: false, 2: 3, 3: '', 4: '', 5: '', 10: 101 });
    assert.deepEqual(decodeWrite(writes()[1]), { 0: 101, 1: 300, 6: true, 7: 'U' });
    const finish = device.requests[4];
    assert.equal(finish.payload.length, 0);
    assert.equal(result.endpoint, 'dev-1');
    assert.equal(result.method, 'bs');
    assert.ok(result.durationMs >= 0);
    assert.deepEqual(result.summary, {
      servers: [{ shortServerId: 101, uri: DM.uri, securityMode: 'nosec', securityInstanceId: 2, serverInstanceId: 0 }],
      bootstrapAccountWritten: false,
      deleted: ['/0', '/1'],
      written: ['/0/2', '/1/0'],
      contentFormat: ContentFormat.TLV,
      lwm2mVersion: '1.0',
      warnings: [],
    });
    assert.deepEqual(server.activeSessions(), []);
  });

  it('provisions a 1.1 device in SenML CBOR (pct=112): BS-Discover, BS-Read /1, two servers with ACL, Mute Send, its own account', async function () {
    await server.configStore.set('dev-1', {
      servers: [
        { ...DM, muteSend: true, defaultMinPeriod: 10, defaultMaxPeriod: 600 },
        { ...DM_PSK, binding: 'UQ', notificationStoring: false },
      ],
      bootstrapServer: { uri: 'coap://bs.example.com:5685', clientHoldOffTime: 5 },
      discover: true,
      read: ['/1'],
      objects: { '/3303/0': { 5750: 'fridge' } },
    });
    // The device's bootstrap account is /0/1 (a link without ssid); /0/0 and /1/0 belong to an old server.
    device.resources.set('/', {
      contentFormat: ContentFormat.LINK_FORMAT,
      payload: '</>;lwm2m=1.1,</0/0>;ssid=7,</0/1>,</1/0>;ssid=7,</3/0>,</3303/0>',
    });
    const oldServer = fromPlain({ 0: { 0: 7, 1: 60, 6: false, 7: 'U' } }, LwM2mPath.parse('/1'), MODEL);
    device.resources.set('/1', {
      contentFormat: ContentFormat.SENML_CBOR,
      payload: encodeNode(oldServer, ContentFormat.SENML_CBOR, LwM2mPath.parse('/1'), MODEL),
    });
    const started = nextEvent<BootstrapStartedEvent>(server, 'bootstrapStarted');
    const done = finished();
    assert.equal((await device.bootstrapRequest('ep=dev-1&pct=112')).code, '2.04');
    assert.equal((await started).preferredContentFormat, 112);
    const result = await done;
    assert.deepEqual(sequence(device.requests), [
      'GET /',
      'GET /1',
      'DELETE /0',
      'DELETE /1',
      'PUT /0/1',
      'PUT /0/0',
      'PUT /0/2',
      'PUT /1/0',
      'PUT /1/1',
      'PUT /2/0',
      'PUT /2/1',
      'PUT /2/2',
      'PUT /2/3',
      'PUT /2/4',
      'PUT /3303/0',
      'POST /bs',
    ]);
    assert.equal(device.requests[0].accept, ContentFormat.LINK_FORMAT);
    assert.equal(device.requests[1].accept, ContentFormat.SENML_CBOR);
    for (const write of writes()) assert.equal(write.contentFormat, ContentFormat.SENML_CBOR);
    const [bootstrap, security101, security102, server101, server102] = writes().map(decodeWrite);
    assert.deepEqual(bootstrap, { 0: 'coap://bs.example.com:5685', 1: true, 2: 3, 3: '', 4: '', 5: '', 11: 5 });
    assert.deepEqual(security101, { 0: DM.uri, 1: false, 2: 3, 3: '', 4: '', 5: '', 10: 101 });
    assert.deepEqual(security102, {
      0: DM_PSK.uri,
      1: false,
      2: 0,
      3: Buffer.from('dev-psk').toString('hex'),
      4: '',
      5: DM_PSK.pskKey,
      10: 102,
    });
    assert.deepEqual(server101, { 0: 101, 1: 300, 2: 10, 3: 600, 6: true, 7: 'U', 23: true });
    assert.deepEqual(server102, { 0: 102, 1: 86400, 6: false, 7: 'UQ' });
    assert.deepEqual(writes().slice(5, 10).map(decodeWrite), [
      { 0: 1, 1: 0, 2: { 101: 15 }, 3: 101 },
      { 0: 1, 1: 1, 2: { 102: 15 }, 3: 102 },
      { 0: 3, 1: 0, 2: { 101: 7, 102: 7 }, 3: 101 },
      { 0: 3303, 1: 0, 2: { 101: 15, 102: 15 }, 3: 101 },
      { 0: 3303, 1: 65535, 2: { 101: 16, 102: 16 }, 3: 101 },
    ]);
    assert.deepEqual(decodeWrite(writes()[10]), { 5750: 'fridge' });
    assert.equal(result.summary.lwm2mVersion, '1.1');
    assert.equal(result.summary.bootstrapAccountWritten, true);
    assert.equal(result.summary.contentFormat, ContentFormat.SENML_CBOR);
    assert.match(result.summary.discovered ?? '', /<\/0\/1>/);
    assert.deepEqual(result.summary.read, {
      '/1': { 0: { byName: resourcesByName(), byId: { 0: 7, 1: 60, 6: false, 7: 'U' } } },
    });
    assert.deepEqual(
      result.summary.servers.map((s) => [s.shortServerId, s.securityInstanceId, s.serverInstanceId]),
      [
        [101, 0, 0],
        [102, 2, 1],
      ],
    );
  });

  function resourcesByName(): Record<string, unknown> {
    return {
      'Short Server ID': 7,
      Lifetime: 60,
      'Notification Storing When Disabled or Offline': false,
      Binding: 'U',
    };
  }

  it('writes SenML JSON when asked (pct=110) and falls back to TLV when the device answers 4.15', async function () {
    await server.configStore.set('dev-1', { servers: [DM] });
    device.handler = (request) =>
      request.method === 'PUT' && request.contentFormat === ContentFormat.SENML_JSON ? { code: '4.15' } : undefined;
    const done = finished();
    await device.bootstrapRequest('ep=dev-1&pct=110');
    const result = await done;
    assert.deepEqual(sequence(device.requests), [
      'DELETE /0',
      'DELETE /1',
      'PUT /0/2',
      'PUT /0/2',
      'PUT /1/0',
      'POST /bs',
    ]);
    assert.deepEqual(
      writes().map((write) => write.contentFormat),
      [ContentFormat.SENML_JSON, ContentFormat.TLV, ContentFormat.TLV],
    );
    assert.deepEqual(
      parseSenmlJson(writes()[0].payload).map((record) => record.name),
      ['/0/2/0', '/0/2/1', '/0/2/2', '/0/2/3', '/0/2/4', '/0/2/5', '/0/2/10'],
    );
    assert.deepEqual(decodeWrite(writes()[1]), decodeWrite(writes()[0]));
    assert.equal(result.summary.contentFormat, ContentFormat.TLV);
    assert.match(result.summary.warnings[0], /does not take application\/senml\+json \(4\.15\): TLV from here on/);
  });

  it('fails at the step the device refuses, with its code and diagnostic', async function () {
    await server.configStore.set('dev-1', { servers: [DM] });
    const cases: Array<[string, string, string, string]> = [
      ['DELETE /1', '4.00', 'delete', 'BS-Delete /1 failed: the device answered 4.00: no way'],
      ['PUT /0/2', '4.05', 'write', 'BS-Write /0/2 failed: the device answered 4.05: no way'],
      ['PUT /1/0', '5.00', 'write', 'BS-Write /1/0 failed: the device answered 5.00: no way'],
      ['POST /bs', '4.00', 'finish', 'Bootstrap-Finish /bs failed: the device answered 4.00: no way'],
    ];
    for (const [target, code, step, reason] of cases) {
      device.requests.length = 0;
      device.handler = (request) =>
        `${request.method} ${request.url}` === target ? { code, payload: 'no way' } : undefined;
      const failure = failed();
      await device.bootstrapRequest();
      const event = await failure;
      assert.equal(event.endpoint, 'dev-1');
      assert.equal(event.step, step, target);
      assert.equal(event.code, code);
      assert.equal(event.reason, reason);
      assert.equal(event.diagnostic, 'no way');
      assert.equal(event.path, target.split(' ')[1]);
      assert.equal(sequence(device.requests).at(-1), target, 'nothing is sent after the refusal');
    }
    assert.deepEqual(server.activeSessions(), []);
  });

  it('reports a 4.06 to Bootstrap-Finish as an inconsistent configuration with the device diagnostic', async function () {
    await server.configStore.set('dev-1', { servers: [DM] });
    device.handler = (request) =>
      request.method === 'POST' ? { code: '4.06', payload: 'Server 101 has no Security instance' } : undefined;
    const failure = failed();
    await device.bootstrapRequest();
    const event = await failure;
    assert.equal(event.step, 'finish');
    assert.equal(event.code, '4.06');
    assert.equal(event.diagnostic, 'Server 101 has no Security instance');
    assert.match(event.reason, /inconsistent \(4\.06\): Server 101 has no Security instance/);
  });

  it('goes on when BS-Discover and BS-Read are refused, a 4.04 to BS-Delete, and a refused second bootstrap account', async function () {
    await server.configStore.set('dev-1', {
      servers: [DM],
      bootstrapServer: { uri: 'coap://bs2.example.com' },
      discover: true,
      read: ['/1', '/2'],
      deletePaths: ['/0', '/1', '/2'],
      lwm2mVersion: '1.1',
    });
    device.handler = (request) => {
      if (request.method === 'GET') return { code: '4.05' };
      if (request.method === 'DELETE' && request.url === '/2') return { code: '4.04' };
      if (request.method === 'PUT' && request.url === '/0/0')
        return { code: '4.00', payload: 'one bootstrap account only' };
      return undefined;
    };
    const done = finished();
    await device.bootstrapRequest();
    const result = await done;
    assert.deepEqual(sequence(device.requests), [
      'GET /',
      'GET /1',
      'GET /2',
      'DELETE /0',
      'DELETE /1',
      'DELETE /2',
      'PUT /0/0',
      'PUT /0/1',
      'PUT /1/0',
      'POST /bs',
    ]);
    assert.equal(result.summary.bootstrapAccountWritten, false);
    assert.deepEqual(result.summary.written, ['/0/1', '/1/0']);
    assert.deepEqual(result.summary.deleted, ['/0', '/1']);
    assert.deepEqual(result.summary.warnings, [
      'BS-Discover / answered 4.05',
      'BS-Read /1 answered 4.05',
      'BS-Read /2 answered 4.05',
      'BS-Delete /2: nothing to delete (4.04)',
      'the device refused to write the bootstrap account /0/0 (4.00: one bootstrap account only): skipped',
    ]);
  });

  it('learns a 1.0 device from BS-Discover: TLV, no BS-Read, numbering around its bootstrap account', async function () {
    await server.configStore.set('dev-1', { servers: [DM], discover: true, read: ['/1'] });
    device.resources.set('/', {
      contentFormat: ContentFormat.LINK_FORMAT,
      payload: '</>;lwm2m="1.0",</0/0>;ssid=7,</0/1>;ssid="0",</1/0>;ssid=7,</3/0>',
    });
    const done = finished();
    await device.bootstrapRequest();
    const result = await done;
    assert.deepEqual(sequence(device.requests), [
      'GET /',
      'DELETE /0',
      'DELETE /1',
      'PUT /0/0',
      'PUT /1/0',
      'POST /bs',
    ]);
    for (const write of writes()) assert.equal(write.contentFormat, ContentFormat.TLV);
    assert.equal(result.summary.lwm2mVersion, '1.0');
    assert.deepEqual(result.summary.warnings, ['BS-Read skipped: the device is LwM2M 1.0']);
  });

  it('reads the 1.0 form of a BS-Discover answer (the version first, no root link), as Anjay -V 1.0 sends it', async function () {
    await server.configStore.set('dev-1', { servers: [DM], discover: true });
    device.resources.set('/', {
      contentFormat: ContentFormat.LINK_FORMAT,
      payload: 'lwm2m="1.0",</0>,</0/1>,</1>,</3/0>',
    });
    const done = finished();
    await device.bootstrapRequest();
    const result = await done;
    // Its bootstrap account is /0/1: the server account goes to /0/0, in TLV for a 1.0 device.
    assert.deepEqual(sequence(device.requests), [
      'GET /',
      'DELETE /0',
      'DELETE /1',
      'PUT /0/0',
      'PUT /1/0',
      'POST /bs',
    ]);
    assert.equal(result.summary.lwm2mVersion, '1.0');
    assert.deepEqual(result.summary.warnings, []);
  });

  it('without BS-Discover spares /0/0 and /0/1, where devices keep their bootstrap account', async function () {
    await server.configStore.set('dev-1', { servers: [DM] });
    const done = finished();
    await device.bootstrapRequest('ep=dev-1&pct=112');
    assert.deepEqual((await done).summary.written, ['/0/2', '/1/0']);
  });

  it('fails with a time-out when the device stops answering', async function () {
    await server.configStore.set('dev-1', { servers: [DM] });
    device.dropIf = (request) => request.method === 'PUT';
    const failure = failed();
    await device.bootstrapRequest();
    const event = await failure;
    assert.equal(event.step, 'write');
    assert.equal(event.code, 'timeout');
    assert.equal(event.path, '/0/2');
    assert.equal(event.reason, 'BS-Write /0/2: no answer from the device (timeout)');
    assert.deepEqual(server.activeSessions(), []);
  });

  it('fails a session that takes longer than sessionTimeoutMs', async function () {
    await server.stop();
    await startServer({ sessionTimeoutMs: 150 });
    await device.stop();
    devices.length = 0;
    device = await newDevice('dev-1');
    await server.configStore.set('dev-1', { servers: [DM] });
    device.dropIf = (request) => request.method === 'DELETE' && request.url === '/1';
    const failure = failed();
    await device.bootstrapRequest();
    const event = await failure;
    assert.equal(event.code, 'aborted');
    assert.match(event.reason, /the session took longer than 150 ms/);
    assert.equal(event.step, 'delete');
    assert.ok(event.durationMs < 400, `reported at once, not when the request times out (${event.durationMs} ms)`);
  });

  it('restarts the session when the device requests bootstrap again mid-session', async function () {
    await server.configStore.set('dev-1', { servers: [DM] });
    let asked = false;
    let second: Promise<{ code: string }> | undefined;
    device.handler = (request) => {
      if (request.method === 'PUT' && !asked) {
        asked = true;
        second = device.bootstrapRequest();
      }
      return undefined;
    };
    const starts: BootstrapStartedEvent[] = [];
    server.on('bootstrapStarted', (event) => starts.push(event));
    const failure = failed();
    const done = finished();
    await device.bootstrapRequest();
    const first = await failure;
    assert.equal(first.restarted, true);
    assert.equal(first.code, 'aborted');
    assert.match(first.reason, /requested bootstrap again/);
    await done;
    assert.equal((await second)?.code, '2.04');
    assert.equal(starts.length, 2);
    assert.deepEqual(sequence(device.requests), [
      'DELETE /0',
      'DELETE /1',
      'PUT /0/2',
      'DELETE /0',
      'DELETE /1',
      'PUT /0/2',
      'PUT /1/0',
      'POST /bs',
    ]);
  });

  it('answers 4.00 to an unknown endpoint, and uses default configurations by pattern', async function () {
    const failure = failed();
    assert.deepEqual(await device.bootstrapRequest(), {
      code: '4.00',
      diagnostic: 'no bootstrap configuration for endpoint "dev-1"',
    });
    const event = await failure;
    assert.equal(event.step, 'request');
    assert.equal(event.code, '4.00');
    assert.equal(device.requests.length, 0);
    assert.equal((await device.bootstrapRequest('lt=5')).code, '4.00'); // no ep at all

    await server.configStore.set('sensor-*', { servers: [{ ...DM, shortServerId: 5 }] });
    await server.configStore.set('*', { servers: [{ ...DM, shortServerId: 9 }] });
    const sensor = await newDevice('sensor-42');
    let done = finished();
    assert.equal((await sensor.bootstrapRequest()).code, '2.04');
    assert.equal((await done).summary.servers[0].shortServerId, 5);
    done = finished();
    assert.equal((await device.bootstrapRequest()).code, '2.04');
    assert.equal((await done).summary.servers[0].shortServerId, 9);
  });

  it('refuses a device with bootstrap credentials over plain CoAP (4.03), and a bad pct (4.00)', async function () {
    await server.configStore.set('dev-1', { servers: [DM] });
    await server.securityStore.add({
      endpoint: 'dev-1',
      mode: 'psk',
      identity: 'dev-1',
      key: Buffer.from('secret-key'),
    });
    const failure = failed();
    const answer = await device.bootstrapRequest();
    assert.equal(answer.code, '4.03');
    assert.match(answer.diagnostic, /endpoint "dev-1" has psk credentials: register over DTLS/);
    assert.equal((await failure).code, '4.03');
    await server.securityStore.remove('dev-1');
    assert.equal((await device.bootstrapRequest('ep=dev-1&pct=abc')).code, '4.00');
    assert.equal(device.requests.length, 0);
  });

  it('runs one session per endpoint and bounds the sessions in total (5.03)', async function () {
    await server.stop();
    await startServer({ maxSessions: 1 });
    for (const created of devices.splice(0)) await created.stop();
    device = await newDevice('dev-1');
    const other = await newDevice('dev-2');
    await server.configStore.set('*', { servers: [DM] });
    device.dropIf = (request) => request.method === 'DELETE';
    assert.equal((await device.bootstrapRequest()).code, '2.04');
    await delay(20);
    assert.deepEqual(server.activeSessions(), ['dev-1']);
    const refused = await other.bootstrapRequest();
    assert.equal(refused.code, '5.03');
    assert.equal(refused.diagnostic, 'too many bootstrap sessions at once');
  });

  it('answers a Bootstrap-Pack-Request with the whole configuration in SenML CBOR or JSON, 4.04 when unknown', async function () {
    await server.configStore.set('dev-1', {
      servers: [{ ...DM, muteSend: false }],
      objects: { '/3303/0': { 5750: 'fridge' } },
    });
    const done = finished();
    const pack = await device.bootstrapPack(ContentFormat.SENML_CBOR);
    assert.equal(pack.code, '2.05');
    assert.equal(pack.contentFormat, ContentFormat.SENML_CBOR);
    const nodes = decodeNodes(pack.payload, ContentFormat.SENML_CBOR, MODEL, [
      LwM2mPath.parse('/0/2'),
      LwM2mPath.parse('/1/0'),
      LwM2mPath.parse('/3303/0'),
    ]);
    assert.deepEqual(resourcesOf(nodes.get('/0/2')!), { 0: DM.uri, 1: false, 2: 3, 3: '', 4: '', 5: '', 10: 101 });
    assert.deepEqual(resourcesOf(nodes.get('/1/0')!), { 0: 101, 1: 300, 6: true, 7: 'U', 23: false });
    assert.deepEqual(resourcesOf(nodes.get('/3303/0')!), { 5750: 'fridge' });
    const result = await done;
    assert.equal(result.method, 'pack');
    assert.deepEqual(result.summary.written, ['/0/2', '/1/0', '/3303/0']);
    assert.equal(device.requests.length, 0, 'no BS-Write sequence after a pack');

    const json = await device.bootstrapPack(ContentFormat.SENML_JSON);
    assert.equal(json.code, '2.05');
    assert.equal(json.contentFormat, ContentFormat.SENML_JSON);
    const records = parseSenmlJson(json.payload);
    assert.deepEqual(
      records.filter((record) => record.name.startsWith('/1/0/')).map((record) => record.name),
      ['/1/0/0', '/1/0/1', '/1/0/6', '/1/0/7', '/1/0/23'],
    );

    const unknown = await device.bootstrapPack(ContentFormat.SENML_CBOR, 'ep=nobody');
    assert.equal(unknown.code, '4.04');
    assert.equal(unknown.payload.toString(), 'no bootstrap configuration for endpoint "nobody"');
    assert.equal((await device.bootstrapPack(ContentFormat.TLV)).code, '4.06');
  });

  it('fails a running session when the server stops', async function () {
    await server.configStore.set('dev-1', { servers: [DM] });
    device.dropIf = () => true;
    const failure = failed();
    await device.bootstrapRequest();
    await delay(20);
    await server.stop();
    const event = await failure;
    assert.equal(event.step, 'delete');
    assert.match(event.reason, /stopped|closed/);
  });
});

// The content of a TLV write decodes to exactly what a SenML one does (spot check of the codecs used).
describe('BS-Write payloads', function () {
  it('decode the same in TLV and SenML CBOR', function () {
    const node = fromPlain({ 0: 101, 1: 300, 6: true, 7: 'U', 23: true }, LwM2mPath.parse('/1/0'), MODEL);
    const path = LwM2mPath.parse('/1/0');
    const tlv = decodeNode(encodeNode(node, ContentFormat.TLV, path, MODEL), ContentFormat.TLV, path, MODEL);
    const cbor = decodeNode(
      encodeNode(node, ContentFormat.SENML_CBOR, path, MODEL),
      ContentFormat.SENML_CBOR,
      path,
      MODEL,
    );
    assert.deepEqual(resourcesOf(tlv), resourcesOf(cbor));
  });
});
