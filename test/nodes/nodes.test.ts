import { strict as assert } from 'node:assert';
import dgram from 'node:dgram';
import type { Lwm2mServerConfigNode } from '../../nodes/shared/server-config';
import { resetHosts } from '../../nodes/shared/server-host';
import { CoapDevice } from '../peers/coap-device';
import { flowWith, freeUdpPort, helper, nextMessage, ourNodes, serverPort, until } from './helper';

const TEXT = 0;

describe('Node-RED nodes', function () {
  let device: CoapDevice | undefined;

  afterEach(async function () {
    await device?.stop();
    device = undefined;
    await helper.unload();
    await resetHosts();
  });

  async function startDevice(port: number, endpoint = 'dev-1'): Promise<CoapDevice> {
    device = new CoapDevice(endpoint, port);
    await device.start();
    device.resources.set('/3303/0/5700', { contentFormat: TEXT, payload: '21.5' });
    return device;
  }

  it('loads every node with its config node', async function () {
    const port = await freeUdpPort();
    await helper.load(
      ourNodes,
      flowWith(
        [
          { id: 'reg', type: 'lwm2m-register-in', server: 'srv', wires: [[]] },
          { id: 'read', type: 'lwm2m-read', server: 'srv', wires: [[]] },
          { id: 'write', type: 'lwm2m-write', server: 'srv', wires: [[]] },
          { id: 'exec', type: 'lwm2m-execute', server: 'srv', wires: [[]] },
          { id: 'obs', type: 'lwm2m-observe', server: 'srv', startOn: 'input', wires: [[]] },
        ],
        { port: String(port) },
      ),
    );
    assert.equal(await serverPort(), port);
    for (const id of ['reg', 'read', 'write', 'exec', 'obs']) assert.ok(helper.getNode(id), id);
  });

  it('register-in emits registration events filtered by endpoint pattern', async function () {
    await helper.load(
      ourNodes,
      flowWith([
        { id: 'reg', type: 'lwm2m-register-in', server: 'srv', endpoint: 'dev-*', wires: [['out']] },
        { id: 'out', type: 'helper' },
      ]),
    );
    const port = await serverPort();
    const out = helper.getNode('out');
    const received = nextMessage(out);
    await (await startDevice(port)).register('lt=60&lwm2m=1.1');
    const msg = await received;
    assert.equal(msg.topic, 'dev-1');
    const payload = msg.payload as Record<string, unknown>;
    assert.equal(payload.endpoint, 'dev-1');
    assert.equal(payload.version, '1.1');
    assert.equal(payload.lifetime, 60);
    assert.deepEqual((msg.lwm2m as Record<string, unknown>).event, 'registered');

    // Another name does not match the pattern: nothing comes out. A matching device registered after it
    // is the barrier: once its msg is out, a msg for "other" would have been out before it.
    const later: Record<string, unknown>[] = [];
    out.on('input', (msg: Record<string, unknown>) => later.push(msg));
    const other = new CoapDevice('other', port);
    const second = new CoapDevice('dev-2', port);
    try {
      await other.start();
      await other.register();
      await second.start();
      await second.register();
      await until(() => later.length > 0, 'the msg of dev-2');
    } finally {
      await other.stop();
      await second.stop();
    }
    assert.deepEqual(
      later.map((msg) => msg.topic),
      ['dev-2'],
    );
  });

  it('read: endpoint and path from msg; value out; device errors to a Catch node', async function () {
    await helper.load(
      ourNodes,
      flowWith([
        { id: 'read', type: 'lwm2m-read', server: 'srv', wires: [['out']] },
        { id: 'out', type: 'helper' },
      ]),
    );
    const port = await serverPort();
    await (await startDevice(port)).register();
    const read = helper.getNode('read');
    const result = nextMessage(helper.getNode('out'));
    read.receive({ topic: 'dev-1/3303/0/5700' });
    const msg = await result;
    assert.equal(msg.payload, 21.5);
    assert.equal(msg.topic, 'dev-1/3303/0/5700');
    const details = msg.lwm2m as Record<string, unknown>;
    assert.equal(details.code, '2.05');
    assert.equal(details.endpoint, 'dev-1');
    assert.equal(typeof details.rttMs, 'number');

    // done(err) reports through node.error(err, msg): what a Catch node receives.
    const caught = new Promise<{ args: unknown[] }>((resolve) => read.on('call:error', resolve));
    read.receive({ endpoint: 'dev-1', path: '/3303/0/9999' });
    const [error, failed] = (await caught).args as [Error, Record<string, unknown>];
    assert.match(error.message, /4\.04 Not Found/);
    assert.equal((failed.lwm2m as Record<string, unknown>).code, '4.04');
    assert.equal((failed.lwm2m as Record<string, unknown>).endpoint, 'dev-1');
  });

  it('write and execute send the value and the arguments', async function () {
    await helper.load(
      ourNodes,
      flowWith([
        { id: 'write', type: 'lwm2m-write', server: 'srv', endpoint: 'dev-1', path: '/3303/0/5701', wires: [['out']] },
        {
          id: 'exec',
          type: 'lwm2m-execute',
          server: 'srv',
          path: '/3/0/4',
          args: "0='now'",
          argsType: 'str',
          wires: [['out2']],
        },
        { id: 'out', type: 'helper' },
        { id: 'out2', type: 'helper' },
      ]),
    );
    const port = await serverPort();
    const dev = await startDevice(port);
    await dev.register('lt=60&lwm2m=1.0');
    const written = nextMessage(helper.getNode('out'));
    helper.getNode('write').receive({ payload: 'Cel' });
    assert.equal(((await written).lwm2m as Record<string, unknown>).code, '2.04');
    const put = dev.requests.find((request) => request.method === 'PUT');
    assert.equal(put?.url, '/3303/0/5701');

    const executed = nextMessage(helper.getNode('out2'));
    helper.getNode('exec').receive({ endpoint: 'dev-1' });
    assert.equal(((await executed).lwm2m as Record<string, unknown>).code, '2.04');
    const post = dev.requests.find((request) => request.method === 'POST' && request.url === '/3/0/4');
    assert.equal(post?.payload.toString(), "0='now'");
  });

  it('observe by pattern: observes devices as they register and emits notifications', async function () {
    await helper.load(
      ourNodes,
      flowWith([
        { id: 'obs', type: 'lwm2m-observe', server: 'srv', endpoint: 'dev-*', path: '/3303/0/5700', wires: [['out']] },
        { id: 'out', type: 'helper' },
      ]),
    );
    const port = await serverPort();
    const out = helper.getNode('out');
    const messages: Record<string, unknown>[] = [];
    out.on('input', (msg: Record<string, unknown>) => messages.push(msg));
    const dev = await startDevice(port);
    await dev.register();
    await until(() => messages.length >= 1, 'the observe msg');
    assert.equal(messages[0]?.payload, 21.5);
    assert.equal((messages[0]?.lwm2m as Record<string, unknown>).event, 'observe');
    dev.notify('/3303/0/5700', '22');
    await until(() => messages.length >= 2, 'the notification msg');
    assert.equal(messages[1]?.payload, 22);
    assert.equal((messages[1]?.lwm2m as Record<string, unknown>).event, 'notification');
    assert.equal(messages[1]?.topic, 'dev-1/3303/0/5700');
  });

  it('a redeploy on the same port keeps registrations and observations', async function () {
    const port = await freeUdpPort();
    const flow = flowWith(
      [
        { id: 'obs', type: 'lwm2m-observe', server: 'srv', endpoint: 'dev-1', path: '/3303/0/5700', wires: [['out']] },
        { id: 'out', type: 'helper' },
      ],
      { port: String(port) },
    );
    await helper.load(ourNodes, flow);
    await serverPort();
    const dev = await startDevice(port);
    await dev.register();
    // The device registered after deploy: the observe node waits for it, then observes.
    await until(() => dev.observerCount('/3303/0/5700') >= 1, 'the Observe of the observe node');
    assert.equal(dev.observerCount('/3303/0/5700'), 1);

    await helper.unload();
    await helper.load(ourNodes, flow);
    assert.equal(await serverPort(), port, 'the same port was bound again (no EADDRINUSE)');
    const config = helper.getNode('srv') as unknown as Lwm2mServerConfigNode;
    assert.ok(await config.server.getRegistration('dev-1'), 'the registration survived the redeploy');

    const out = helper.getNode('out');
    const messages: Record<string, unknown>[] = [];
    out.on('input', (msg: Record<string, unknown>) => messages.push(msg));
    await until(() => messages.length >= 1, 'the observe msg of the new node (it joined the observation)');
    dev.notify('/3303/0/5700', '30.5');
    await until(() => messages.some((msg) => msg.payload === 30.5), 'the old observation to notify the new node');
    assert.equal(dev.requests.filter((request) => request.observe === 0).length, 1, 'no second Observe was needed');
  });

  it('two config nodes on one address and port share one endpoint', async function () {
    const port = await freeUdpPort();
    await helper.load(ourNodes, [
      { id: 'f1', type: 'tab', label: 'test' },
      { id: 'srv', type: 'lwm2m-server', address: '127.0.0.1', port: String(port) },
      { id: 'srv2', type: 'lwm2m-server', address: '127.0.0.1', port: String(port) },
      { id: 'r1', z: 'f1', type: 'lwm2m-read', server: 'srv', wires: [[]] },
      { id: 'r2', z: 'f1', type: 'lwm2m-read', server: 'srv2', wires: [[]] },
    ]);
    const a = helper.getNode('srv') as unknown as Lwm2mServerConfigNode;
    const b = helper.getNode('srv2') as unknown as Lwm2mServerConfigNode;
    await a.ready();
    await b.ready();
    assert.equal(a.server, b.server);
    // The port is really taken by us, once.
    const probe = dgram.createSocket('udp4');
    const bindError = await new Promise<NodeJS.ErrnoException | undefined>((resolve) => {
      probe.once('error', resolve);
      probe.bind(port, '127.0.0.1', () => resolve(undefined));
    });
    await new Promise<void>((resolve) => probe.close(() => resolve()));
    assert.equal(bindError?.code, 'EADDRINUSE');
  });
});
