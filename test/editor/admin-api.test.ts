import { strict as assert } from 'node:assert';
import { Lwm2mClient, startFleet } from '../../lib/client';
import type { Lwm2mServerConfigNode } from '../../nodes/shared/server-config';
import { resetHosts } from '../../nodes/shared/server-host';
import { resetBootstrapHosts } from '../../nodes/shared/bootstrap-host';
import { BROWSER_OWNER, resetDeviceBrowser } from '../../nodes/shared/admin-api';
import { delay, helper } from '../nodes/helper';

/** Node-RED's runtime event bus: RED.comms.publish goes through it as 'comms' events. */
const runtimeEvents = require('@node-red/util').events as {
  on(event: string, listener: (message: { topic: string; data: unknown }) => void): void;
  off(event: string, listener: (message: { topic: string; data: unknown }) => void): void;
};

const nodeModules = [
  require('../../nodes/plugins/lwm2m-device-browser'),
  require('../../nodes/lwm2m-server'),
  require('../../nodes/lwm2m-register-in'),
  require('../../nodes/lwm2m-bootstrap'),
  require('../../nodes/lwm2m-bootstrap-in'),
];

const flow = [
  { id: 'f1', type: 'tab', label: 'browser' },
  {
    id: 'srv',
    type: 'lwm2m-server',
    name: 'fleet',
    address: '127.0.0.1',
    port: '0',
    ackTimeout: '300',
    maxRetransmit: '1',
  },
  { id: 'reg', type: 'lwm2m-register-in', z: 'f1', server: 'srv', wires: [[]] },
  { id: 'bs', type: 'lwm2m-bootstrap', address: '127.0.0.1', port: '0' },
  { id: 'bsin', type: 'lwm2m-bootstrap-in', z: 'f1', bootstrap: 'bs', wires: [[]] },
];

interface Published {
  topic: string;
  data: Record<string, unknown>;
}

