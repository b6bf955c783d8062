import { strict as assert } from 'node:assert';
import http from 'node:http';
import { Lwm2mClient } from '../../lib/client';
import { startNodeRed, waitFor } from './node-red-process';
import type { NodeRedProcess, NodeRedSettings } from './node-red-process';

/**
 * The device browser's routes used cross-site, in a real Node-RED (its form parser included, and in Node-RED 4
 * its `cors({origin:'*'})`): what a web page could make a visitor's browser send is refused, the editor's own
 * calls work.
 */

interface RawAnswer {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: { error?: string; code?: string; [key: string]: unknown } | undefined;
}

/** An HTTP request with exactly these headers (fetch would not let a test set Origin and Referer freely). */
function raw(
  red: NodeRedProcess,
  method: string,
  path: string,
  headers: Record<string, string> = {},
  body?: string,
): Promise<RawAnswer> {
  const url = new URL(red.url + path);
  return new Promise((resolve, reject) => {
    const request = http.request(
      {
        host: url.hostname,
        port: url.port,
        method,
        path: url.pathname + url.search,
        headers: { ...headers, ...(body !== undefined ? { 'Content-Length': Buffer.byteLength(body) } : {}) },
      },
      (response) => {
        let text = '';
        response.setEncoding('utf8');
        response.on('data', (chunk) => (text += chunk));
        response.on('end', () => {
          let parsed: RawAnswer['body'];
          try {
            parsed = text ? JSON.parse(text) : undefined;
          } catch {
            parsed = { text };
          }
          resolve({ status: response.statusCode ?? 0, headers: response.headers, body: parsed });
        });
      },
    );
    request.on('error', reject);
    request.end(body);
  });
}

const flows = [
  { id: 'f1', type: 'tab', label: 'cross-site' },
  { id: 'srv', type: 'lwm2m-server', address: '127.0.0.1', port: '0', dtlsEnabled: false },
  { id: 'reg', type: 'lwm2m-register-in', z: 'f1', server: 'srv', x: 120, y: 80, wires: [[]] },
];

/**
 * Node-RED 4 puts `cors({origin:'*'})` in front of every admin route; Node-RED 5 dropped that default (only the
 * user's httpAdminCors adds CORS headers).
 */
const nodeRedAllowsAnyOrigin =
  Number((require('node-red/package.json') as { version: string }).version.split('.')[0]) < 5;

const WRITE = '/lwm2m/servers/srv/devices/xs-dev/write';
const EVIL = 'http://evil.example';

/** A Node-RED with the given settings and one registered device; stopped after the suite. */
function withNodeRed(
  settings: NodeRedSettings,
  authorization: (red: NodeRedProcess) => Promise<Record<string, string>> = async () => ({}),
) {
  const context: { red?: NodeRedProcess; device?: Lwm2mClient; auth: Record<string, string> } = { auth: {} };
  before(async function () {
    context.red = await startNodeRed(flows, 30000, settings);
    context.auth = await authorization(context.red);
    const red = context.red;
    const port = await waitFor('the LwM2M server listening', async () => {
      const answer = await raw(red, 'GET', '/lwm2m/servers', context.auth);
      const servers = (answer.body as { servers?: { id: string; port?: number }[] } | undefined)?.servers;
      return servers?.find((server) => server.id === 'srv')?.port;
    });
    context.device = new Lwm2mClient({
      endpointName: 'xs-dev',
      serverUri: `coap://127.0.0.1:${port}`,
      lifetime: 60,
      objects: [3303],
    });
    await context.device.start();
  });
  after(async function () {
    await context.device?.stop({ timeoutMs: 500 }).catch(() => undefined);
    await context.red?.stop();
  });
  return context;
}

