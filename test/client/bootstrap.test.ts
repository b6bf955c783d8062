/**
 * Client-initiated bootstrap from the device side (LwM2M 1.1/1.2 Core §6.1): a scripted Bootstrap-Server
 * (a raw CoapEndpoint) answers /bs and sends Bootstrap-Discover / -Read / -Write / -Delete / -Finish; the
 * device then registers with one of our Lwm2mServers, over CoAP or DTLS PSK.
 */
import { strict as assert } from 'node:assert';
import * as dgram from 'node:dgram';
import { once } from 'node:events';
import { generate, parse } from 'coap-packet';
import { Lwm2mClient, startFleet } from '../../lib/client';
import { USAGE, parseCommandLine, progressLine } from '../../lib/client/cli';
import { CoapEndpoint } from '../../lib/coap/endpoint';
import { DtlsTransport } from '../../lib/dtls';
import type { IncomingRequest, IncomingResponse, OutgoingRequest, OutgoingResponse } from '../../lib/coap/types';
import { ContentFormat, decodeNode, encodeNode, encodeNodes } from '../../lib/content';
import { defaultClientModel } from '../../lib/client';
import { LwM2mPath } from '../../lib/model/path';
import type { LwM2mNode, LwM2mObjectInstance, LwM2mResource, ResourceValue } from '../../lib/model/types';
import type { Registration } from '../../lib/server/registration';
import type { PeerAddress } from '../../lib/transport/types';
import { Bench, FAST_COAP, nextEvent, waitFor } from './helpers';

const model = defaultClientModel();

interface Seen {
  method: string;
  path: string;
  query: string[];
  accept?: number;
  contentFormat?: number;
  payload: Buffer;
}

/** A Bootstrap-Server played by a script: it records the device's requests and runs `script` after each /bs. */
class ScriptedBootstrapServer {
  readonly seen: Seen[] = [];
  /** One promise per /bs handled: the script's run (rejects with its failed assertions). */
  readonly runs: Array<Promise<void>> = [];
  /** Answer to POST /bs. */
  bsCode = '2.04';
  /** Answer to GET /bspack (default 4.04). */
  pack: () => OutgoingResponse = () => ({ code: '4.04' });
  script: (peer: PeerAddress, run: number) => Promise<void> = async () => undefined;

  private constructor(
    readonly endpoint: CoapEndpoint,
    private readonly scheme = 'coap',
  ) {
    endpoint.setRequestHandler((request) => this.handle(request));
  }

  static async start(bench: Bench): Promise<ScriptedBootstrapServer> {
    return new ScriptedBootstrapServer(await bench.rawEndpoint());
  }

  /** The same over DTLS with a PSK (our lib/dtls server side). */
  static async startSecure(bench: Bench, identity: string, key: Buffer): Promise<ScriptedBootstrapServer> {
    const transport = new DtlsTransport({
      address: '127.0.0.1',
      port: 0,
      pskKey: (id) => (id === identity ? key : undefined),
    });
    const endpoint = new CoapEndpoint(transport, FAST_COAP);
    await endpoint.start();
    bench.onClose(() => endpoint.close());
    return new ScriptedBootstrapServer(endpoint, 'coaps');
  }

  get uri(): string {
    return `${this.scheme}://127.0.0.1:${this.endpoint.localAddress()!.port}`;
  }

  ask(peer: PeerAddress, request: OutgoingRequest): Promise<IncomingResponse> {
    return this.endpoint.request(peer, request);
  }

  private handle(request: IncomingRequest): OutgoingResponse {
    this.seen.push({
      method: request.method,
      path: '/' + request.pathSegments.join('/'),
      query: request.query,
      accept: request.accept,
      contentFormat: request.contentFormat,
      payload: request.payload,
    });
    const path = request.pathSegments.join('/');
    if (request.method === 'GET' && path === 'bspack') return this.pack();
    if (request.method === 'POST' && path === 'bs') {
      if (this.bsCode === '2.04') {
        const peer = { address: request.peer.address, port: request.peer.port };
        const index = this.runs.length;
        // the script's requests go out once the 2.04 did
        this.runs.push(new Promise<void>((resolve) => setTimeout(resolve, 10)).then(() => this.script(peer, index)));
      }
      return { code: this.bsCode };
    }
    return { code: '4.04' };
  }
}

