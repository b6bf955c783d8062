/**
 * Large transfers (1 MiB Block1 writes and Block2 reads) and how their time limits scale with size:
 * without `timeoutMs` every block re-arms the no-progress timer; `requestTimeoutFor()` gives a hard
 * limit scaled to the payload size.
 */
import { strict as assert } from 'node:assert';
import {
  CoapEndpoint,
  CoapRequestError,
  maxTransmitWait,
  requestTimeoutFor,
  type CoapEndpointOptions,
  type IncomingRequest,
} from '../../lib/coap';
import { UdpTransport } from '../../lib/transport/udp';
import { bytes, endpoints } from './helpers';

const MiB = 1024 * 1024;

/** A server handler that stores PUT bodies and serves them back on GET. */
function store(server: CoapEndpoint): { puts: IncomingRequest[]; data: Map<string, Buffer> } {
  const puts: IncomingRequest[] = [];
  const data = new Map<string, Buffer>();
  server.setRequestHandler((req) => {
    const key = req.pathSegments.join('/');
    if (req.method === 'PUT') {
      puts.push(req);
      data.set(key, req.payload);
      return { code: '2.04' };
    }
    const body = data.get(key);
    return body === undefined ? { code: '4.04' } : { code: '2.05', contentFormat: 42, payload: body };
  });
  return { puts, data };
}

function rate(bytesMoved: number, ms: number): string {
  return `${(ms / 1000).toFixed(2)} s, ${Math.round(bytesMoved / 1024 / (ms / 1000))} KB/s`;
}

describe('requestTimeoutFor()', () => {
  it('budgets MAX_TRANSMIT_WAIT plus a per-block share of it, scaling with the number of blocks', () => {
    assert.equal(maxTransmitWait(), 93_000);
    // defaults: 1024-byte blocks, 2000 ms * 1.5 * (2^2 - 1) = 9 s per block
    assert.equal(requestTimeoutFor(0), 93_000 + 9_000);
    assert.equal(requestTimeoutFor(1024), 93_000 + 9_000);
    assert.equal(requestTimeoutFor(1025), 93_000 + 2 * 9_000);
    assert.equal(requestTimeoutFor(MiB), 93_000 + 1024 * 9_000); // 2 h 35 min for a 1 MiB firmware image
    assert.ok(requestTimeoutFor(MiB) > 120_000 * 70, 'far beyond the fixed 2 minutes');
    assert.equal(requestTimeoutFor(MiB, { blockSize: 512 }), 93_000 + 2048 * 9_000);
    // retransmitsPerBlock = maxRetransmit: the worst case, MAX_TRANSMIT_WAIT for every block
    assert.equal(requestTimeoutFor(4096, { retransmitsPerBlock: 4 }), 93_000 + 4 * 93_000);
    assert.equal(requestTimeoutFor(4096, { retransmitsPerBlock: 0 }), 93_000 + 4 * 3_000);
    // an endpoint's options fit as they are
    const o: Partial<CoapEndpointOptions> = {
      ackTimeoutMs: 20,
      ackRandomFactor: 1.5,
      maxRetransmit: 6,
      blockSize: 256,
    };
    assert.equal(requestTimeoutFor(2560, o), Math.ceil(20 * 127 * 1.5 + 10 * 20 * 1.5 * 3));
    assert.throws(() => requestTimeoutFor(-1), RangeError);
    assert.throws(() => requestTimeoutFor(10, { blockSize: 2048 }), RangeError);
  });
});

