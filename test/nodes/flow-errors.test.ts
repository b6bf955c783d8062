import { strict as assert } from 'node:assert';
import { resetHosts } from '../../nodes/shared/server-host';
import { CoapDevice } from '../peers/coap-device';
import { flowWith, helper, nextError, nextMessage, ourNodes, serverPort } from './helper';

/**
 * What a Catch node gets from the write, create and read nodes: composite errors name the paths asked for, and a
 * value over the write size limit (the server node's, or the write node's own) is refused with its size and the
 * limit, nothing sent.
 */
const nodes = [...ourNodes, require('../../nodes/lwm2m-create')];
type Msg = Record<string, unknown>;
const details = (msg: Msg) => msg.lwm2m as Record<string, unknown>;

describe('Node-RED nodes: composite errors and the write size limit, as a Catch node sees them', function () {
  let device: CoapDevice | undefined;

  afterEach(async function () {
    await device?.stop();
    device = undefined;
    await helper.unload();
    await resetHosts();
  });

  async function registeredDevice(): Promise<CoapDevice> {
    device = new CoapDevice('dev-1', await serverPort());
    await device.start();
    await device.register('lt=60&lwm2m=1.1', '</>;rt="oma.lwm2m";ct=110,</1/0>,</3/0>,</3303/0>');
    return device;
  }

  it('a composite read or write that fails: msg.lwm2m.path and the error name the paths', async function () {
    await helper.load(
      nodes,
      flowWith([
        { id: 'read', type: 'lwm2m-read', server: 'srv', endpoint: 'dev-1', wires: [[]] },
        { id: 'write', type: 'lwm2m-write', server: 'srv', endpoint: 'dev-1', mode: 'composite', wires: [[]] },
      ]),
    );
    const peer = await registeredDevice();
    peer.handler = (request) =>
      request.method === 'FETCH' ? { code: '4.04' } : request.method === 'iPATCH' ? { code: '4.05' } : undefined;

    const readFailed = nextError(helper.getNode('read'));
    helper.getNode('read').receive({ path: '/3/0/0, /3303/0/5700' });
    const [readError, readMsg] = await readFailed;
    assert.equal(readError.message, 'Read-Composite /3/0/0,/3303/0/5700 on dev-1 failed: 4.04 Not Found');
    assert.equal(details(readMsg).path, '/3/0/0,/3303/0/5700');
    assert.equal(details(readMsg).code, '4.04');

    const writeFailed = nextError(helper.getNode('write'));
    helper.getNode('write').receive({ payload: { '/3303/0/5701': 'Cel', '/1/0/3': 60 } });
    const [writeError, writeMsg] = await writeFailed;
    assert.match(writeError.message, /^Write-Composite \/3303\/0\/5701,\/1\/0\/3 on dev-1 failed: 4\.05/);
    assert.equal(details(writeMsg).path, '/3303/0/5701,/1/0/3');
  });

  it("refuses a value over the server node's Write size, names size and limit, sends nothing; a node's own Max. size wins", async function () {
    await helper.load(
      nodes,
      flowWith(
        [
          {
            id: 'write',
            type: 'lwm2m-write',
            server: 'srv',
            endpoint: 'dev-1',
            path: '/3/0/14',
            format: '0',
            wires: [['out']],
          },
          {
            id: 'bigger',
            type: 'lwm2m-write',
            server: 'srv',
            endpoint: 'dev-1',
            path: '/3/0/14',
            format: '0',
            maxSize: '4',
            wires: [['out']],
          },
          { id: 'create', type: 'lwm2m-create', server: 'srv', endpoint: 'dev-1', path: '/3303', wires: [['out']] },
          { id: 'out', type: 'helper' },
        ],
        { maxWriteKiB: '1' },
      ),
    );
    const peer = await registeredDevice();
    const sent = () => peer.requests.filter((request) => request.method === 'PUT' || request.method === 'POST');

    const refused = nextError(helper.getNode('write'));
    helper.getNode('write').receive({ payload: 'x'.repeat(2000) });
    const [error, msg] = await refused;
    assert.equal(
      error.message,
      'Write /3/0/14 on dev-1: the value is 2000 bytes as text/plain, over the write size limit of 1024 bytes; nothing was sent',
    );
    assert.equal(details(msg).code, 'too-large');
    assert.equal(details(msg).path, '/3/0/14');

    const createRefused = nextError(helper.getNode('create'));
    helper.getNode('create').receive({ payload: { 5750: 'y'.repeat(2000) } });
    const [createError] = await createRefused;
    assert.match(
      createError.message,
      /^Create \/3303 on dev-1: the value is \d+ bytes as .+, over the write size limit of 1024 bytes/,
    );
    assert.deepEqual(sent(), [], 'nothing went to the device');

    const written = nextMessage(helper.getNode('out'));
    helper.getNode('bigger').receive({ payload: 'x'.repeat(2000) });
    assert.equal(details(await written).code, '2.04');
    assert.deepEqual(
      sent().map((request) => [request.method, request.url, request.payload.length]),
      [['PUT', '/3/0/14', 2000]],
    );
  });

  it('a bad Max. size goes to Catch as a bad request', async function () {
    await helper.load(
      nodes,
      flowWith([
        {
          id: 'write',
          type: 'lwm2m-write',
          server: 'srv',
          endpoint: 'dev-1',
          path: '/3/0/14',
          maxSize: 'lots',
          wires: [[]],
        },
      ]),
    );
    await registeredDevice();
    const refused = nextError(helper.getNode('write'));
    helper.getNode('write').receive({ payload: '+01:00' });
    const [error, msg] = await refused;
    assert.match(error.message, /Max\. size must be a number of KiB/);
    assert.equal(details(msg).code, 'bad-request');
  });
});