function res(id: number, type: LwM2mResource['type'], value: ResourceValue): LwM2mResource {
  return { kind: 'resource', id, type, value } as LwM2mResource;
}

function instance(id: number, resources: LwM2mResource[]): LwM2mObjectInstance {
  return { kind: 'instance', id, resources: new Map(resources.map((r) => [r.id, r])) };
}

/** A Security instance for an LwM2M Server (Bootstrap-Server false). */
function securityInstance(
  id: number,
  uri: string,
  ssid: number,
  psk?: { identity: string; key: Buffer },
  mode = psk ? 0 : 3,
): LwM2mObjectInstance {
  return instance(id, [
    res(0, 'string', uri),
    res(1, 'boolean', false),
    res(2, 'integer', mode),
    res(3, 'opaque', psk ? Buffer.from(psk.identity) : Buffer.alloc(0)),
    res(4, 'opaque', Buffer.alloc(0)),
    res(5, 'opaque', psk ? psk.key : Buffer.alloc(0)),
    res(10, 'integer', ssid),
  ]);
}

function serverInstance(id: number, ssid: number, lifetime: number, binding = 'U'): LwM2mObjectInstance {
  return instance(id, [
    res(0, 'integer', ssid),
    res(1, 'integer', lifetime),
    res(6, 'boolean', false),
    res(7, 'string', binding),
  ]);
}

/** Bootstrap-Write of an instance in `format`. */
function bsWrite(node: LwM2mObjectInstance, objectId: number, format: number): OutgoingRequest {
  const path = new LwM2mPath(objectId, node.id);
  return {
    method: 'PUT',
    pathSegments: [String(objectId), String(node.id)],
    contentFormat: format,
    payload: encodeNode(node, format, path, model),
  };
}

const DISCOVER: OutgoingRequest = { method: 'GET', pathSegments: [], accept: ContentFormat.LINK_FORMAT };
const FINISH: OutgoingRequest = { method: 'POST', pathSegments: ['bs'] };
const text = (response: IncomingResponse): string => response.payload.toString('utf8');