describe('device browser routes used cross-site, without adminAuth (real Node-RED process)', function () {
  this.timeout(40000);
  const context = withNodeRed({ adminAuth: false });
  /** The Origin the editor's own page sends: the host the request goes to. */
  const own = () => new URL(context.red!.url).origin;
  const postJson = (path: string, value: unknown, headers: Record<string, string> = {}) =>
    raw(context.red!, 'POST', path, { 'Content-Type': 'application/json', ...headers }, JSON.stringify(value));

  it('refuses a form post (415) and a text/plain one, with or without Origin: the device is not written', async function () {
    const device = context.device!;
    const before = device.get('/3/0/14');
    const writes: unknown[] = [];
    device.on('write', (write) => writes.push(write));
    const form = 'path=%2F3%2F0%2F14&value=%2B09%3A00';
    for (const headers of [
      { 'Content-Type': 'application/x-www-form-urlencoded' }, // an old browser, or a page with no-referrer
      { 'Content-Type': 'application/x-www-form-urlencoded', Origin: EVIL },
      { 'Content-Type': 'multipart/form-data; boundary=x', Origin: own() },
      { 'Content-Type': 'text/plain', Origin: EVIL },
    ] as Record<string, string>[]) {
      const answer = await raw(context.red!, 'POST', WRITE, headers, form);
      assert.equal(answer.status, 415, JSON.stringify(headers));
      assert.equal(answer.body?.code, 'unsupported-media-type');
      assert.match(answer.body?.error ?? '', /application\/json only/);
      assert.equal(answer.headers['access-control-allow-origin'], undefined);
    }
    // Not even the watch route takes a body-less form post.
    assert.equal((await raw(context.red!, 'POST', '/lwm2m/servers/srv/devices/xs-dev/watch', {})).status, 415);
    // A read after the refusals: had a write gone out, the device would have it by now.
    const read = await postJson('/lwm2m/servers/srv/devices/xs-dev/read', { path: '/3/0/14' });
    assert.equal(read.status, 200);
    assert.deepEqual(writes, []);
    assert.equal(device.get('/3/0/14'), before);
  });

  it('refuses JSON from a foreign Origin or Referer, or Origin null (403, a JSON reason); nothing is written', async function () {
    const device = context.device!;
    const before = device.get('/3/0/14');
    const body = { path: '/3/0/14', value: '+09:00' };
    for (const headers of [
      { Origin: EVIL },
      { Origin: 'null' }, // a sandboxed frame or a data: page
      { Referer: `${EVIL}/page.html` },
      { Origin: `http://localhost:${new URL(own()).port}` }, // another name for the host is another origin
      { Origin: own().replace(/:\d+$/, ':1') }, // another port of the same host
    ] as Record<string, string>[]) {
      const answer = await postJson(WRITE, body, headers);
      assert.equal(answer.status, 403, JSON.stringify(headers));
      assert.equal(answer.body?.code, 'cross-site');
      assert.match(answer.body?.error ?? '', /^cross-site request refused: (Origin|Referer) .+ is not this editor/);
      assert.equal(answer.headers['access-control-allow-origin'], undefined);
    }
    // The preflight is Node-RED's (Node-RED 4 allows any origin), but what follows it is refused as above.
    assert.equal(device.get('/3/0/14'), before);
  });

  it("takes JSON from the editor's own page (Origin or Referer of this host), and from scripts that send neither", async function () {
    const device = context.device!;
    for (const [headers, value] of [
      [{ Origin: own() }, '+01:00'],
      [{ Referer: `${own()}/#flow/f1` }, '+02:00'],
      [{}, '+03:00'],
    ] as [Record<string, string>, string][]) {
      const answer = await postJson(WRITE, { path: '/3/0/14', value }, headers);
      assert.equal(answer.status, 200, `${JSON.stringify(headers)}: ${JSON.stringify(answer.body)}`);
      assert.equal(device.get('/3/0/14'), value);
    }
    const watched = await postJson(
      '/lwm2m/servers/srv/devices/xs-dev/watch',
      {},
      { 'Content-Type': 'application/json; charset=utf-8', Origin: own() },
    );
    assert.equal(watched.status, 200);
    assert.equal((await raw(context.red!, 'DELETE', '/lwm2m/servers/srv/devices/xs-dev/watch', {})).status, 200);
  });

  it('does not let another site read the fleet: 403 to a foreign Origin, and no Access-Control-Allow-Origin: *', async function () {
    const foreign = await raw(context.red!, 'GET', '/lwm2m/servers/srv/devices', { Origin: EVIL });
    assert.equal(foreign.status, 403);
    assert.equal(foreign.headers['access-control-allow-origin'], undefined);
    const details = await raw(context.red!, 'GET', '/lwm2m/servers/srv/devices/xs-dev', { Origin: EVIL });
    assert.equal(details.status, 403);
    assert.deepEqual(Object.keys(details.body ?? {}).sort(), ['code', 'error'], 'nothing about the device');

    const ownRead = await raw(context.red!, 'GET', '/lwm2m/servers/srv/devices', { Referer: `${own()}/` });
    assert.equal(ownRead.status, 200);
    assert.deepEqual(
      (ownRead.body as { devices: { endpoint: string }[] }).devices.map((device) => device.endpoint),
      ['xs-dev'],
    );
    assert.equal(ownRead.headers['access-control-allow-origin'], undefined);
    // Node-RED's own routes are Node-RED's business: left as they are (`*` from Node-RED 4, none from 5).
    const settings = await raw(context.red!, 'GET', '/settings', { Origin: EVIL });
    assert.equal(settings.status, 200);
    assert.equal(settings.headers['access-control-allow-origin'], nodeRedAllowsAnyOrigin ? '*' : undefined);
  });
});

describe('device browser routes with adminAuth and an httpAdminCors of the user (real Node-RED process)', function () {
  this.timeout(40000);
  const DASHBOARD = 'https://dashboard.example';
  const context = withNodeRed({ httpAdminCors: { origin: [DASHBOARD], methods: 'GET,POST' } }, async (red) => ({
    Authorization: `Bearer ${await red.token('admin')}`,
  }));
  const write = (value: string, headers: Record<string, string>) =>
    raw(
      context.red!,
      'POST',
      WRITE,
      { 'Content-Type': 'application/json', ...context.auth, ...headers },
      JSON.stringify({ path: '/3/0/14', value }),
    );

  it("works with a token from the editor's own page and from an origin httpAdminCors allows, whose CORS header stands", async function () {
    const own = new URL(context.red!.url).origin;
    assert.equal((await write('+05:00', { Origin: own })).status, 200);
    assert.equal(context.device!.get('/3/0/14'), '+05:00');
    const fromDashboard = await write('+06:00', { Origin: DASHBOARD });
    assert.equal(fromDashboard.status, 200);
    assert.equal(context.device!.get('/3/0/14'), '+06:00');
    assert.equal(fromDashboard.headers['access-control-allow-origin'], DASHBOARD);
  });

  it('refuses, even with a token, an origin httpAdminCors does not list, and form posts', async function () {
    const refused = await write('+07:00', { Origin: EVIL });
    assert.equal(refused.status, 403);
    assert.equal(refused.body?.code, 'cross-site');
    const form = await raw(
      context.red!,
      'POST',
      WRITE,
      { 'Content-Type': 'application/x-www-form-urlencoded', Origin: DASHBOARD, ...context.auth },
      'path=%2F3%2F0%2F14&value=%2B07%3A00',
    );
    assert.equal(form.status, 415);
    assert.notEqual(context.device!.get('/3/0/14'), '+07:00');
    // Without a token: refused by adminAuth as before.
    assert.equal(
      (await raw(context.red!, 'GET', '/lwm2m/servers', { Origin: new URL(context.red!.url).origin })).status,
      401,
    );
  });
});
