import { strict as assert } from 'node:assert';
import dgram from 'node:dgram';
import type { AddressInfo } from 'node:net';
import type { Lwm2mServerConfigNode } from '../../nodes/shared/server-config';
import { resetHosts } from '../../nodes/shared/server-host';
import { OwnStatus } from '../../nodes/shared/own-status';
import { Status } from '../../nodes/shared/status';
import { CoapDevice } from '../peers/coap-device';
import { flowWith, helper, nextMessage, ourNodes, serverPort } from './helper';
import type { TestNode } from './helper';

const TEXT = 0;

interface SeenStatus {
  fill?: string;
  shape?: string;
  text?: string;
}

/** Every status a node shows, from now on, and a wait for the first one that fits. */
function statusesOf(node: TestNode) {
  const seen: SeenStatus[] = [];
  const waiters: { fits: (status: SeenStatus) => boolean; resolve: (status: SeenStatus) => void }[] = [];
  node.on('call:status', (call: { args: [SeenStatus] }) => {
    const status = call.args[0];
    seen.push(status);
    for (const waiter of [...waiters]) {
      if (!waiter.fits(status)) continue;
      waiters.splice(waiters.indexOf(waiter), 1);
      waiter.resolve(status);
    }
  });
  return {
    seen,
    next(what: string, fits: (status: SeenStatus) => boolean, timeoutMs = 5000): Promise<SeenStatus> {
      return new Promise((resolve, reject) => {
        const timer = setTimeout(
          () => reject(new Error(`no status ${what} on ${node.id} within ${timeoutMs} ms: ${JSON.stringify(seen)}`)),
          timeoutMs,
        );
        waiters.push({
          fits,
          resolve: (status) => {
            clearTimeout(timer);
            resolve(status);
          },
        });
      });
    },
  };
}

/** The helper's flow, the server retransmitting once. */
function statusFlow(nodes: Record<string, unknown>[], server: Record<string, unknown> = {}): Record<string, unknown>[] {
  return flowWith(nodes, { maxRetransmit: '1', ...server });
}

describe('OwnStatus (nodes/shared/own-status.ts)', function () {
  /** A node's status line, recording what is written, with a wait for the next write. */
  function statusLine() {
    const written: SeenStatus[] = [];
    let onWrite: (() => void) | undefined;
    return {
      written,
      status: (status: SeenStatus) => {
        written.push(status);
        onWrite?.();
      },
      nextWrite: () => new Promise<void>((resolve) => (onWrite = resolve)),
    };
  }

  it('writes the first change at once and the latest of a burst after it, not each one', async function () {
    const line = statusLine();
    const own = new OwnStatus(line);
    try {
      for (let i = 0; i < 100; i++) own.show(Status.answered('2.05', i));
      own.show(Status.failed('4.04'));
      const later = line.nextWrite();
      assert.deepEqual(line.written, [{ fill: 'green', shape: 'dot', text: '2.05 · 0 ms' }]);
      await later;
      assert.deepEqual(line.written.at(-1), { fill: 'red', shape: 'ring', text: '4.04 Not Found' });
      assert.equal(line.written.length, 2);
    } finally {
      own.close();
    }
  });

  it('makes a status given as a function only when it is written: once for the first, once for the latest', async function () {
    const line = statusLine();
    const own = new OwnStatus(line);
    let made = 0;
    try {
      for (let i = 0; i < 100; i++) {
        const rtt = i;
        own.show(() => {
          made++;
          return Status.answered('2.05', rtt);
        });
      }
      const later = line.nextWrite();
      assert.equal(made, 1, 'the first, written at once');
      await later;
      assert.equal(made, 2, 'and the latest, at the end of the interval');
      assert.deepEqual(line.written, [
        { fill: 'green', shape: 'dot', text: '2.05 · 0 ms' },
        { fill: 'green', shape: 'dot', text: '2.05 · 99 ms' },
      ]);
    } finally {
      own.close();
    }
  });

  it("shows the server's problem over its own result until the server is fine again; nothing after close", async function () {
    const line = statusLine();
    const own = new OwnStatus(line);
    try {
      own.fromServer(Status.listening(':5683', 3));
      assert.deepEqual(line.written, [{}], "the server's count is not shown");
      let next = line.nextWrite();
      own.show(Status.answered('2.04', 7));
      await next;
      next = line.nextWrite();
      own.fromServer(Status.error('store unreachable'));
      await next;
      assert.deepEqual(line.written.at(-1), { fill: 'red', shape: 'ring', text: 'store unreachable' });
      next = line.nextWrite();
      own.fromServer(Status.listening(':5683', 3));
      await next;
      assert.deepEqual(line.written.at(-1), { fill: 'green', shape: 'dot', text: '2.04 · 7 ms' });
      own.close();
      own.show(Status.failed('timeout'));
      assert.deepEqual(line.written.at(-1), { fill: 'green', shape: 'dot', text: '2.04 · 7 ms' });
      // The turn `own` had running when it closed ends before the turn of a status line started now: once that
      // one has written its held change, a write after close would have come.
      const barrier = statusLine();
      const after = new OwnStatus(barrier);
      try {
        after.show(Status.answered('2.05', 1));
        const held = barrier.nextWrite();
        after.show(Status.failed('4.04'));
        await held;
      } finally {
        after.close();
      }
      assert.deepEqual(
        line.written.at(-1),
        { fill: 'green', shape: 'dot', text: '2.04 · 7 ms' },
        'nothing after close',
      );
    } finally {
      own.close();
    }
  });
});

