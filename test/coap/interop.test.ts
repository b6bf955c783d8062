import { strict as assert } from 'node:assert';
import type { AddressInfo } from 'node:net';
import type { Socket } from 'node:dgram';
import * as coap from 'coap';
import { CoapEndpoint, type IncomingRequest, type IncomingResponse } from '../../lib/coap';
import { UdpTransport } from '../../lib/transport/udp';
import { bytes, sleep, waitFor } from './helpers';

type CoapServer = ReturnType<typeof coap.createServer>;
type NodeCoapIncoming = InstanceType<typeof coap.IncomingMessage>;
type NodeCoapOutgoing = InstanceType<typeof coap.OutgoingMessage>;

function listen(server: CoapServer, address: string): Promise<number> {
  return new Promise((resolve, reject) => {
    server.listen(0, address, (err?: Error) => {
      if (err) reject(err);
      else resolve(((server as unknown as { _sock: Socket })._sock.address() as AddressInfo).port);
    });
  });
}

function closeServer(server: CoapServer): Promise<void> {
  return new Promise((resolve) => server.close(() => resolve()));
}

/** node-coap agents close their socket by themselves once idle; close() then never calls back. */
function closeAgent(agent: InstanceType<typeof coap.Agent>): Promise<void> {
  return new Promise((resolve) => {
    if ((agent as unknown as { _sock: unknown })._sock == null) return resolve();
    try {
      agent.close(() => resolve());
    } catch {
      resolve(); // socket already closed
    }
  });
}

/** One node-coap request through `agent`; resolves with the response. */
function nodeCoapRequest(
  agent: InstanceType<typeof coap.Agent>,
  params: Record<string, unknown>,
  payload?: Buffer,
  setup?: (req: NodeCoapOutgoing) => void,
): Promise<NodeCoapIncoming> {
  return new Promise((resolve, reject) => {
    const req = coap.request({ agent, ...params } as Parameters<typeof coap.request>[0]);
    setup?.(req);
    req.on('response', (res: NodeCoapIncoming) => resolve(res));
    req.on('error', reject);
    req.on('timeout', reject);
    if (payload) req.write(payload);
    req.end();
  });
}