describe('device browser admin API (through node-red-node-test-helper)', function () {
  this.timeout(20000);
  const devices: Lwm2mClient[] = [];
  let published: Published[] = [];
  const onComms = (message: { topic: string; data: unknown }) => {
    if (message.topic.startsWith('lwm2m/')) published.push(message as Published);
  };

  before(() => runtimeEvents.on('comms', onComms));
  after(() => runtimeEvents.off('comms', onComms));

  beforeEach(async function () {
    published = [];
    await helper.load(nodeModules, flow);
  });

  afterEach(async function () {
    await Promise.all(devices.splice(0).map((device) => device.stop({ timeoutMs: 500 }).catch(() => undefined)));
    await helper.unload();
    resetDeviceBrowser();
    await resetHosts();
    await resetBootstrapHosts();
  });

  async function serverPort(): Promise<number> {
    const config = helper.getNode('srv') as unknown as Lwm2mServerConfigNode;
    await config.ready();
    return config.server.address!.port;
  }

  async function startDevice(endpointName: string, objects: (number | string)[] = [3303]): Promise<Lwm2mClient> {
    const device = new Lwm2mClient({
      endpointName,
      serverUri: `coap://127.0.0.1:${await serverPort()}`,
      lwm2mVersion: '1.1',
      lifetime: 60,
      objects,
    });
    devices.push(device);
    await device.start();
    return device;
  }

  async function waitFor<T>(what: string, probe: () => T | undefined, timeoutMs = 5000): Promise<T> {
    const until = Date.now() + timeoutMs;
    for (;;) {
      const found = probe();
      if (found !== undefined && found !== false) return found;
      if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
      await delay(25);
    }
  }

  const api = () => helper.request();

  it('lists the servers of the running flows, with their ports and counts', async function () {
    const port = await serverPort();
    await startDevice('dev-a');
    const response = await api().get('/lwm2m/servers').expect(200);
    const servers = response.body.servers as Record<string, unknown>[];
    const server = servers.find((item) => item.id === 'srv')!;
    assert.equal(server.kind, 'server');
    assert.equal(server.name, 'fleet');
    assert.equal(server.running, true);
    assert.equal(server.port, port);
    assert.deepEqual(server.counts, { total: 1, awake: 0, sleeping: 0, secured: 0 });
    const bootstrap = servers.find((item) => item.id === 'bs')!;
    assert.equal(bootstrap.kind, 'bootstrap');
    await (helper.getNode('bs') as unknown as { ready(): Promise<void> }).ready();
    const detail = await api().get('/lwm2m/bootstrap/bs').expect(200);
    assert.equal(detail.body.running, true);
    assert.deepEqual(detail.body.active, []);
    await api().get('/lwm2m/bootstrap/nope').expect(404);
  });

  it('lists devices a page at a time, searched and filtered on the server', async function () {
    await Promise.all(['sensor-1', 'sensor-2', 'valve-1'].map((name) => startDevice(name)));
    const all = await api().get('/lwm2m/servers/srv/devices').expect(200);
    assert.equal(all.body.matched, 3);
    assert.deepEqual(
      all.body.devices.map((device: { endpoint: string }) => device.endpoint),
      ['sensor-1', 'sensor-2', 'valve-1'],
    );
    const device = all.body.devices[0];
    assert.equal(device.address, '127.0.0.1');
    assert.equal(device.lwm2mVersion, '1.1');
    assert.equal(device.binding, 'U');
    assert.equal(device.lifetime, 60);
    assert.equal(device.state, 'online');
    assert.equal(device.secured, false);
    assert.ok(Date.now() - device.lastSeenAt < 10000);

    const searched = await api().get('/lwm2m/servers/srv/devices?q=SENSOR').expect(200);
    assert.equal(searched.body.matched, 2);
    assert.equal(searched.body.counts.total, 3);
    const page = await api().get('/lwm2m/servers/srv/devices?offset=1&limit=1').expect(200);
    assert.deepEqual(
      page.body.devices.map((item: { endpoint: string }) => item.endpoint),
      ['sensor-2'],
    );
    const secured = await api().get('/lwm2m/servers/srv/devices?filter=secured').expect(200);
    assert.equal(secured.body.matched, 0);
    const unknown = await api().get('/lwm2m/servers/nope/devices').expect(404);
    assert.equal(unknown.body.code, 'no-server');
  });

  it('gives a device its object tree with names, units and types from the object model, and its log', async function () {
    await startDevice('dev-tree');
    const response = await api().get('/lwm2m/servers/srv/devices/dev-tree').expect(200);
    const objects = response.body.objects as {
      id: number;
      name: string;
      instances: number[];
      resources: { id: number; name: string; type: string; units?: string; operations: string }[];
    }[];
    const deviceObject = objects.find((object) => object.id === 3)!;
    assert.equal(deviceObject.name, 'Device');
    assert.deepEqual(deviceObject.instances, [0]);
    assert.equal(deviceObject.resources.find((resource) => resource.id === 0)!.name, 'Manufacturer');
    assert.equal(deviceObject.resources.find((resource) => resource.id === 4)!.operations, 'E');
    const temperature = objects.find((object) => object.id === 3303)!;
    const sensorValue = temperature.resources.find((resource) => resource.id === 5700)!;
    assert.equal(sensorValue.type, 'float');
    assert.equal(sensorValue.name, 'Sensor Value');
    const lifetime = objects.find((object) => object.id === 1)!.resources.find((resource) => resource.id === 1)!;
    assert.equal(lifetime.units, 's');
    assert.equal(response.body.device.endpoint, 'dev-tree');
    assert.match(response.body.log[0].text, /^registered from 127\.0\.0\.1:\d+: LwM2M 1\.1/);
    const missing = await api().get('/lwm2m/servers/srv/devices/nobody').expect(404);
    assert.deepEqual(missing.body, { error: 'nobody is not registered', code: 'not-registered' });
  });

  it("logs a flow's requests to a device the editor has open, once; nothing while no device is open", async function () {
    await startDevice('dev-flow');
    const config = helper.getNode('srv') as unknown as Lwm2mServerConfigNode;
    await config.server.read('dev-flow', '/3/0/0');
    assert.equal(config.server.listenerCount('exchange'), 0, 'no cost on the request path while nothing is open');
    await api().post('/lwm2m/servers/srv/devices/dev-flow/watch').send({}).expect(200);
    await config.server.read('dev-flow', '/3/0/1');
    await api().post('/lwm2m/servers/srv/devices/dev-flow/read').send({ path: '/3/0/2' }).expect(200);
    const log = (await api().get('/lwm2m/servers/srv/devices/dev-flow').expect(200)).body.log as { text: string }[];
    const texts = log.map((entry) => entry.text);
    assert.ok(texts.includes('GET /3/0/1 → 2.05 (from a flow)'), texts.join('\n'));
    assert.equal(texts.filter((text) => text.includes('/3/0/2')).length, 1, 'the editor read is logged once');
    assert.ok(!texts.some((text) => text.includes('/3/0/0')), 'nothing before the device was open');
    await api().delete('/lwm2m/servers/srv/devices/dev-flow/watch').expect(200);
    assert.equal(config.server.listenerCount('exchange'), 0);
  });

  it('reads, writes, executes, discovers, creates and deletes; device errors come back as JSON with the CoAP code', async function () {
    const device = await startDevice('dev-ops');
    const read = await api().post('/lwm2m/servers/srv/devices/dev-ops/read').send({ path: '/3/0' }).expect(200);
    assert.equal(read.body.code, '2.05');
    assert.equal(typeof read.body.at, 'number');
    assert.equal(read.body.values['/3/0/0'].text, device.get('/3/0/0'));
    assert.equal(read.body.values['/3/0/13'].type, 'time');
    assert.match(read.body.values['/3/0/13'].text, /^\d{4}-\d\d-\d\dT/);

    await api().post('/lwm2m/servers/srv/devices/dev-ops/write').send({ path: '/3/0/14', value: '+02:00' }).expect(200);
    assert.equal(device.get('/3/0/14'), '+02:00');
    await api().post('/lwm2m/servers/srv/devices/dev-ops/write').send({ path: '/1/0/1', value: '120' }).expect(200);
    assert.equal(device.get('/1/0/1'), 120);
    const badValue = await api()
      .post('/lwm2m/servers/srv/devices/dev-ops/write')
      .send({ path: '/1/0/1', value: 'soon' })
      .expect(400);
    assert.equal(badValue.body.code, 'bad-request');
    assert.match(badValue.body.error, /expects an integer/);

    const executed = new Promise<{ path: string }>((resolve) => device.once('execute', resolve));
    await api().post('/lwm2m/servers/srv/devices/dev-ops/execute').send({ path: '/3/0/12', args: '' }).expect(200);
    assert.equal((await executed).path, '/3/0/12');

    const discovered = await api()
      .post('/lwm2m/servers/srv/devices/dev-ops/discover')
      .send({ path: '/3303' })
      .expect(200);
    assert.ok(discovered.body.links.some((link: { uri: string }) => link.uri === '/3303/0/5700'));

    const created = await api()
      .post('/lwm2m/servers/srv/devices/dev-ops/create')
      .send({ path: '/3303', instanceId: 7, value: { 5750: 'cellar' } })
      .expect(200);
    assert.equal(created.body.code, '2.01');
    assert.equal(device.get('/3303/7/5750'), 'cellar');
    await api().post('/lwm2m/servers/srv/devices/dev-ops/delete').send({ path: '/3303/7' }).expect(200);
    assert.equal(device.get('/3303/7/5750'), undefined);

    const notFound = await api().post('/lwm2m/servers/srv/devices/dev-ops/read').send({ path: '/3303/9' }).expect(502);
    assert.equal(notFound.body.code, '4.04');
    const badPath = await api().post('/lwm2m/servers/srv/devices/dev-ops/read').send({ path: '/x/y' }).expect(400);
    assert.equal(badPath.body.code, 'bad-request');
    const gone = await api().post('/lwm2m/servers/srv/devices/nobody/read').send({ path: '/3/0' }).expect(404);
    assert.equal(gone.body.code, 'not-registered');

    // Every exchange is in the device's log, failures too.
    const detail = await api().get('/lwm2m/servers/srv/devices/dev-ops').expect(200);
    const exchanges = (detail.body.log as { kind: string; text: string; error?: boolean }[]).filter(
      (entry) => entry.kind === 'exchange',
    );
    assert.ok(exchanges.some((entry) => /^Read \/3\/0 → 2\.05/.test(entry.text)));
    assert.ok(exchanges.some((entry) => entry.error && /^Read \/3303\/9 failed/.test(entry.text)));
  });

  it("acts only for the editor's own page: form posts 415, a foreign Origin 403, the same origin's JSON works", async function () {
    const device = await startDevice('dev-csrf');
    const before = device.get('/3/0/14');
    const write = '/lwm2m/servers/srv/devices/dev-csrf/write';
    // What any web page can make a browser send without a preflight: a form post.
    const form = await api().post(write).type('form').send({ path: '/3/0/14', value: '+09:00' }).expect(415);
    assert.equal(form.body.code, 'unsupported-media-type');
    const foreign = await api()
      .post(write)
      .set('Host', 'editor.local:1880')
      .set('Origin', 'http://evil.example')
      .send({ path: '/3/0/14', value: '+09:00' })
      .expect(403);
    assert.equal(foreign.body.code, 'cross-site');
    assert.equal(device.get('/3/0/14'), before, 'nothing written');
    await api()
      .post(write)
      .set('Host', 'editor.local:1880')
      .set('Origin', 'http://editor.local:1880')
      .send({ path: '/3/0/14', value: '+09:00' })
      .expect(200);
    assert.equal(device.get('/3/0/14'), '+09:00');
  });

  it('a value over the write size limit: 413 with its size and the limit, nothing written', async function () {
    const device = await startDevice('dev-big');
    const before = device.get('/3/0/14');
    const tooBig = await api()
      .post('/lwm2m/servers/srv/devices/dev-big/write')
      .send({ path: '/3/0/14', value: 'x'.repeat(1024 * 1024 + 1) })
      .expect(413);
    assert.equal(tooBig.body.code, 'too-large');
    assert.match(tooBig.body.error, /over the write size limit of 1048576 bytes; nothing was sent$/);
    assert.equal(device.get('/3/0/14'), before);
  });

  it('observes for the editor: notifications go to the device topic while it is watched; cancel lets go', async function () {
    const device = await startDevice('dev-obs');
    await api().post('/lwm2m/servers/srv/devices/dev-obs/watch').send({}).expect(200);
    const observed = await api()
      .post('/lwm2m/servers/srv/devices/dev-obs/observe')
      .send({ path: '/3303/0/5700' })
      .expect(200);
    assert.equal(observed.body.code, '2.05');
    const server = (helper.getNode('srv') as unknown as Lwm2mServerConfigNode).server;
    const [observation] = await server.listObservations('dev-obs');
    assert.deepEqual(observation.owners, [BROWSER_OWNER]);

    device.set('/3303/0/5700', 31.5);
    const message = await waitFor('a notification on the device topic', () =>
      published.find(
        (item) =>
          item.topic === 'lwm2m/device/srv/dev-obs' &&
          (item.data.entries as { kind: string }[]).some((entry) => entry.kind === 'notification'),
      ),
    );
    const entry = (message.data.entries as { kind: string; values: Record<string, { text: string }> }[]).find(
      (item) => item.kind === 'notification',
    )!;
    assert.equal(entry.values['/3303/0/5700'].text, '31.5');

    const cancelled = await api()
      .post('/lwm2m/servers/srv/devices/dev-obs/cancel-observation')
      .send({ path: '/3303/0/5700' })
      .expect(200);
    assert.equal(cancelled.body.cancelled, true);
    assert.deepEqual(await server.listObservations('dev-obs'), []);

    // No longer watched: nothing more is published for the device.
    await api().delete('/lwm2m/servers/srv/devices/dev-obs/watch').expect(200);
    published = [];
    await api().post('/lwm2m/servers/srv/devices/dev-obs/read').send({ path: '/3303/0/5700' }).expect(200);
    await delay(700);
    assert.equal(published.filter((item) => item.topic.startsWith('lwm2m/device/')).length, 0);
  });

  it('coalesces fleet changes into one counts message per half second while the list is watched', async function () {
    await serverPort();
    // No watch yet: registrations publish nothing.
    await startDevice('quiet-1');
    await delay(700);
    assert.equal(published.filter((item) => item.topic === 'lwm2m/fleet/srv').length, 0);

    await api().get('/lwm2m/servers/srv/devices').expect(200); // the list is on screen: watched
    await Promise.all(['burst-1', 'burst-2', 'burst-3', 'burst-4', 'burst-5'].map((name) => startDevice(name)));
    const message = await waitFor('a fleet message with every device', () =>
      published.find((item) => item.topic === 'lwm2m/fleet/srv' && (item.data.counts as { total: number }).total === 6),
    );
    assert.equal((message.data as { serverId: string }).serverId, 'srv');
    // Five registrations, one or two messages (they may straddle a flush), never one each.
    assert.ok(published.filter((item) => item.topic === 'lwm2m/fleet/srv').length <= 2);
  });

  it('keeps a fleet of 300 registering at once down to a few small messages and pages of the list', async function () {
    const port = await serverPort();
    await api().get('/lwm2m/servers/srv/devices').expect(200);
    const started = Date.now();
    const fleet = await startFleet({
      serverUri: `coap://127.0.0.1:${port}`,
      count: 300,
      prefix: 'fleet-',
      objects: [3303],
      lifetime: 120,
      registrationRate: 5000,
    });
    try {
      await fleet.whenRegistered();
      const last = await waitFor('the count of 300', () =>
        published.find(
          (item) => item.topic === 'lwm2m/fleet/srv' && (item.data.counts as { total: number }).total === 300,
        ),
      );
      const elapsed = Date.now() - started;
      const messages = published.filter((item) => item.topic === 'lwm2m/fleet/srv');
      // One message per flush at most, whatever the number of registrations.
      assert.ok(messages.length <= Math.ceil(elapsed / 500) + 1, `${messages.length} messages in ${elapsed} ms`);
      assert.ok(JSON.stringify(last.data).length < 300, 'counts, not devices');
      const page = await api().get('/lwm2m/servers/srv/devices?q=fleet-&limit=50').expect(200);
      assert.equal(page.body.matched, 300);
      assert.equal(page.body.devices.length, 50);
      assert.equal(page.body.devices[0].endpoint, 'fleet-1');
    } finally {
      await fleet.stop();
    }
  });

  it('mounts its routes once per admin app however often the module is loaded', async function () {
    const app = (helper as unknown as { _httpAdmin: { _router: { stack: { route?: { path: string } }[] } } })
      ._httpAdmin;
    const routes = () => app._router.stack.filter((layer) => layer.route?.path === '/lwm2m/servers').length;
    assert.equal(routes(), 1);
    // A second load of the plugin module with the same admin app adds nothing.
    const plugin = require('../../nodes/plugins/lwm2m-device-browser') as (red: unknown) => void;
    plugin({
      httpAdmin: app,
      plugins: { registerPlugin: () => undefined },
      auth: { needsPermission: () => (_req: unknown, _res: unknown, next: () => void) => next() },
      comms: { publish: () => undefined },
      events: { on: () => undefined },
      nodes: { eachNode: () => undefined, getNode: () => null },
      log: { warn: () => undefined },
    });
    assert.equal(routes(), 1);
  });
});