describe('CoapEndpoint: large transfers', function () {
  this.timeout(60000);

  it('re-arms the no-progress timer with every block: a transfer may take far longer than requestTimeoutMs', async () => {
    // ~6 ms per round trip, 125 blocks of 16 bytes each way: ~0.8 s per transfer against a 150 ms limit
    const opts = { ackTimeoutMs: 50, requestTimeoutMs: 150, blockSize: 16 };
    const s = await endpoints({ delayMs: 3 }, opts, opts);
    try {
      const { data } = store(s.server);
      const body = bytes(2000, 1);
      const t0 = performance.now();
      const put = await s.client.request(s.serverPeer, { method: 'PUT', pathSegments: ['slow'], payload: body });
      const putMs = performance.now() - t0;
      assert.equal(put.code, '2.04');
      assert.ok(data.get('slow')?.equals(body));
      const t1 = performance.now();
      const get = await s.client.request(s.serverPeer, { method: 'GET', pathSegments: ['slow'] });
      const getMs = performance.now() - t1;
      assert.ok(get.payload.equals(body));
      assert.ok(putMs > 3 * 150 && getMs > 3 * 150, `Block1 ${putMs} ms, Block2 ${getMs} ms`);
      // a hard limit (timeoutMs) of the same 150 ms does cut them short
      await assert.rejects(
        s.client.request(s.serverPeer, { method: 'PUT', pathSegments: ['x'], payload: body, timeoutMs: 150 }),
        (err: CoapRequestError) => err.reason === 'timeout',
      );
      await assert.rejects(
        s.client.request(s.serverPeer, { method: 'GET', pathSegments: ['slow'], timeoutMs: 150 }),
        (err: CoapRequestError) => err.reason === 'timeout',
      );
    } finally {
      await s.close();
    }
  });

  it('the per-address rate limit counts exchanges, not the blocks of one in progress', async () => {
    const s = await endpoints({}, { blockSize: 16 }, { maxRequestsPerSecondPerAddress: 20 });
    try {
      const { data } = store(s.server);
      const body = bytes(16 * 300, 2); // 300 blocks each way at far more than 20 per second
      const t0 = performance.now();
      const put = await s.client.request(s.serverPeer, { method: 'PUT', pathSegments: ['a'], payload: body });
      assert.equal(put.code, '2.04');
      assert.ok(data.get('a')?.equals(body));
      const get = await s.client.request(s.serverPeer, { method: 'GET', pathSegments: ['a'] });
      assert.ok(get.payload.equals(body));
      assert.ok(performance.now() - t0 < 1000, 'no stall');
      assert.equal(s.server.stats().rateLimited, 0);
      // new exchanges are still limited
      const burst = await Promise.allSettled(
        Array.from({ length: 40 }, () =>
          s.client.request(s.serverPeer, { method: 'GET', pathSegments: ['a'], confirmable: false, timeoutMs: 300 }),
        ),
      );
      assert.ok(s.server.stats().rateLimited > 0);
      assert.ok(burst.some((r) => r.status === 'rejected'));
    } finally {
      await s.close();
    }
  });

  it('writes (Block1) and reads (Block2) 1 MiB over a memory network losing 5% each way', async () => {
    // maxRetransmit 6: a block is lost for good only after 7 failed round trips (p ~ 1e-7)
    const opts = { ackTimeoutMs: 20, maxRetransmit: 6 };
    const s = await endpoints({ loss: 0.05, seed: 20240601 }, opts, opts);
    try {
      const { puts } = store(s.server);
      const body = bytes(MiB, 5);
      // the size-scaled hard limit does not cut the transfer short
      const timeoutMs = requestTimeoutFor(body.length, s.client.options);
      let t0 = performance.now();
      const put = await s.client.request(s.serverPeer, {
        method: 'PUT',
        pathSegments: ['fw'],
        payload: body,
        contentFormat: 42,
        timeoutMs,
      });
      const putMs = performance.now() - t0;
      assert.equal(put.code, '2.04');
      assert.equal(puts.length, 1, 'the handler sees one reassembled request');
      assert.ok(puts[0].payload.equals(body), 'the bytes match');
      const lostWriting = s.network.stats.lost;
      t0 = performance.now();
      const get = await s.client.request(s.serverPeer, { method: 'GET', pathSegments: ['fw'] });
      const getMs = performance.now() - t0;
      assert.equal(get.code, '2.05');
      assert.equal(get.payload.length, MiB);
      assert.ok(get.payload.equals(body), 'the bytes match');
      const st = s.network.stats;
      assert.ok(lostWriting > 50 && st.lost - lostWriting > 50, `lost ${lostWriting} + ${st.lost - lostWriting}`);
      console.log(
        `      memory, 5% loss: Block1 write ${rate(MiB, putMs)}, Block2 read ${rate(MiB, getMs)}; ` +
          `${st.lost} of ${st.sent} datagrams lost, ${s.client.stats().retransmissions} retransmissions`,
      );
      assert.equal(s.server.stats().blockTransfers, 0);
      assert.equal(s.server.stats().cachedBlockResponses, 0);
    } finally {
      await s.close();
    }
  });

  it('writes (Block1) and reads (Block2) 1 MiB over UDP loopback', async () => {
    const server = new CoapEndpoint(new UdpTransport({ address: '127.0.0.1', port: 0 }));
    const client = new CoapEndpoint(new UdpTransport({ address: '127.0.0.1', port: 0 }));
    try {
      const serverAddr = await server.start();
      await client.start();
      const { puts } = store(server);
      const body = bytes(MiB, 6);
      let t0 = performance.now();
      const put = await client.request(serverAddr, { method: 'PUT', pathSegments: ['fw'], payload: body });
      const putMs = performance.now() - t0;
      assert.equal(put.code, '2.04');
      assert.ok(puts[0].payload.equals(body), 'the bytes match');
      t0 = performance.now();
      const get = await client.request(serverAddr, { method: 'GET', pathSegments: ['fw'] });
      const getMs = performance.now() - t0;
      assert.ok(get.payload.equals(body), 'the bytes match');
      console.log(`      UDP loopback: Block1 write ${rate(MiB, putMs)}, Block2 read ${rate(MiB, getMs)}`);
      assert.equal(client.stats().retransmissions, 0);
    } finally {
      await client.close();
      await server.close();
    }
  });
});