describe('operation nodes show their own last result in their status', function () {
  let device: CoapDevice | undefined;
  let blocker: dgram.Socket | undefined;

  afterEach(async function () {
    await device?.stop();
    device = undefined;
    await helper.unload();
    await resetHosts();
    await new Promise<void>((resolve) => (blocker ? blocker.close(() => resolve()) : resolve()));
    blocker = undefined;
  });

  async function startDevice(): Promise<CoapDevice> {
    device = new CoapDevice('dev-1', await serverPort());
    await device.start();
    device.resources.set('/3303/0/5700', { contentFormat: TEXT, payload: '21.5' });
    return device;
  }

  it("read: the code and round trip after an answer, the code and its meaning after a failure, never the server's device count", async function () {
    await helper.load(
      ourNodes,
      statusFlow([
        { id: 'reg', type: 'lwm2m-register-in', server: 'srv', wires: [[]] },
        { id: 'read', type: 'lwm2m-read', server: 'srv', wires: [['out']] },
        { id: 'out', type: 'helper' },
      ]),
    );
    const read = helper.getNode('read');
    const readStatus = statusesOf(read);
    const registerStatus = statusesOf(helper.getNode('reg'));
    const counted = registerStatus.next('with one device', (status) => /· 1 device$/.test(status.text ?? ''));
    await (await startDevice()).register();
    // The listener node shows the server's count; the read node, which listens to nothing, does not.
    await counted;

    const answered = readStatus.next('answered', (status) => status.fill === 'green');
    const result = nextMessage(helper.getNode('out'));
    read.receive({ endpoint: 'dev-1', path: '/3303/0/5700' });
    await result;
    const ok = await answered;
    assert.equal(ok.shape, 'dot');
    assert.match(ok.text ?? '', /^2\.05 · \d+ ms$/);

    const failed = readStatus.next('failed', (status) => status.fill === 'red');
    read.receive({ endpoint: 'dev-1', path: '/3303/0/9999' });
    assert.deepEqual(await failed, { fill: 'red', shape: 'ring', text: '4.04 Not Found' });

    const notRegistered = readStatus.next('not registered', (status) => status.text === 'not-registered');
    read.receive({ endpoint: 'nobody', path: '/3303/0/5700' });
    assert.equal((await notRegistered).fill, 'red');

    assert.deepEqual(
      readStatus.seen.filter((status) => /device|:\d+/.test(status.text ?? '')),
      [],
      'no server status on the read node',
    );
  });

  it('shows the latest of results that come faster than the status is redrawn', async function () {
    await helper.load(
      ourNodes,
      statusFlow([
        { id: 'read', type: 'lwm2m-read', server: 'srv', endpoint: 'dev-1', wires: [['out']] },
        { id: 'out', type: 'helper' },
      ]),
    );
    await (await startDevice()).register();
    const read = helper.getNode('read');
    const readStatus = statusesOf(read);
    const out = helper.getNode('out');
    const answered = new Promise<void>((resolve) => {
      let count = 0;
      out.on('input', () => ++count === 5 && resolve());
    });
    for (let i = 0; i < 5; i++) read.receive({ path: '/3303/0/5700' });
    await answered;
    // The last one fails: however close behind, the status ends on it.
    const failed = readStatus.next('the failure last', (status) => status.text === '4.04 Not Found');
    read.receive({ path: '/3303/0/1' });
    await failed;
  });

  it("shows the server's problem (port in use) on an operation node, which has no result yet", async function () {
    blocker = dgram.createSocket('udp4');
    await new Promise<void>((resolve) => blocker!.bind(0, '127.0.0.1', () => resolve()));
    const port = (blocker.address() as AddressInfo).port;
    const flow = statusFlow([{ id: 'read', type: 'lwm2m-read', server: 'srv', wires: [[]] }], {
      port: String(port),
      dtlsEnabled: false,
    });
    await helper.load(ourNodes, flow);
    const read = helper.getNode('read');
    const readStatus = statusesOf(read);
    const config = helper.getNode('srv') as unknown as Lwm2mServerConfigNode;
    await config.ready().catch(() => undefined);
    const problem =
      readStatus.seen.find((status) => status.fill === 'red') ??
      (await readStatus.next('the server problem', (status) => status.fill === 'red'));
    assert.deepEqual(problem, { fill: 'red', shape: 'ring', text: 'port in use' });
  });

  it('observe: how many observations, and the time of the last notification', async function () {
    await helper.load(
      ourNodes,
      statusFlow([
        { id: 'obs', type: 'lwm2m-observe', server: 'srv', startOn: 'input', wires: [['out']] },
        { id: 'out', type: 'helper' },
      ]),
    );
    const dev = await startDevice();
    await dev.register();
    const observe = helper.getNode('obs');
    const observeStatus = statusesOf(observe);
    const first = nextMessage(helper.getNode('out'));
    observe.receive({ endpoint: 'dev-1', path: '/3303/0/5700' });
    await first;
    const notified = observeStatus.next('a notification time', (status) => /· last /.test(status.text ?? ''));
    dev.notify('/3303/0/5700', '22');
    const status = await notified;
    assert.equal(status.fill, 'green');
    assert.match(status.text ?? '', /^observing 1 · last \d\d:\d\d:\d\d$/);
  });
});