describe('client: bootstrap', function () {
  let bench: Bench;
  let bs: ScriptedBootstrapServer;

  beforeEach(async function () {
    bench = new Bench();
    bs = await ScriptedBootstrapServer.start(bench);
  });

  afterEach(async function () {
    await bench.close();
  });

  /** A client with a Bootstrap-Server and no LwM2M Server account. */
  function bootstrapClient(options: Partial<ConstructorParameters<typeof Lwm2mClient>[0]> & { endpointName: string }) {
    return bench.client({
      serverUri: undefined,
      bootstrapUri: bs.uri,
      bootstrapRetry: { initialDelayMs: 50, maxDelayMs: 100 },
      ...options,
    });
  }

  it('bootstraps over CoAP (POST /bs?ep=&pct=), is provisioned by Bootstrap-Write and registers there', async function () {
    await bench.startServer();
    bs.script = async (peer) => {
      assert.equal((await bs.ask(peer, { method: 'DELETE', pathSegments: ['0'] })).code, '2.02');
      assert.equal((await bs.ask(peer, { method: 'DELETE', pathSegments: ['1'] })).code, '2.02');
      const security = securityInstance(1, bench.serverUri, 101);
      assert.equal((await bs.ask(peer, bsWrite(security, 0, ContentFormat.SENML_JSON))).code, '2.04');
      assert.equal((await bs.ask(peer, bsWrite(serverInstance(0, 101, 120), 1, ContentFormat.TLV))).code, '2.04');
      const finish = await bs.ask(peer, FINISH);
      assert.equal(finish.code, '2.04', text(finish));
    };
    const client = bootstrapClient({ endpointName: 'bs-plain', objects: [3303] });
    const events: string[] = [];
    client.on('bootstrapping', () => events.push('bootstrapping'));
    client.on('bootstrapped', () => events.push('bootstrapped'));
    client.on('registered', () => events.push('registered'));
    const bootstrapped = nextEvent<{ serverUri: string; securityMode: number; shortServerId: number }>(
      client,
      'bootstrapped',
    );
    const registered = nextEvent<Registration>(bench.server, 'registered');
    await client.start();
    await bs.runs[0];
    assert.deepEqual(await bootstrapped, { serverUri: bench.serverUri, securityMode: 3, shortServerId: 101 });
    const registration = await registered;
    assert.equal(registration.endpoint, 'bs-plain');
    assert.equal(registration.lifetime, 120, 'the lifetime of /1/0/1');
    assert.equal(registration.binding, 'U');
    assert.deepEqual(events, ['bootstrapping', 'bootstrapped', 'registered']);
    // what the device sent the Bootstrap-Server: POST /bs?ep=bs-plain&pct=110, no payload, nothing else
    assert.deepEqual(
      bs.seen.map((s) => [s.method, s.path, s.query, s.payload.length]),
      [['POST', '/bs', ['ep=bs-plain', 'pct=110'], 0]],
    );
    assert.equal(client.get('/0/0/1'), true, 'the Bootstrap-Server account survived DELETE /0');
    assert.equal(client.get('/0/1/10'), 101);
    assert.equal(client.get('/1/0/0'), 101);
    assert.deepEqual(client.serverAccount, { uri: bench.serverUri, securityMode: 3, shortServerId: 101 });
    assert.equal(client.stats().bootstraps, 1);
    // the server sees an ordinary device: Read and the Server object it was given
    assert.equal((await bench.server.read('bs-plain', '/1/0/1')).value, 120);
  });

  it('bootstraps into a DTLS PSK account (coaps://, identity /0/x/3, key /0/x/5) and registers over DTLS', async function () {
    await bench.startServer({ dtls: { port: 0 } });
    const key = Buffer.from('bootstrapped-key-1');
    await bench.server.securityStore.add({ endpoint: 'bs-psk', mode: 'psk', identity: 'bs-psk-id', key });
    const uri = `coaps://127.0.0.1:${bench.server.secureAddress!.port}`;
    bs.script = async (peer) => {
      assert.equal((await bs.ask(peer, { method: 'DELETE', pathSegments: [] })).code, '2.02');
      const security = securityInstance(3, uri, 7, { identity: 'bs-psk-id', key });
      assert.equal((await bs.ask(peer, bsWrite(security, 0, ContentFormat.TLV))).code, '2.04');
      assert.equal((await bs.ask(peer, bsWrite(serverInstance(2, 7, 90), 1, ContentFormat.LWM2M_CBOR))).code, '2.04');
      assert.equal((await bs.ask(peer, FINISH)).code, '2.04');
    };
    const client = bootstrapClient({ endpointName: 'bs-psk' });
    const bootstrapped = nextEvent<{ serverUri: string; securityMode: number }>(client, 'bootstrapped');
    const registered = nextEvent<Registration>(bench.server, 'registered', 15000);
    await client.start();
    await bs.runs[0];
    assert.deepEqual(await bootstrapped, { serverUri: uri, securityMode: 0, shortServerId: 7 });
    const registration = await registered;
    assert.deepEqual(registration.security, { mode: 'psk', identity: 'bs-psk-id' });
    assert.equal(registration.lifetime, 90);
    assert.equal((await bench.server.read('bs-psk', '/1/2/0')).value, 7, 'the Server instance /1/2 it was given');
  });

  it('reaches a coaps:// Bootstrap-Server with bootstrapPsk, then registers over plain CoAP', async function () {
    await bench.startServer();
    const key = Buffer.from('bootstrap-server-key');
    const secure = await ScriptedBootstrapServer.startSecure(bench, 'bs-dtls-id', key);
    secure.script = async (peer) => {
      const discover = await secure.ask(peer, DISCOVER);
      assert.match(text(discover), /^<\/>;lwm2m="1.1",<\/0>;ver=1.2,<\/0\/0>,/);
      await secure.ask(peer, bsWrite(securityInstance(1, bench.serverUri, 101), 0, ContentFormat.TLV));
      await secure.ask(peer, bsWrite(serverInstance(0, 101, 60), 1, ContentFormat.TLV));
      assert.equal((await secure.ask(peer, FINISH)).code, '2.04');
    };
    const client = bench.client({
      endpointName: 'bs-over-dtls',
      serverUri: undefined,
      bootstrapUri: secure.uri,
      bootstrapPsk: { identity: 'bs-dtls-id', key },
    });
    assert.equal(client.get('/0/0/2'), 0, 'Bootstrap-Server account in PSK mode');
    await client.start();
    await secure.runs[0];
    assert.deepEqual(
      secure.seen.map((s) => [s.method, s.path, s.query]),
      [['POST', '/bs', ['ep=bs-over-dtls', 'pct=110']]],
    );
    assert.ok(await bench.server.getRegistration('bs-over-dtls'));
  });

  it('answers Bootstrap-Discover, and Bootstrap-Delete spares the Bootstrap-Server account and the Device', async function () {
    await bench.startServer();
    const checks: Array<[string, IncomingResponse]> = [];
    bs.script = async (peer) => {
      const ask = async (what: string, request: OutgoingRequest) => {
        const response = await bs.ask(peer, request);
        checks.push([what, response]);
        return response;
      };
      await ask('discover before', DISCOVER);
      await ask('write /0/1', bsWrite(securityInstance(1, bench.serverUri, 101), 0, ContentFormat.SENML_CBOR));
      await ask('write /1/0', bsWrite(serverInstance(0, 101, 60), 1, ContentFormat.SENML_JSON));
      await ask('discover /0', { ...DISCOVER, pathSegments: ['0'] });
      await ask('delete /', { method: 'DELETE', pathSegments: [] });
      await ask('discover after', DISCOVER);
      await ask('delete /0/0', { method: 'DELETE', pathSegments: ['0', '0'] });
      await ask('delete /3/0', { method: 'DELETE', pathSegments: ['3', '0'] });
      await ask('write /0/1 again', bsWrite(securityInstance(1, bench.serverUri, 101), 0, ContentFormat.TLV));
      await ask('write /1/0 again', bsWrite(serverInstance(0, 101, 60), 1, ContentFormat.TLV));
      await ask('finish', FINISH);
    };
    const client = bootstrapClient({ endpointName: 'bs-delete', objects: ['3303*2'] });
    await client.start();
    await bs.runs[0];
    const answers = new Map(checks);
    const before = answers.get('discover before')!;
    assert.equal(before.code, '2.05');
    assert.equal(before.contentFormat, ContentFormat.LINK_FORMAT);
    assert.equal(
      text(before),
      '</>;lwm2m="1.1",</0>;ver=1.2,</0/0>,</1>;ver=1.1,</3>;ver=1.2,</3/0>,</3303>;ver=1.1,</3303/0>,</3303/1>',
    );
    assert.equal(answers.get('write /0/1')!.code, '2.04');
    assert.equal(answers.get('write /1/0')!.code, '2.04');
    assert.equal(
      text(answers.get('discover /0')!),
      `</>;lwm2m="1.1",</0>;ver=1.2,</0/0>,</0/1>;ssid=101;uri="${bench.serverUri}"`,
    );
    assert.equal(answers.get('delete /')!.code, '2.02');
    assert.equal(
      text(answers.get('discover after')!),
      '</>;lwm2m="1.1",</0>;ver=1.2,</0/0>,</1>;ver=1.1,</3>;ver=1.2,</3/0>,</3303>;ver=1.1',
    );
    assert.equal(answers.get('delete /0/0')!.code, '4.00');
    assert.match(text(answers.get('delete /0/0')!), /Bootstrap-Server account/);
    assert.equal(answers.get('delete /3/0')!.code, '4.00');
    assert.equal(answers.get('finish')!.code, '2.04');
    assert.equal(client.get('/0/0/0'), bs.uri);
    assert.deepEqual(client.instanceIds(3303), []);
    assert.ok(await bench.server.getRegistration('bs-delete'));
  });

  it('allows Bootstrap-Read of /1 and refuses /0 and /3 with 4.01', async function () {
    await bench.startServer();
    const answers: IncomingResponse[] = [];
    bs.script = async (peer) => {
      // Bootstrap-Write on the object (/1, SenML JSON) and on one resource (/1/4/1, text)
      const object: LwM2mNode = { kind: 'object', id: 1, instances: new Map([[4, serverInstance(4, 101, 50)]]) };
      const payload = encodeNode(object, ContentFormat.SENML_JSON, new LwM2mPath(1), model);
      const put: OutgoingRequest = {
        method: 'PUT',
        pathSegments: ['1'],
        contentFormat: ContentFormat.SENML_JSON,
        payload,
      };
      assert.equal((await bs.ask(peer, put)).code, '2.04');
      const lifetime: OutgoingRequest = {
        method: 'PUT',
        pathSegments: ['1', '4', '1'],
        contentFormat: ContentFormat.TEXT,
        payload: Buffer.from('60'),
      };
      assert.equal((await bs.ask(peer, lifetime)).code, '2.04');
      answers.push(await bs.ask(peer, { method: 'GET', pathSegments: ['1'], accept: ContentFormat.SENML_JSON }));
      answers.push(await bs.ask(peer, { method: 'GET', pathSegments: ['1', '4'] }));
      answers.push(await bs.ask(peer, { method: 'GET', pathSegments: ['3'] }));
      answers.push(await bs.ask(peer, { method: 'GET', pathSegments: ['0', '0'] }));
      await bs.ask(peer, bsWrite(securityInstance(1, bench.serverUri, 101), 0, ContentFormat.TLV));
      await bs.ask(peer, FINISH);
    };
    const client = bootstrapClient({ endpointName: 'bs-read' });
    await client.start();
    await bs.runs[0];
    const [object, inst, device, security] = answers;
    assert.equal(object.code, '2.05');
    assert.equal(object.contentFormat, ContentFormat.SENML_JSON);
    const records = JSON.parse(text(object)) as Array<{ bn?: string; n?: string; v?: number }>;
    let base = '';
    const values = new Map<string, number | undefined>();
    for (const record of records) {
      base = record.bn ?? base;
      values.set(base + (record.n ?? ''), record.v);
    }
    assert.equal(values.get('/1/4/0'), 101, 'Short Server ID');
    assert.equal(values.get('/1/4/1'), 60, 'Lifetime');
    assert.equal(inst.code, '2.05');
    const node = decodeNode(inst.payload, inst.contentFormat!, new LwM2mPath(1, 4), model) as LwM2mObjectInstance;
    assert.equal((node.resources.get(0) as { value: number }).value, 101);
    assert.equal(device.code, '4.01');
    assert.equal(security.code, '4.01');
    await waitFor(() => client.registered, 3000, 'registered');
  });

  it('refuses Bootstrap-Finish with 4.06 and the reason while the configuration is inconsistent', async function () {
    await bench.startServer();
    const finishes: IncomingResponse[] = [];
    bs.script = async (peer) => {
      finishes.push(await bs.ask(peer, FINISH)); // nothing provisioned
      await bs.ask(peer, bsWrite(securityInstance(1, bench.serverUri, 101), 0, ContentFormat.TLV));
      finishes.push(await bs.ask(peer, FINISH)); // no Server instance for ssid 101
      await bs.ask(
        peer,
        bsWrite(securityInstance(1, 'coaps://127.0.0.1:5684', 101, undefined, 2), 0, ContentFormat.TLV),
      );
      await bs.ask(peer, bsWrite(serverInstance(0, 101, 60), 1, ContentFormat.TLV));
      finishes.push(await bs.ask(peer, FINISH)); // certificate mode: not supported
      await bs.ask(peer, bsWrite(securityInstance(1, bench.serverUri, 101), 0, ContentFormat.TLV));
      finishes.push(await bs.ask(peer, FINISH));
    };
    const client = bootstrapClient({ endpointName: 'bs-finish' });
    await client.start();
    await bs.runs[0];
    assert.deepEqual(
      finishes.map((f) => f.code),
      ['4.06', '4.06', '4.06', '2.04'],
    );
    assert.equal(
      text(finishes[0]),
      'no LwM2M Server account: no Security instance with Bootstrap-Server (/0/x/1) false',
    );
    assert.equal(text(finishes[1]), 'no Server instance with Short Server ID 101 (/1/x/0) for /0/1');
    assert.equal(text(finishes[2]), '/0/1: security mode 2 (Certificate) is not supported (only 0 PSK and 3 NoSec)');
    assert.ok(await bench.server.getRegistration('bs-finish'));
  });

  it('LwM2M 1.2: takes a Bootstrap-Pack (GET /bspack, SenML CBOR) instead of /bs when the server has one', async function () {
    await bench.startServer();
    const nodes = new Map<string, LwM2mNode>([
      ['/0/5', securityInstance(5, bench.serverUri, 55)],
      ['/1/1', serverInstance(1, 55, 80)],
    ]);
    bs.pack = () => ({
      code: '2.05',
      contentFormat: ContentFormat.SENML_CBOR,
      payload: encodeNodes(nodes, ContentFormat.SENML_CBOR, model),
    });
    const client = bootstrapClient({ endpointName: 'bs-pack', lwm2mVersion: '1.2' });
    const registered = nextEvent<Registration>(bench.server, 'registered');
    await client.start();
    assert.equal((await registered).lifetime, 80);
    assert.deepEqual(
      bs.seen.map((s) => [s.method, s.path, s.query, s.accept]),
      [['GET', '/bspack', ['ep=bs-pack'], ContentFormat.SENML_CBOR]],
    );
    assert.deepEqual(client.serverAccount, { uri: bench.serverUri, securityMode: 3, shortServerId: 55 });
  });

  it('LwM2M 1.2: falls back to /bs when the server has no Bootstrap-Pack', async function () {
    await bench.startServer();
    bs.script = async (peer) => {
      await bs.ask(peer, bsWrite(securityInstance(1, bench.serverUri, 101), 0, ContentFormat.SENML_CBOR));
      await bs.ask(peer, bsWrite(serverInstance(0, 101, 60), 1, ContentFormat.SENML_CBOR));
      assert.equal((await bs.ask(peer, FINISH)).code, '2.04');
    };
    const client = bootstrapClient({ endpointName: 'bs-nopack', lwm2mVersion: '1.2' });
    await client.start();
    await bs.runs[0];
    assert.deepEqual(
      bs.seen.map((s) => [s.method, s.path, s.query]),
      [
        ['GET', '/bspack', ['ep=bs-nopack']],
        ['POST', '/bs', ['ep=bs-nopack', 'pct=110']],
      ],
    );
  });

  it('fails a bootstrap that does not finish in time, and retries with backoff', async function () {
    await bench.startServer();
    bs.script = async (peer, run) => {
      await bs.ask(peer, bsWrite(securityInstance(1, bench.serverUri, 101), 0, ContentFormat.TLV));
      if (run === 0) return; // goes silent: no Finish
      await bs.ask(peer, bsWrite(serverInstance(0, 101, 60), 1, ContentFormat.TLV));
      await bs.ask(peer, FINISH);
    };
    const client = bootstrapClient({ endpointName: 'bs-slow', bootstrapTimeoutMs: 300 });
    const failures: Error[] = [];
    client.on('bootstrapFailed', (err) => failures.push(err));
    const started = Date.now();
    await client.start();
    assert.equal(failures.length, 1);
    assert.match(failures[0].message, /did not finish within 300 ms of the last Bootstrap-Server request/);
    assert.ok(Date.now() - started >= 300);
    assert.equal(bs.seen.filter((s) => s.path === '/bs').length, 2);
    assert.equal(client.stats().bootstrapFailures, 1);
    assert.ok(await bench.server.getRegistration('bs-slow'));
  });

  it('gives up after bootstrapRetry.maxAttempts refused Bootstrap-Requests and rejects start()', async function () {
    bs.bsCode = '4.00';
    const client = bootstrapClient({
      endpointName: 'bs-refused',
      bootstrapRetry: { initialDelayMs: 20, maxDelayMs: 40, maxAttempts: 3 },
    });
    const failures: Array<Error & { code?: string }> = [];
    client.on('bootstrapFailed', (err) => failures.push(err));
    await assert.rejects(client.start(), /bootstrap failed: Bootstrap-Request refused with 4.00/);
    assert.equal(client.state, 'failed');
    assert.deepEqual(
      failures.map((f) => f.code),
      ['4.00', '4.00', '4.00'],
    );
    assert.equal(bs.seen.length, 3);
    assert.equal(client.localAddress(), undefined, 'the socket is closed');
  });

  it('falls back to bootstrap when registration fails for good (LwM2M 1.1 §6.1)', async function () {
    await bench.startServer();
    const dead = await bench.rawEndpoint(); // answers nothing useful: Register gets 4.04
    bs.script = async (peer) => {
      await bs.ask(peer, { method: 'DELETE', pathSegments: ['0'] });
      await bs.ask(peer, bsWrite(securityInstance(1, bench.serverUri, 101), 0, ContentFormat.TLV));
      await bs.ask(peer, bsWrite(serverInstance(0, 101, 60), 1, ContentFormat.TLV));
      await bs.ask(peer, FINISH);
    };
    dead.setRequestHandler(() => ({ code: '4.03' }));
    const client = bench.client({
      endpointName: 'bs-fallback',
      serverUri: `coap://127.0.0.1:${dead.localAddress()!.port}`,
      bootstrapUri: bs.uri,
      registerRetry: { initialDelayMs: 20, maxDelayMs: 40, maxAttempts: 2 },
    });
    const failures: Error[] = [];
    client.on('registrationFailed', (err) => failures.push(err));
    const bootstrapping = nextEvent<{ reason: string }>(client, 'bootstrapping');
    await client.start();
    assert.match((await bootstrapping).reason, /registration failed: Register refused with 4.03/);
    assert.equal(failures.length, 2);
    assert.deepEqual(client.serverAccount, { uri: bench.serverUri, securityMode: 3, shortServerId: 101 });
    assert.ok(await bench.server.getRegistration('bs-fallback'));
  });

  it('falls back to bootstrap when the DTLS handshake with its server fails, and gets the right key', async function () {
    await bench.startServer({ dtls: { port: 0 } });
    const key = Buffer.from('the-right-key-123');
    await bench.server.securityStore.add({ endpoint: 'bs-rekey', mode: 'psk', identity: 'bs-rekey', key });
    const uri = `coaps://127.0.0.1:${bench.server.secureAddress!.port}`;
    bs.script = async (peer) => {
      await bs.ask(peer, bsWrite(securityInstance(1, uri, 101, { identity: 'bs-rekey', key }), 0, ContentFormat.TLV));
      await bs.ask(peer, bsWrite(serverInstance(0, 101, 60), 1, ContentFormat.TLV));
      await bs.ask(peer, FINISH);
    };
    const client = bench.client({
      endpointName: 'bs-rekey',
      serverUri: uri,
      psk: { identity: 'bs-rekey', key: Buffer.from('a-wrong-key-12345') },
      bootstrapUri: bs.uri,
      registerRetry: { initialDelayMs: 20, maxDelayMs: 40, maxAttempts: 1 },
    });
    const failed = nextEvent<Error>(client, 'registrationFailed', 15000);
    await client.start();
    assert.match((await failed).message, /DTLS|handshake|alert/i);
    assert.equal(client.stats().bootstraps, 1);
    assert.deepEqual((await bench.server.getRegistration('bs-rekey'))?.security, { mode: 'psk', identity: 'bs-rekey' });
  });

  it('bootstrap() de-registers, bootstraps again and registers with the new account', async function () {
    await bench.startServer();
    bs.script = async (peer) => {
      await bs.ask(peer, { method: 'DELETE', pathSegments: [] });
      await bs.ask(peer, bsWrite(securityInstance(1, bench.serverUri, 102), 0, ContentFormat.TLV));
      await bs.ask(peer, bsWrite(serverInstance(0, 102, 77), 1, ContentFormat.TLV));
      await bs.ask(peer, FINISH);
    };
    const client = await bench.registered({ endpointName: 'bs-again', bootstrapUri: bs.uri });
    assert.deepEqual(client.serverAccount, { uri: bench.serverUri, securityMode: 3, shortServerId: 1 });
    const gone = nextEvent(bench.server, 'deregistered');
    const registered = nextEvent<Registration>(bench.server, 'registered');
    await client.bootstrap();
    await gone;
    assert.equal((await registered).lifetime, 77);
    assert.equal(client.serverAccount.shortServerId, 102);
  });

  it('sends the Bootstrap-Request as a CON POST with Uri-Path "bs" and Uri-Query ep, pct (on the wire)', async function () {
    const socket = dgram.createSocket('udp4');
    bench.onClose(() => new Promise<void>((resolve) => socket.close(() => resolve())));
    socket.bind(0, '127.0.0.1');
    await once(socket, 'listening');
    const client = bench.client({
      endpointName: 'bs-wire',
      serverUri: undefined,
      bootstrapUri: `coap://127.0.0.1:${socket.address().port}`,
      contentFormats: [ContentFormat.SENML_CBOR, ContentFormat.TLV],
      coap: { ...FAST_COAP },
    });
    const received = once(socket, 'message') as Promise<[Buffer, dgram.RemoteInfo]>;
    client.start().catch(() => undefined);
    const [datagram, from] = await received;
    const packet = parse(datagram);
    assert.equal(packet.code, '0.02');
    assert.equal(packet.confirmable, true);
    assert.deepEqual(
      packet.options.map((o) => [o.name, o.value.toString()]),
      [
        ['Uri-Path', 'bs'],
        ['Uri-Query', 'ep=bs-wire'],
        ['Uri-Query', 'pct=112'],
      ],
    );
    assert.equal(packet.payload.length, 0);
    // a 4.03 piggybacked on the ACK: the device reports the refusal
    const failed = nextEvent<Error>(client, 'bootstrapFailed');
    const ack = generate({ messageId: packet.messageId, token: packet.token, ack: true, code: '4.03', options: [] });
    socket.send(ack, from.port, from.address);
    assert.match((await failed).message, /Bootstrap-Request refused with 4.03/);
  });

  it('lwm2m-sim: a fleet started with --bootstrap and no --server bootstraps every device', async function () {
    await bench.startServer();
    bs.script = async (peer) => {
      await bs.ask(peer, bsWrite(securityInstance(1, bench.serverUri, 101), 0, ContentFormat.TLV));
      await bs.ask(peer, bsWrite(serverInstance(0, 101, 60), 1, ContentFormat.TLV));
      await bs.ask(peer, FINISH);
    };
    const options = parseCommandLine(['--bootstrap', bs.uri, '--count', '3', '--prefix', 'bs-fleet-', '--quiet'])!;
    const fleet = await startFleet({
      ...options.fleet,
      bindAddresses: '127.0.0.1',
      coap: FAST_COAP,
      client: () => ({ bootstrapRetry: { initialDelayMs: 50, maxDelayMs: 100 } }),
    });
    bench.onClose(async () => void (await fleet.stop({ timeoutMs: 1000 })));
    const stats = await fleet.whenRegistered({ timeoutMs: 5000 });
    assert.equal(stats.bootstraps, 3);
    assert.deepEqual(bs.seen.map((s) => s.query[0]).sort(), ['ep=bs-fleet-1', 'ep=bs-fleet-2', 'ep=bs-fleet-3']);
    for (const name of ['bs-fleet-1', 'bs-fleet-2', 'bs-fleet-3']) assert.ok(await bench.server.getRegistration(name));
    assert.match(progressLine(fleet.stats(), 0), /bootstraps 3/);
  });

  it('lwm2m-sim: --bootstrap and --bootstrap-psk', function () {
    const plain = parseCommandLine(['--bootstrap', 'coap://127.0.0.1:5685'])!;
    assert.equal(plain.fleet.bootstrapUri, 'coap://127.0.0.1:5685');
    assert.equal(plain.fleet.serverUri, '');
    const secure = parseCommandLine(['--bootstrap', 'coaps://bs.example:5686', '--bootstrap-psk', 'dev-1:00112233'])!;
    assert.deepEqual(secure.fleet.bootstrapPsk, { identity: 'dev-1', key: Buffer.from('00112233', 'hex') });
    assert.throws(() => parseCommandLine(['--bootstrap', 'coap://h', '--bootstrap-psk', 'a:0011223344']), /coaps/);
    assert.throws(() => parseCommandLine(['--bootstrap-psk', '0011223344']), /--bootstrap/);
    assert.throws(() => parseCommandLine(['--bootstrap', 'http://h']), /coap/);
    assert.match(USAGE, /--bootstrap <uri>/);
    assert.match(USAGE, /--bootstrap-psk <id:hexkey>/);
  });

  it('rejects a coaps:// bootstrap URI without a PSK', function () {
    assert.throws(
      () => new Lwm2mClient({ endpointName: 'x', bootstrapUri: 'coaps://127.0.0.1:5686' }),
      /coaps:\/\/ needs bootstrapPsk/,
    );
  });
});
