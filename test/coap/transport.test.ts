import { strict as assert } from 'node:assert';
import * as dgram from 'node:dgram';
import { MemoryNetwork } from '../../lib/transport/memory';
import { normaliseAddress, peerKey, toPeer } from '../../lib/transport/peer';
import type { Peer } from '../../lib/transport/types';
import { UdpTransport } from '../../lib/transport/udp';
import { sleep, waitFor } from './helpers';

describe('transport: addresses', () => {
  it('normalises IPv4-mapped addresses and builds keys', () => {
    assert.equal(normaliseAddress('::ffff:1.2.3.4'), '1.2.3.4');
    assert.equal(normaliseAddress('::FFFF:10.0.0.1'), '10.0.0.1');
    assert.equal(normaliseAddress('::1'), '::1');
    assert.equal(normaliseAddress('1.2.3.4'), '1.2.3.4');
    assert.equal(normaliseAddress('fe80::1'), 'fe80::1');
    assert.equal(peerKey('1.2.3.4', 5683), '1.2.3.4:5683');
    assert.equal(peerKey('::1', 5683), '[::1]:5683');
    assert.deepEqual(toPeer({ address: '::ffff:127.0.0.1', port: 1 }), {
      address: '127.0.0.1',
      port: 1,
      key: '127.0.0.1:1',
    });
  });
});

describe('transport: UdpTransport', () => {
  it('binds dual-stack by default, normalises IPv4 peers, replies to them', async () => {
    const t = new UdpTransport({ port: 0 });
    const addr = await t.start();
    assert.ok(addr.port > 0);
    const got: Array<{ data: string; peer: Peer }> = [];
    t.onDatagram((data, peer) => {
      got.push({ data: data.toString(), peer });
      t.send(Buffer.from('pong'), peer);
    });
    const c = dgram.createSocket('udp4');
    const replies: string[] = [];
    c.on('message', (m) => replies.push(m.toString()));
    await new Promise<void>((r) => c.bind(0, '127.0.0.1', () => r()));
    c.send('ping', addr.port, '127.0.0.1');
    await waitFor(() => replies.length === 1, 2000, 'pong');
    assert.equal(got[0].peer.address, '127.0.0.1');
    assert.equal(got[0].peer.key, `127.0.0.1:${c.address().port}`);
    assert.equal(replies[0], 'pong');
    await new Promise<void>((r) => c.close(() => r()));
    await t.close();
  });

  it('talks IPv6 with [addr]:port keys', async () => {
    const t = new UdpTransport({ address: '::1', port: 0 });
    let addr;
    try {
      addr = await t.start();
    } catch {
      await t.close();
      return; // no IPv6 loopback here
    }
    const got: Peer[] = [];
    t.onDatagram((_d, p) => got.push(p));
    const c = dgram.createSocket('udp6');
    await new Promise<void>((r) => c.bind(0, '::1', () => r()));
    c.send('x', addr.port, '::1');
    await waitFor(() => got.length === 1);
    assert.equal(got[0].key, `[::1]:${c.address().port}`);
    await new Promise<void>((r) => c.close(() => r()));
    await t.close();
  });

  it('frees the port on close (rebinding right after works)', async () => {
    const t1 = new UdpTransport({ address: '0.0.0.0', port: 0 });
    const { port } = await t1.start();
    await t1.close();
    const t2 = new UdpTransport({ address: '0.0.0.0', port });
    assert.equal((await t2.start()).port, port);
    await t2.close();
    const t3 = new UdpTransport({ port });
    assert.equal((await t3.start()).port, port);
    await t3.close();
  });

  it('rejects start on EADDRINUSE and reports socket errors via onError instead of throwing', async () => {
    const t1 = new UdpTransport({ address: '127.0.0.1', port: 0 });
    const { port } = await t1.start();
    const t2 = new UdpTransport({ address: '127.0.0.1', port });
    await assert.rejects(t2.start(), /EADDRINUSE/);
    await t2.close();
    const errors: Error[] = [];
    t1.onError = (e) => errors.push(e);
    t1.send(Buffer.from('x'), { address: '::1', port: 9 }); // IPv6 target from an IPv4 socket
    t1.send(Buffer.from('x'), { address: '127.0.0.1', port: 0 }); // invalid port
    // the send errors come back from the socket asynchronously
    await waitFor(() => errors.length >= 1, 5000, 'the send errors');
    await t1.close();
    t1.send(Buffer.from('x'), { address: '127.0.0.1', port: 9 }); // after close: ignored
  });

  it('adopts an existing socket', async () => {
    const s = dgram.createSocket('udp4');
    const t = new UdpTransport({ socket: s, address: '127.0.0.1' });
    const a = await t.start();
    assert.equal(a.address, '127.0.0.1');
    await t.close();
  });
});

describe('transport: MemoryNetwork', () => {
  it('delivers, loses deterministically by seed, duplicates and reorders', async () => {
    const run = async (seed: number) => {
      const net = new MemoryNetwork({ seed, loss: 0.3 });
      const a = net.createTransport();
      const b = net.createTransport();
      await a.start();
      await b.start();
      const got: number[] = [];
      b.onDatagram((d) => got.push(d[0]));
      for (let i = 0; i < 100; i++) a.send(Buffer.from([i]), b.peer);
      await sleep(5);
      net.close();
      return got;
    };
    const g1 = await run(42);
    const g2 = await run(42);
    assert.deepEqual(g1, g2);
    assert.ok(g1.length > 50 && g1.length < 90, `lost ~30% (${g1.length})`);

    const net = new MemoryNetwork({ seed: 3, duplicate: 1 });
    const a = net.createTransport();
    const b = net.createTransport();
    await a.start();
    await b.start();
    const got: number[] = [];
    b.onDatagram((d) => got.push(d[0]));
    a.send(Buffer.from([1]), b.peer);
    await sleep(5);
    assert.deepEqual(got, [1, 1]);
    net.conditions = { reorder: 0.5, delayMs: 1 };
    got.length = 0;
    for (let i = 0; i < 50; i++) a.send(Buffer.from([i]), b.peer);
    await waitFor(() => got.length === 50);
    assert.notDeepEqual(
      got,
      [...got].sort((x, y) => x - y),
    );
    assert.ok(net.stats.reordered > 0);
    net.close();
  });
});

describe('transport: isDottedQuad', () => {
  it('accepts exactly the IPv4 literals isIP accepts', async () => {
    const { isIP } = await import('node:net');
    const { isDottedQuad } = await import('../../lib/transport/udp');
    for (const a of [
      '1.2.3.4',
      '0.0.0.0',
      '255.255.255.255',
      '127.0.0.1',
      '10.0.0.10',
      '256.1.1.1',
      '1.2.3',
      '1.2.3.4.5',
      '01.2.3.4',
      '1..3.4',
      '::1',
      'a.b.c.d',
      '1.2.3.4 ',
      '',
      '1.2.3.04',
    ])
      assert.equal(isDottedQuad(a), isIP(a) === 4, a);
  });
});