describe('interop with node-coap over UDP loopback', function () {
  this.timeout(20000);

  describe('node-coap server, our endpoint as the client', () => {
    let server: CoapServer;
    let port: number;
    let ep: CoapEndpoint;
    const big = bytes(5000, 5);
    const streams = new Map<string, NodeCoapOutgoing>();
    const finished: string[] = [];
    let uploaded: Buffer | undefined;

    before(async () => {
      server = coap.createServer({ type: 'udp4' }, (req: NodeCoapIncoming, res: NodeCoapOutgoing) => {
        const url = req.url.split('?')[0];
        if (url === '/hello') {
          res.setOption('Content-Format', 'text/plain');
          res.end('world');
        } else if (url === '/echo') {
          res.code = '2.04';
          res.end(Buffer.concat([Buffer.from('echo:'), req.payload]));
        } else if (url === '/big') {
          res.end(big);
        } else if (url === '/upload') {
          uploaded = req.payload;
          res.code = '2.04';
          res.end();
        } else if (url === '/obs') {
          const key =
            req.rsinfo.port + ':' + (req as unknown as { _packet: { token: Buffer } })._packet.token.toString('hex');
          const observe = req.headers.Observe;
          if (observe === 0) {
            streams.set(key, res);
            let n = 0;
            res.write(`n${n++}`);
            const timer = setInterval(() => res.write(`n${n++}`), 15);
            res.on('finish', () => {
              clearInterval(timer);
              finished.push(key);
            });
          } else {
            // Observe=1 (deregistration) or a plain GET
            streams.get(key)?.end();
            streams.delete(key);
            res.end('deregistered');
          }
        } else {
          res.code = '4.04';
          res.end();
        }
      });
      port = await listen(server, '127.0.0.1');
      ep = new CoapEndpoint(new UdpTransport({ port: 0 }), { ackTimeoutMs: 500 });
      await ep.start();
    });

    after(async () => {
      for (const s of streams.values()) s.end();
      await ep.close();
      await closeServer(server);
    });

    it('GET / POST / 4.04', async () => {
      const peer = { address: '127.0.0.1', port };
      const r1 = await ep.request(peer, { method: 'GET', pathSegments: ['hello'] });
      assert.equal(r1.code, '2.05');
      assert.equal(r1.payload.toString(), 'world');
      assert.equal(r1.contentFormat, 0);
      const r2 = await ep.request(peer, { method: 'POST', pathSegments: ['echo'], payload: Buffer.from('abc') });
      assert.equal(r2.code, '2.04');
      assert.equal(r2.payload.toString(), 'echo:abc');
      const r3 = await ep.request(peer, { method: 'GET', pathSegments: ['nope'] });
      assert.equal(r3.code, '4.04');
    });

    it('fetches a Block2 response and sends a Block1 request', async () => {
      const peer = { address: '127.0.0.1', port };
      const r = await ep.request(peer, { method: 'GET', pathSegments: ['big'] });
      assert.equal(r.code, '2.05');
      assert.equal(r.payload.length, big.length);
      assert.ok(r.payload.equals(big));
      const body = bytes(3000, 8);
      const u = await ep.request(peer, { method: 'PUT', pathSegments: ['upload'], payload: body, blockSize: 512 });
      assert.equal(u.code, '2.04');
      assert.ok(uploaded?.equals(body), `server got ${uploaded?.length} bytes`);
    });

    it('observes a node-coap resource and cancels actively and passively', async () => {
      const peer = { address: '127.0.0.1', port };
      const got: IncomingResponse[] = [];
      const { response, observation } = await ep.observe(peer, { method: 'GET', pathSegments: ['obs'] }, (n) =>
        got.push(n),
      );
      assert.equal(response.payload.toString(), 'n0');
      assert.ok(observation);
      await waitFor(() => got.length >= 3, 3000, 'notifications');
      const seqs = got.map((n) => n.observe!);
      assert.deepEqual(
        seqs,
        [...seqs].sort((a, b) => a - b),
      );
      assert.deepEqual(
        got.slice(0, 3).map((n) => n.payload.toString()),
        ['n1', 'n2', 'n3'],
      );
      const res = (await observation.cancel('active')) as IncomingResponse;
      assert.equal(res.payload.toString(), 'deregistered');
      await waitFor(() => finished.length === 1, 2000, 'stream ended');
      const count = got.length;
      await sleep(50);
      assert.ok(got.length <= count + 1);

      const got2: string[] = [];
      const second = await ep.observe(peer, { method: 'GET', pathSegments: ['obs'] }, (n) =>
        got2.push(n.payload.toString()),
      );
      await waitFor(() => got2.length >= 2);
      await second.observation!.cancel('passive');
      // the next notification gets our RST, which makes node-coap end the stream
      await waitFor(() => finished.length === 2, 3000, 'stream ended by RST');
    });
  });

  describe('node-coap agent as the client, our endpoint as the server', () => {
    let ep: CoapEndpoint;
    let port: number;
    let agent: InstanceType<typeof coap.Agent>;
    const seen: IncomingRequest[] = [];
    const big = bytes(5000, 6);

    before(async () => {
      ep = new CoapEndpoint(new UdpTransport({ port: 0 }), { separateResponseAfterMs: 50 });
      ep.setRequestHandler(async (req) => {
        seen.push(req);
        const path = req.pathSegments.join('/');
        if (path === 'hello')
          return { code: '2.05', payload: Buffer.from('hi ' + req.query.join('&')), contentFormat: 0 };
        if (path === 'big') return { code: '2.05', payload: big };
        if (path === 'upload') return { code: '2.04', payload: Buffer.from(String(req.payload.length)) };
        if (path === 'slow') {
          await sleep(150);
          return { code: '2.05', payload: Buffer.from('slow') };
        }
        if (path === 'rd') return { code: '2.01', locationPath: ['rd', 'x1'] };
        return { code: '4.04' };
      });
      port = (await ep.start()).port;
      agent = new coap.Agent({ type: 'udp4' });
    });

    after(async () => {
      await closeAgent(agent);
      await ep.close();
    });

    it('serves GET with query and POST with Location-Path to an IPv4 client on the dual-stack socket', async () => {
      const res = await nodeCoapRequest(agent, { hostname: '127.0.0.1', port, pathname: '/hello', query: 'a=1&b=2' });
      assert.equal(res.code, '2.05');
      assert.equal(res.payload.toString(), 'hi a=1&b=2');
      const last = seen[seen.length - 1];
      assert.equal(last.peer.address, '127.0.0.1');
      assert.match(last.peer.key, /^127\.0\.0\.1:\d+$/);
      const reg = await nodeCoapRequest(
        agent,
        { hostname: '127.0.0.1', port, pathname: '/rd', method: 'POST', query: 'ep=dev1' },
        Buffer.from('</1/0>'),
      );
      assert.equal(reg.code, '2.01');
      const options = (reg as unknown as { _packet: { options: Array<{ name: string; value: Buffer }> } })._packet
        .options;
      const loc = options.filter((o) => o.name === 'Location-Path').map((o) => o.value.toString());
      assert.deepEqual(loc, ['rd', 'x1']);
    });

    it('serves a Block2 response that node-coap reassembles', async () => {
      const before = seen.length;
      const res = await nodeCoapRequest(agent, { hostname: '127.0.0.1', port, pathname: '/big' });
      assert.equal(res.code, '2.05');
      assert.equal(res.payload.length, big.length);
      assert.ok(res.payload.equals(big));
      assert.equal(seen.length - before, 1, 'handler called once');
    });

    it('reassembles a Block1 upload from node-coap', async () => {
      const body = bytes(2000, 2);
      const res = await nodeCoapRequest(
        agent,
        { hostname: '127.0.0.1', port, pathname: '/upload', method: 'PUT' },
        body,
        (req) => req.setOption('Block1', Buffer.of(0x2)),
      );
      assert.equal(res.code, '2.04');
      assert.equal(res.payload.toString(), '2000');
      assert.ok(seen[seen.length - 1].payload.equals(body));
    });

    it('sends a separate response for a slow handler', async () => {
      const res = await nodeCoapRequest(agent, { hostname: '127.0.0.1', port, pathname: '/slow' });
      assert.equal(res.code, '2.05');
      assert.equal(res.payload.toString(), 'slow');
      await waitFor(() => ep.stats().separateResponsesPending === 0);
    });

    it('serves an IPv6 client with an [addr]:port key', async () => {
      const agent6 = new coap.Agent({ type: 'udp6' });
      try {
        const res = await nodeCoapRequest(agent6, { hostname: '::1', port, pathname: '/hello' });
        assert.equal(res.code, '2.05');
        assert.match(seen[seen.length - 1].peer.key, /^\[::1\]:\d+$/);
      } finally {
        await closeAgent(agent6);
      }
    });
  });
});
