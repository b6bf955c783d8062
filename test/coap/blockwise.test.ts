import { strict as assert } from 'node:assert';
import { parse } from 'coap-packet';
import { decodeBlock, type IncomingRequest } from '../../lib/coap';
import { bytes, endpoints, opt, RawPeer, uint, uintBuf, waitFor } from './helpers';

describe('CoapEndpoint: block-wise transfers (RFC 7959)', () => {
  it('moves a 100 KB body both ways over a network losing 10% of datagrams', async function () {
    this.timeout(60000);
    const s = await endpoints({ loss: 0.1, seed: 1234 }, { maxRetransmit: 6 }, { maxRetransmit: 6 });
    try {
      const body = bytes(100 * 1024, 3);
      const reply = bytes(100 * 1024 + 17, 4);
      const seen: IncomingRequest[] = [];
      s.server.setRequestHandler((req) => {
        seen.push(req);
        if (req.method === 'PUT') return { code: '2.04' };
        return { code: '2.05', contentFormat: 42, payload: reply };
      });
      const put = await s.client.request(s.serverPeer, {
        method: 'PUT',
        pathSegments: ['5', '0', '0'],
        contentFormat: 42,
        payload: body,
      });
      assert.equal(put.code, '2.04');
      assert.equal(seen.length, 1, 'the handler sees one reassembled request');
      assert.equal(seen[0].payload.length, body.length);
      assert.ok(seen[0].payload.equals(body));
      assert.equal(seen[0].contentFormat, 42);
      assert.deepEqual(seen[0].pathSegments, ['5', '0', '0']);
      const get = await s.client.request(s.serverPeer, { method: 'GET', pathSegments: ['big'] });
      assert.equal(get.code, '2.05');
      assert.equal(get.contentFormat, 42);
      assert.equal(get.payload.length, reply.length);
      assert.ok(get.payload.equals(reply));
      assert.equal(seen.length, 2, 'follow-up blocks are served from the cache, not the handler');
      assert.equal(
        get.options.find((o) => o.name === 'Block2'),
        undefined,
      );
      assert.ok(s.network.stats.lost > 10);
      assert.equal(s.server.stats().blockTransfers, 0);
      assert.equal(s.server.stats().cachedBlockResponses, 0, 'cache entry dropped after the last block');
    } finally {
      await s.close();
    }
  });

  it('honours a smaller block size asked for by the server in 2.31', async () => {
    const s = await endpoints({}, { blockSize: 1024 }, { blockSize: 256 });
    const sizes: number[] = [];
    s.network.tap = (data, from) => {
      if (from.key === s.clientPeer.key && data[1] === 3) {
        // PUT requests: find Block1 via a re-parse
        const p = parse(data);
        const b = opt(p, 'Block1');
        if (b) sizes.push(decodeBlock(b)!.size);
      }
    };
    try {
      let got: Buffer | undefined;
      s.server.setRequestHandler((req) => {
        got = req.payload;
        return { code: '2.04' };
      });
      const body = bytes(5000);
      const r = await s.client.request(s.serverPeer, { method: 'PUT', pathSegments: ['fw'], payload: body });
      assert.equal(r.code, '2.04');
      assert.ok(got?.equals(body));
      assert.equal(sizes[0], 1024);
      assert.ok(
        sizes.slice(1).every((x) => x === 256),
        `later blocks are 256 bytes: ${sizes}`,
      );
      assert.equal(sizes.length, 1 + Math.ceil((5000 - 1024) / 256));
    } finally {
      await s.close();
    }
  });

  it('answers 4.08 for a missing block and 4.13 for a body over maxBodySize', async () => {
    const s = await endpoints({}, {}, { maxBodySize: 2000 });
    const raw = await RawPeer.create(s.network);
    try {
      s.server.setRequestHandler(() => ({ code: '2.04' }));
      const blk = (num: number, more: boolean, szx = 2) => uintBuf(num * 16 + (more ? 8 : 0) + szx);
      const send = (token: number, num: number, more: boolean, extra: { name: string; value: Buffer }[] = []) =>
        raw.send(s.serverPeer, {
          code: 'PUT',
          confirmable: true,
          token: Buffer.from([token]),
          options: [{ name: 'Uri-Path', value: Buffer.from('x') }, { name: 'Block1', value: blk(num, more) }, ...extra],
          payload: bytes(64, token),
        });
      send(1, 0, true);
      const c1 = await raw.waitFor((m) => m.packet.token[0] === 1);
      assert.equal(c1.packet.code, '2.31');
      assert.deepEqual(decodeBlock(opt(c1.packet, 'Block1')!), { num: 0, more: true, szx: 2, size: 64 });
      send(2, 2, true); // block 1 skipped
      const c2 = await raw.waitFor((m) => m.packet.token[0] === 2);
      assert.equal(c2.packet.code, '4.08');
      send(3, 0, true, [{ name: 'Size1', value: uintBuf(1_000_000) }]);
      const c3 = await raw.waitFor((m) => m.packet.token[0] === 3);
      assert.equal(c3.packet.code, '4.13');
      assert.equal(uint(opt(c3.packet, 'Size1')), 2000);
      // our client gets the 4.13 as a response (not an error)
      const r = await s.client.request(s.serverPeer, {
        method: 'PUT',
        pathSegments: ['x'],
        payload: bytes(5000),
        blockSize: 512,
      });
      assert.equal(r.code, '4.13');
      assert.equal(s.server.stats().blockTransfers, 0);
    } finally {
      await raw.close();
      await s.close();
    }
  });

  it('serves Block2 follow-ups from the cache, or statelessly from the handler, and honours a smaller szx', async () => {
    const s = await endpoints();
    const raw = await RawPeer.create(s.network);
    try {
      let calls = 0;
      const body = bytes(3000, 9);
      s.server.setRequestHandler(() => {
        calls++;
        return { code: '2.05', payload: body };
      });
      const get = (token: number, block2?: Buffer) =>
        raw.send(s.serverPeer, {
          code: 'GET',
          confirmable: true,
          token: Buffer.from([token]),
          options: [
            { name: 'Uri-Path', value: Buffer.from('r') },
            ...(block2 ? [{ name: 'Block2' as const, value: block2 }] : []),
          ],
        });
      get(1);
      const b0 = await raw.waitFor((m) => m.packet.token[0] === 1);
      assert.deepEqual(decodeBlock(opt(b0.packet, 'Block2')!), { num: 0, more: true, szx: 6, size: 1024 });
      assert.equal(uint(opt(b0.packet, 'Size2')), 3000);
      assert.ok(b0.packet.payload.equals(body.subarray(0, 1024)));
      get(2, uintBuf(1 * 16 + 6));
      const b1 = await raw.waitFor((m) => m.packet.token[0] === 2);
      assert.ok(b1.packet.payload.equals(body.subarray(1024, 2048)));
      get(3, uintBuf(2 * 16 + 6));
      const b2 = await raw.waitFor((m) => m.packet.token[0] === 3);
      assert.deepEqual(decodeBlock(opt(b2.packet, 'Block2')!), { num: 2, more: false, szx: 6, size: 1024 });
      assert.ok(b2.packet.payload.equals(body.subarray(2048)));
      assert.equal(calls, 1);
      // cache gone after the last block: a late request for block 1 asks the handler again
      get(4, uintBuf(1 * 16 + 6));
      const late = await raw.waitFor((m) => m.packet.token[0] === 4);
      assert.ok(late.packet.payload.equals(body.subarray(1024, 2048)));
      assert.equal(calls, 2);
      // early negotiation of a smaller size: Block2 NUM=0 SZX=2 (64 bytes)
      get(5, uintBuf(2));
      const small = await raw.waitFor((m) => m.packet.token[0] === 5);
      assert.equal(small.packet.payload.length, 64);
      assert.deepEqual(decodeBlock(opt(small.packet, 'Block2')!), { num: 0, more: true, szx: 2, size: 64 });
      await waitFor(() => s.server.stats().cachedBlockResponses === 1);
    } finally {
      await raw.close();
      await s.close();
    }
  });

  it('bounds Block1 reassemblies per peer and in total', async () => {
    const s = await endpoints({}, {}, { maxBlockTransfers: 5, maxBlockTransfersPerPeer: 2 });
    const peers = await Promise.all([1, 2, 3, 4].map((i) => RawPeer.create(s.network, `10.0.2.${i}`)));
    try {
      s.server.setRequestHandler(() => ({ code: '2.04' }));
      for (const p of peers)
        for (let i = 0; i < 10; i++)
          p.send(s.serverPeer, {
            code: 'PUT',
            confirmable: true,
            token: Buffer.from([i]),
            options: [
              { name: 'Uri-Path', value: Buffer.from(`p${i}`) },
              { name: 'Block1', value: uintBuf(8 + 2) },
            ],
            payload: bytes(64),
          });
      await waitFor(() => peers.every((p) => p.received.length === 10));
      const st = s.server.stats();
      assert.ok(st.blockTransfers <= 5, `${st.blockTransfers} transfers`);
      const codes = peers.flatMap((p) => p.received.map((m) => m.packet.code));
      assert.ok(codes.includes('5.03'), 'refused beyond the total');
      assert.ok(codes.filter((c) => c === '2.31').length >= 5);
    } finally {
      for (const p of peers) await p.close();
      await s.close();
    }
  });
});
