import { strict as assert } from 'node:assert';
import type * as coap from 'coap';
import { resetHosts } from '../../nodes/shared/server-host';
import { CoapDevice } from '../peers/coap-device';
import { flowWith, helper, nextError, nextMessage, ourNodes, serverPort, until } from './helper';
import type { TestNode } from './helper';

const TEXT = 0;
const LINK_FORMAT = 40;
const SENML_JSON = 110;

/** The nodes of the rest of the palette, with the first ones (register-in is among them). */
const moreNodes = [
  ...ourNodes,
  require('../../nodes/lwm2m-discover'),
  require('../../nodes/lwm2m-create'),
  require('../../nodes/lwm2m-delete'),
  require('../../nodes/lwm2m-write-attributes'),
  require('../../nodes/lwm2m-send-in'),
];

type Msg = Record<string, unknown>;

function details(msg: Msg): Record<string, unknown> {
  return msg.lwm2m as Record<string, unknown>;
}

/** Every msg a helper node receives, in order. */
function collect(node: TestNode): Msg[] {
  const messages: Msg[] = [];
  node.on('input', (msg: Msg) => messages.push(msg));
  return messages;
}

describe('Node-RED nodes: discover, create, delete, write attributes, send in, queue events', function () {
  const devices: CoapDevice[] = [];

  afterEach(async function () {
    for (const device of devices.splice(0)) await device.stop();
    await helper.unload();
    await resetHosts();
  });

  async function startDevice(port: number, endpoint = 'dev-1'): Promise<CoapDevice> {
    const device = new CoapDevice(endpoint, port);
    await device.start();
    devices.push(device);
    device.resources.set('/3303/0/5700', { contentFormat: TEXT, payload: '21.5' });
    return device;
  }

  it('loads every new node with its config node', async function () {
    const types = ['lwm2m-discover', 'lwm2m-create', 'lwm2m-delete', 'lwm2m-write-attributes', 'lwm2m-send-in'];
    await helper.load(
      moreNodes,
      flowWith(types.map((type, index) => ({ id: `n${index}`, type, server: 'srv', wires: [[]] }))),
    );
    await serverPort();
    types.forEach((type, index) => assert.equal(helper.getNode(`n${index}`)?.type, type));
  });

  it('discover: the link list as paths with numeric attributes', async function () {
    await helper.load(
      moreNodes,
      flowWith([
        { id: 'disc', type: 'lwm2m-discover', server: 'srv', endpoint: 'dev-1', wires: [['out']] },
        { id: 'out', type: 'helper' },
      ]),
    );
    const device = await startDevice(await serverPort());
    await device.register();
    device.handler = (request) =>
      request.method === 'GET' && request.accept === LINK_FORMAT
        ? {
            code: '2.05',
            contentFormat: LINK_FORMAT,
            payload: '</3303>;ver=1.1,</3303/0>,</3303/0/5700>;pmin=10;gt=30.5;st=0.5,</3303/0/5701>;dim=2',
          }
        : undefined;
    const result = nextMessage(helper.getNode('out'));
    helper.getNode('disc').receive({ path: '/3303' });
    const msg = await result;
    assert.deepEqual(msg.payload, [
      { path: '/3303', attributes: { ver: '1.1' } },
      { path: '/3303/0', attributes: {} },
      { path: '/3303/0/5700', attributes: { pmin: 10, gt: 30.5, st: 0.5 } },
      { path: '/3303/0/5701', attributes: { dim: 2 } },
    ]);
    assert.equal(msg.topic, 'dev-1/3303');
    assert.equal(details(msg).code, '2.05');
    assert.equal(details(msg).contentFormat, LINK_FORMAT);
    assert.equal(details(msg).links, undefined, 'the raw links are not repeated in msg.lwm2m');
    const request = device.requests.find((item) => item.accept === LINK_FORMAT);
    assert.equal(request?.url, '/3303');

    // The root cannot be discovered: nothing is sent, the error goes to Catch.
    const before = device.requests.length;
    const caught = nextError(helper.getNode('disc'));
    helper.getNode('disc').receive({ path: '/' });
    const [, failed] = await caught;
    assert.equal(details(failed).code, 'bad-request');
    assert.equal(device.requests.length, before);
  });

  it('create: the instance id from the node, or the Location-Path the device answers', async function () {
    await helper.load(
      moreNodes,
      flowWith([
        {
          id: 'create4',
          type: 'lwm2m-create',
          server: 'srv',
          endpoint: 'dev-1',
          path: '/3303',
          instanceId: '4',
          wires: [['out']],
        },
        { id: 'create', type: 'lwm2m-create', server: 'srv', endpoint: 'dev-1', path: '/3303', wires: [['out2']] },
        { id: 'out', type: 'helper' },
        { id: 'out2', type: 'helper' },
      ]),
    );
    const device = await startDevice(await serverPort());
    await device.register('lt=60&lwm2m=1.0');
    device.handler = (request) =>
      request.method === 'POST' && request.url.startsWith('/3303') ? { code: '2.01' } : undefined;

    // With an instance id and no Location-Path in the answer: the id asked for.
    const created = nextMessage(helper.getNode('out'));
    helper.getNode('create4').receive({ payload: { 'Application Type': 'greenhouse' } });
    const msg = await created;
    assert.equal(details(msg).instancePath, '/3303/4');
    assert.equal(details(msg).path, '/3303/4');
    assert.equal(details(msg).objectPath, '/3303');
    assert.equal(details(msg).code, '2.01');
    assert.equal(msg.topic, 'dev-1/3303/4');
    assert.deepEqual(msg.payload, { 'Application Type': 'greenhouse' }, 'payload unchanged');
    const post = device.requests.find((request) => request.method === 'POST' && request.url === '/3303');
    assert.ok(post, 'the device got POST /3303');
    assert.ok(post.payload.includes(Buffer.from('greenhouse')), 'with the resources');

    // Without one: the device picks and says where (Location-Path /3303/7). CoapDevice's handler cannot
    // set options, so the option is put on the response before the device answers it.
    const coapServer = (device as unknown as { server: coap.Server }).server;
    coapServer.prependListener('request', (req: coap.IncomingMessage, res: coap.OutgoingMessage) => {
      if (req.method === 'POST') res.setOption('Location-Path', [Buffer.from('3303'), Buffer.from('7')]);
    });
    const picked = nextMessage(helper.getNode('out2'));
    helper.getNode('create').receive({ payload: { 5750: 'cellar' } });
    const second = await picked;
    assert.equal(details(second).instancePath, '/3303/7');
    assert.equal(second.topic, 'dev-1/3303/7');

    // A bad instance id never reaches the device.
    const before = device.requests.length;
    const caught = nextError(helper.getNode('create'));
    helper.getNode('create').receive({ payload: {}, instanceId: 'seven' });
    const [error, failed] = await caught;
    assert.match(error.message, /instance id/);
    assert.equal(details(failed).code, 'bad-request');
    assert.equal(device.requests.length, before);
  });

  it('create then delete: the delete node takes the new instance from msg.lwm2m', async function () {
    await helper.load(
      moreNodes,
      flowWith([
        {
          id: 'create',
          type: 'lwm2m-create',
          server: 'srv',
          path: '/3303',
          instanceId: '2',
          value: '{}',
          valueType: 'json',
          wires: [['del']],
        },
        { id: 'del', type: 'lwm2m-delete', server: 'srv', wires: [['out']] },
        { id: 'out', type: 'helper' },
      ]),
    );
    const device = await startDevice(await serverPort());
    await device.register();
    device.handler = (request) => (request.method === 'POST' ? { code: '2.01' } : undefined);
    const deleted = nextMessage(helper.getNode('out'));
    helper.getNode('create').receive({ endpoint: 'dev-1' });
    const msg = await deleted;
    assert.equal(details(msg).code, '2.02');
    assert.equal(details(msg).path, '/3303/2');
    assert.equal(msg.topic, 'dev-1/3303/2');
    assert.ok(device.requests.some((request) => request.method === 'DELETE' && request.url === '/3303/2'));
  });

  it('delete: device errors and paths that are not instances go to Catch', async function () {
    await helper.load(
      moreNodes,
      flowWith([
        { id: 'del', type: 'lwm2m-delete', server: 'srv', endpoint: 'dev-1', wires: [['out']] },
        { id: 'out', type: 'helper' },
      ]),
    );
    const device = await startDevice(await serverPort());
    await device.register();
    device.handler = (request) =>
      request.method === 'DELETE' && request.url === '/3/0' ? { code: '4.05', payload: 'not this one' } : undefined;

    const ok = nextMessage(helper.getNode('out'));
    helper.getNode('del').receive({ topic: 'dev-1/3303/1' });
    assert.equal(details(await ok).code, '2.02');

    const refused = nextError(helper.getNode('del'));
    helper.getNode('del').receive({ path: '/3/0' });
    const [error, failed] = await refused;
    assert.match(error.message, /4\.05/);
    assert.equal(details(failed).code, '4.05');

    const before = device.requests.length;
    const notInstance = nextError(helper.getNode('del'));
    helper.getNode('del').receive({ path: '/3303' });
    assert.equal(details((await notInstance)[1]).code, 'bad-request');
    assert.equal(device.requests.length, before, 'nothing sent for an object path');
  });

  it('write attributes: node fields win over msg.attributes, "clear" removes, bad combinations are refused', async function () {
    await helper.load(
      moreNodes,
      flowWith([
        {
          id: 'wa',
          type: 'lwm2m-write-attributes',
          server: 'srv',
          endpoint: 'dev-1',
          path: '/3303/0/5700',
          pmin: '10',
          st: 'clear',
          wires: [['out']],
        },
        { id: 'out', type: 'helper' },
      ]),
    );
    const device = await startDevice(await serverPort());
    await device.register('lt=60&lwm2m=1.0');
    const wa = helper.getNode('wa');

    const written = nextMessage(helper.getNode('out'));
    wa.receive({ payload: 'x', attributes: { pmax: '60', pmin: 5 } });
    const msg = await written;
    const put = device.requests.find((request) => request.method === 'PUT');
    assert.equal(put?.url, '/3303/0/5700?pmin=10&pmax=60&st');
    assert.deepEqual(details(msg).attributes, { pmin: 10, pmax: 60, st: null });
    assert.deepEqual(details(msg).query, ['pmin=10', 'pmax=60', 'st']);
    assert.equal(details(msg).code, '2.04');
    assert.equal(msg.topic, 'dev-1/3303/0/5700');
    assert.equal(msg.payload, 'x');

    // lt above gt: refused before anything is sent.
    const before = device.requests.length;
    const caught = nextError(wa);
    wa.receive({ attributes: { lt: 30, gt: 20 } });
    const [error, failed] = await caught;
    assert.match(error.message, /lt \(30\) must be less than gt \(20\)/);
    assert.equal(details(failed).code, 'bad-request');

    // epmin is not LwM2M 1.0.
    const notInVersion = nextError(wa);
    wa.receive({ attributes: { epmin: 5 } });
    assert.match((await notInVersion)[0].message, /not part of LwM2M 1\.0/);

    // Not a number.
    const notNumber = nextError(wa);
    wa.receive({ attributes: { pmax: 'soon' } });
    assert.equal(details((await notNumber)[1]).code, 'bad-request');
    assert.equal(device.requests.length, before, 'nothing was sent for refused attributes');
  });

  it('write attributes: warns when it replaces what another node wrote on the path', async function () {
    await helper.load(
      moreNodes,
      flowWith([
        { id: 'a', type: 'lwm2m-write-attributes', server: 'srv', endpoint: 'dev-1', pmin: '10', wires: [['out']] },
        { id: 'b', type: 'lwm2m-write-attributes', server: 'srv', endpoint: 'dev-1', pmin: '30', wires: [['out']] },
        { id: 'out', type: 'helper' },
      ]),
    );
    const device = await startDevice(await serverPort());
    await device.register();
    const out = helper.getNode('out');
    const first = nextMessage(out);
    helper.getNode('a').receive({ path: '/3303/0/5700' });
    assert.equal(details(await first).replaced, undefined);

    const warned = new Promise<string>((resolve) =>
      helper.getNode('b').on('call:warn', (call: { args: [string] }) => resolve(call.args[0])),
    );
    const second = nextMessage(out);
    helper.getNode('b').receive({ path: '/3303/0/5700' });
    assert.deepEqual(details(await second).replaced, { owner: 'a', attributes: ['pmin=10'] });
    assert.match(await warned, /pmin=30 replace pmin=10 written by node a; .*last write wins/);
  });

  it('write attributes: no attribute at all is a bad request', async function () {
    await helper.load(
      moreNodes,
      flowWith([{ id: 'wa', type: 'lwm2m-write-attributes', server: 'srv', endpoint: 'dev-1', wires: [[]] }]),
    );
    const device = await startDevice(await serverPort());
    await device.register();
    const caught = nextError(helper.getNode('wa'));
    helper.getNode('wa').receive({ path: '/3303/0/5700' });
    const [error, failed] = await caught;
    assert.match(error.message, /no attributes/);
    assert.equal(details(failed).code, 'bad-request');
  });

  it('send in: one msg per Send (latest value per path) or one per value, filtered by endpoint and path', async function () {
    await helper.load(
      moreNodes,
      flowWith([
        { id: 'all', type: 'lwm2m-send-in', server: 'srv', wires: [['outAll']] },
        {
          id: 'each',
          type: 'lwm2m-send-in',
          server: 'srv',
          endpoint: 'dev-*',
          path: '/3303',
          output: 'value',
          wires: [['outEach']],
        },
        { id: 'onlyOther', type: 'lwm2m-send-in', server: 'srv', endpoint: 'other-*', wires: [['outOther']] },
        { id: 'outAll', type: 'helper' },
        { id: 'outEach', type: 'helper' },
        { id: 'outOther', type: 'helper' },
      ]),
    );
    const all = collect(helper.getNode('outAll'));
    const each = collect(helper.getNode('outEach'));
    const other = collect(helper.getNode('outOther'));
    const device = await startDevice(await serverPort());
    await device.register('lt=60&lwm2m=1.1');
    const payload = JSON.stringify([
      { bn: '/3303/0/', bt: 1700000000, n: '5700', v: 21.5 },
      { n: '5700', v: 22.5, t: 60 },
      { n: '5701', vs: 'Cel' },
      { bn: '/33030/0/', n: '1', v: 5 },
      { bn: '/3/0/', n: '9', v: 87 },
    ]);
    assert.equal(await device.sendData(payload, SENML_JSON), '2.04');
    await until(() => all.length === 1 && each.length === 3);

    const [msg] = all;
    assert.equal(msg.topic, 'dev-1');
    assert.deepEqual(msg.payload, { '/3303/0/5700': 22.5, '/3303/0/5701': 'Cel', '/33030/0/1': 5, '/3/0/9': 87 });
    assert.equal(details(msg).event, 'send');
    assert.equal(details(msg).endpoint, 'dev-1');
    assert.equal(details(msg).contentFormat, SENML_JSON);
    const values = details(msg).values as { path: string; value: unknown; time: Date }[];
    assert.equal(values.length, 5);
    assert.deepEqual(
      values.filter((value) => value.path === '/3303/0/5700'),
      [
        { path: '/3303/0/5700', value: 21.5, time: new Date('2023-11-14T22:13:20.000Z') },
        { path: '/3303/0/5700', value: 22.5, time: new Date('2023-11-14T22:14:20.000Z') },
      ],
    );

    // In the order the decoder gives them (grouped by time); each with its own time.
    assert.deepEqual(
      each
        .map((item) => [item.topic, item.payload, (details(item).time as Date).toISOString(), details(item).path])
        .sort((x, y) => `${x[0]} ${x[2]}`.localeCompare(`${y[0]} ${y[2]}`)),
      [
        ['dev-1/3303/0/5700', 21.5, '2023-11-14T22:13:20.000Z', '/3303/0/5700'],
        ['dev-1/3303/0/5700', 22.5, '2023-11-14T22:14:20.000Z', '/3303/0/5700'],
        ['dev-1/3303/0/5701', 'Cel', '2023-11-14T22:13:20.000Z', '/3303/0/5701'],
      ],
    );

    // A Send with nothing under /3303 gives the per-value node nothing.
    assert.equal(await device.sendData(JSON.stringify([{ n: '/3/0/9', v: 80 }]), SENML_JSON), '2.04');
    await until(() => all.length === 2);
    assert.deepEqual(all[1].payload, { '/3/0/9': 80 });
    // A Send with a /3303 value after it is the barrier: once its value is out, one from the Send before
    // it would have been out first.
    assert.equal(await device.sendData(JSON.stringify([{ n: '/3303/0/5700', v: 23 }]), SENML_JSON), '2.04');
    await until(() => all.length === 3 && each.length >= 4);
    assert.deepEqual(
      each.slice(3).map((item) => item.payload),
      [23],
    );
    assert.equal(other.length, 0, 'the endpoint filter kept dev-1 out');
  });

  it('register-in: awake and sleeping events for a queue-mode device, queue status in every payload', async function () {
    await helper.load(
      moreNodes,
      flowWith(
        [
          // A node from a flow made before awake/sleeping existed: no flags, so they are on.
          { id: 'old', type: 'lwm2m-register-in', server: 'srv', wires: [['outOld']] },
          { id: 'off', type: 'lwm2m-register-in', server: 'srv', awake: false, sleeping: false, wires: [['outOff']] },
          { id: 'outOld', type: 'helper' },
          { id: 'outOff', type: 'helper' },
        ],
        // The awake window is MAX_TRANSMIT_WAIT of the CoAP timing: 300 ms * (2^1 - 1) * 1.
        { ackTimeout: '300', ackRandomFactor: '1', maxRetransmit: '0' },
      ),
    );
    const events = collect(helper.getNode('outOld'));
    const filtered = collect(helper.getNode('outOff'));
    const port = await serverPort();
    const device = await startDevice(port, 'sleepy');
    await device.register('lt=60&lwm2m=1.1&Q');
    await until(() => events.length >= 2);
    assert.deepEqual(
      events.map((msg) => details(msg).event),
      ['awake', 'registered'],
    );
    for (const msg of events) {
      assert.equal(msg.topic, 'sleepy');
      assert.equal((msg.payload as Msg).queueMode, true);
      assert.equal((msg.payload as Msg).queue, 'awake');
    }

    await until(() => events.length >= 3, 'the sleeping msg');
    assert.equal(details(events[2]).event, 'sleeping');
    assert.equal((events[2].payload as Msg).queue, 'sleeping');

    assert.equal(await device.update(), '2.04');
    await until(() => events.length >= 5);
    assert.deepEqual(
      events.slice(3).map((msg) => [details(msg).event, (msg.payload as Msg).queue]),
      [
        ['awake', 'awake'],
        ['updated', 'awake'],
      ],
    );
    assert.deepEqual(
      filtered.map((msg) => details(msg).event),
      ['registered', 'updated'],
    );

    // An always-reachable device has no queue status.
    const plain = await startDevice(port, 'plain');
    await plain.register('lt=60&lwm2m=1.1');
    await until(() => events.some((msg) => msg.topic === 'plain'));
    const registered = events.filter((msg) => msg.topic === 'plain');
    assert.deepEqual(
      registered.map((msg) => details(msg).event),
      ['registered'],
    );
    assert.equal((registered[0].payload as Msg).queue, undefined);
  });
});
