/**
 * The observe node tells the flow when an observation ends: cancelled by msg.cancel (the msg comes out with
 * msg.lwm2m.event 'cancelled', so a flow waiting on it goes on), or cancelled by the server because the device
 * flooded it (with the reason; the server node warns). Through node-red-node-test-helper.
 */
import { strict as assert } from 'node:assert';
import { resetHosts } from '../../nodes/shared/server-host';
import { CoapDevice } from '../peers/coap-device';
import { NotifyingDevice } from '../peers/notifying-device';
import { flowWith, helper, nextMessage, ourNodes, serverPort } from './helper';
import type { TestNode } from './helper';

const TEXT = 0;

/** The server node, an observe node (`observe` changes its settings) and a helper node after it. */
function flow(server: Record<string, unknown>, observe: Record<string, unknown>): Record<string, unknown>[] {
  return flowWith(
    [
      {
        id: 'obs',
        type: 'lwm2m-observe',
        server: 'srv',
        endpoint: 'dev-1',
        path: '/3303/0/5700',
        startOn: 'input',
        wires: [['out']],
        ...observe,
      },
      { id: 'out', type: 'helper' },
    ],
    server,
  );
}

/** The next msg of `node` whose msg.lwm2m.event is `event`. */
function nextEvent(node: TestNode, event: string): Promise<Record<string, unknown>> {
  return new Promise((resolve) => {
    node.on('input', (msg: Record<string, unknown>) => {
      if ((msg.lwm2m as { event?: string } | undefined)?.event === event) resolve(msg);
    });
  });
}

describe('observe node: a msg when an observation ends', function () {
  let device: CoapDevice | undefined;
  let flooding: NotifyingDevice | undefined;
  let pace: NodeJS.Timeout | undefined;

  afterEach(async function () {
    clearInterval(pace);
    await device?.stop();
    await flooding?.close();
    device = undefined;
    flooding = undefined;
    await helper.unload();
    await resetHosts();
  });

  it('msg.cancel: the msg comes out with event "cancelled" once the device was told', async function () {
    await helper.load(ourNodes, flow({}, {}));
    const port = await serverPort();
    device = new CoapDevice('dev-1', port);
    await device.start();
    device.resources.set('/3303/0/5700', { contentFormat: TEXT, payload: '21.5' });
    await device.register('lt=60&lwm2m=1.1');
    const obs = helper.getNode('obs');
    const out = helper.getNode('out');

    const observed = nextMessage(out);
    obs.receive({});
    assert.equal((await observed).payload, 21.5);

    const cancelled = nextMessage(out);
    obs.receive({ cancel: true, _msgid: 'cancel-1', flowState: 'waiting' });
    const msg = await cancelled;
    assert.deepEqual(msg.lwm2m, {
      event: 'cancelled',
      endpoint: 'dev-1',
      path: '/3303/0/5700',
      observed: true,
      reason: 'msg.cancel',
    });
    assert.equal(msg.topic, 'dev-1/3303/0/5700');
    assert.equal(msg.flowState, 'waiting', 'the input msg goes on');
    assert.ok(
      device.requests.some((request) => request.method === 'GET' && request.observe === 1),
      'the device was told (Observe=1)',
    );

    // Nothing observed any more: a second cancel still answers, and says so.
    const again = nextMessage(out);
    obs.receive({ cancel: true });
    assert.equal((((await again).lwm2m as Record<string, unknown>) ?? {}).observed, false);
  });

  it('msg.cancel on a pattern node: one msg for every observation it let go', async function () {
    await helper.load(ourNodes, flow({}, { endpoint: 'dev-*', startOn: 'deploy' }));
    const port = await serverPort();
    const out = helper.getNode('out');
    const observed = nextEvent(out, 'observe');
    device = new CoapDevice('dev-1', port);
    await device.start();
    device.resources.set('/3303/0/5700', { contentFormat: TEXT, payload: '21.5' });
    await device.register('lt=60&lwm2m=1.1');
    await observed;

    const cancelled = nextEvent(out, 'cancelled');
    helper.getNode('obs').receive({ cancel: true });
    const msg = await cancelled;
    assert.deepEqual(msg.payload, [{ endpoint: 'dev-1', path: '/3303/0/5700' }]);
    assert.equal((msg.lwm2m as Record<string, unknown>).count, 1);
  });

  it('a flooding device: the server cancels the observation, the node says why, the server node warns', async function () {
    await helper.load(ourNodes, flow({ notificationRate: '20', floodRate: '50', floodSeconds: '1' }, {}));
    const port = await serverPort();
    flooding = new NotifyingDevice('dev-1', port);
    await flooding.start();
    await flooding.register();
    const out = helper.getNode('out');
    const warned: string[] = [];
    helper.getNode('srv').on('call:warn', (call: { args: [string] }) => warned.push(call.args[0]));

    const observed = nextEvent(out, 'observe');
    helper.getNode('obs').receive({});
    await observed;

    const cancelled = nextEvent(out, 'cancelled');
    let value = 0;
    pace = setInterval(() => {
      for (let i = 0; i < 10; i++) flooding!.notify(++value);
    }, 5);
    const msg = await cancelled;
    clearInterval(pace);
    const lwm2m = msg.lwm2m as Record<string, unknown>;
    assert.equal(lwm2m.endpoint, 'dev-1');
    assert.equal(lwm2m.path, '/3303/0/5700');
    assert.match(String(lwm2m.reason), /flooded: more than 50 notifications a second for 1 s/);
    assert.ok(
      warned.some((text) => /limit \(notification-flood\): dev-1 \/3303\/0\/5700: flooded/.test(text)),
      warned.join('\n'),
    );
    assert.ok(
      warned.some((text) => /limit \(notifications-coalesced\)/.test(text)),
      'coalescing was reported first',
    );
  });
});
