/**
 * `CoapEndpoint.notify()` against node-coap as the observer, over UDP loopback: node-coap registers with
 * `coap.request({ observe: true })`, our endpoint answers and notifies (NON, CON, Block2), node-coap
 * ACKs CON notifications and answers RST once it has closed its observe stream.
 */
import { strict as assert } from 'node:assert';
import { createSocket, type Socket } from 'node:dgram';
import * as coap from 'coap';
import { CoapEndpoint, CoapRequestError, encodeUint, type IncomingRequest } from '../../lib/coap';
import { UdpTransport } from '../../lib/transport/udp';
import type { Peer } from '../../lib/transport/types';
import { bytes, waitFor } from './helpers';

type NodeCoapIncoming = InstanceType<typeof coap.IncomingMessage>;
type Agent = InstanceType<typeof coap.Agent>;

interface NodeCoapObserver {
  stream: NodeCoapIncoming & { close(eagerDeregister?: boolean): void };
  values: Buffer[];
  /** The registration as our endpoint saw it (peer and token to notify). */
  registration: IncomingRequest;
}

describe('notify() with node-coap as the observer (UDP loopback)', function () {
  this.timeout(20000);
  let ep: CoapEndpoint;
  let port: number;
  let agent: Agent;
  let socket: Socket;
  let seq: number;
  let value: Buffer;
  let registrations: IncomingRequest[];
  let requests: IncomingRequest[];
  let resets: Array<{ peer: Peer; token: Buffer }>;

  beforeEach(async () => {
    seq = 1;
    value = Buffer.from('v0');
    registrations = [];
    requests = [];
    resets = [];
    ep = new CoapEndpoint(new UdpTransport({ address: '127.0.0.1', port: 0 }), { ackTimeoutMs: 200 });
    ep.setRequestHandler((req) => {
      requests.push(req);
      if (req.observe === 0) {
        registrations.push(req);
        return { code: '2.05', payload: value, options: [{ name: 'Observe', value: encodeUint(seq) }] };
      }
      return { code: '2.05', payload: value };
    });
    ep.onNotificationReset = (peer, token) => resets.push({ peer, token });
    port = (await ep.start()).port;
    // the agent gets a socket of ours: left to itself it closes its socket once it counts no request
    // in progress, and it counts a closed observe stream twice (close() and the stream's autoDestroy)
    socket = createSocket('udp4');
    await new Promise<void>((resolve) => socket.bind(0, '127.0.0.1', resolve));
    agent = new coap.Agent({ socket });
  });

  afterEach(async () => {
    await new Promise<void>((resolve) => socket.close(() => resolve()));
    await ep.close();
  });

  async function observe(): Promise<NodeCoapObserver> {
    const req = coap.request({ agent, hostname: '127.0.0.1', port, pathname: '/obj/0', observe: true });
    const stream = await new Promise<NodeCoapObserver['stream']>((resolve, reject) => {
      req.on('response', (res: NodeCoapIncoming) => resolve(res as NodeCoapObserver['stream']));
      req.on('error', reject);
      req.end();
    });
    const values: Buffer[] = [];
    stream.on('data', (chunk: Buffer) => values.push(chunk));
    await waitFor(() => values.length === 1, 2000, 'the registration response');
    return { stream, values, registration: registrations[registrations.length - 1] };
  }

  const notify = (o: NodeCoapObserver, payload: Buffer, confirmable: boolean) => {
    value = payload;
    return ep.notify(
      o.registration.peer,
      o.registration.token,
      { code: '2.05', observe: ++seq, payload },
      { confirmable },
    );
  };

  it('delivers NON and CON notifications; node-coap ACKs the CON ones', async () => {
    const o = await observe();
    assert.equal(o.values[0].toString(), 'v0');
    await notify(o, Buffer.from('non-1'), false);
    await notify(o, Buffer.from('con-2'), true); // resolves on node-coap's ACK
    await notify(o, Buffer.from('con-3'), true);
    await notify(o, Buffer.from('non-4'), false);
    await waitFor(() => o.values.length === 5);
    assert.deepEqual(
      o.values.map((v) => v.toString()),
      ['v0', 'non-1', 'con-2', 'con-3', 'non-4'],
    );
    assert.equal(ep.stats().notificationsPending, 0);
    assert.equal(ep.stats().retransmissions, 0);
    o.stream.close();
  });

  it('reports the RST node-coap answers once it closed the stream: CON rejects "reset", NON reaches the hook', async () => {
    const o = await observe();
    const other = await observe();
    assert.ok(!other.registration.token.equals(o.registration.token));
    o.stream.close(); // forgets the token, no deregistration: later notifications get RST
    await assert.rejects(notify(o, Buffer.from('x'), true), (err: CoapRequestError) => err.reason === 'reset');
    assert.equal(resets.length, 1);
    assert.ok(resets[0].token.equals(o.registration.token));
    assert.equal(resets[0].peer.key, o.registration.peer.key);
    await notify(o, Buffer.from('y'), false);
    await waitFor(() => resets.length === 2, 2000, 'RST for the NON notification');
    assert.equal(ep.stats().notificationResets, 2);
    // the other observation is unaffected
    await ep.notify(
      other.registration.peer,
      other.registration.token,
      { code: '2.05', observe: ++seq, payload: Buffer.from('z') },
      { confirmable: true },
    );
    await waitFor(() => other.values.length === 2);
    assert.equal(other.values[1].toString(), 'z');
    other.stream.close();
  });

  it('sends a large value in Block2; node-coap fetches the rest from the kept body', async () => {
    const o = await observe();
    const big = bytes(3000, 11);
    const before = requests.length;
    await notify(o, big, true);
    await waitFor(() => o.values.length === 2, 5000, 'the reassembled notification');
    assert.equal(o.values[1].length, big.length);
    assert.ok(o.values[1].equals(big));
    assert.equal(requests.length, before, 'follow-ups served without the handler');
    await notify(o, Buffer.from('small'), false);
    await waitFor(() => o.values.length === 3);
    assert.equal(o.values[2].toString(), 'small');
    o.stream.close();
  });
});
