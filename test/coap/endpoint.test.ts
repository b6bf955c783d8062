import { strict as assert } from 'node:assert';
import { generate } from 'coap-packet';
import { CoapEndpoint, CoapRequestError, type IncomingRequest } from '../../lib/coap';
import { MemoryNetwork } from '../../lib/transport/memory';
import { endpoints, FAST, opt, RawPeer, sleep, uint, waitFor } from './helpers';

describe('CoapEndpoint: requests and responses', () => {
  it('serves a request and returns the response (piggybacked)', async () => {
    const s = await endpoints();
    try {
      let seen: IncomingRequest | undefined;
      s.server.setRequestHandler((req) => {
        seen = req;
        return { code: '2.01', locationPath: ['rd', 'abc'], payload: Buffer.from('ok'), contentFormat: 0 };
      });
      const res = await s.client.request(s.serverPeer, {
        method: 'POST',
        pathSegments: ['rd'],
        query: ['ep=dev1', 'lt=300'],
        contentFormat: 40,
        payload: Buffer.from('</1/0>'),
      });
      assert.equal(res.code, '2.01');
      assert.equal(res.payload.toString(), 'ok');
      assert.equal(res.contentFormat, 0);
      assert.deepEqual(
        res.options.filter((o) => o.name === 'Location-Path').map((o) => o.value.toString()),
        ['rd', 'abc'],
      );
      assert.equal(res.peer.key, '10.0.0.2:5683');
      assert.ok(res.rttMs >= 0);
      assert.ok(seen);
      assert.equal(seen.method, 'POST');
      assert.equal(seen.code, '0.02');
      assert.equal(seen.confirmable, true);
      assert.deepEqual(seen.pathSegments, ['rd']);
      assert.deepEqual(seen.query, ['ep=dev1', 'lt=300']);
      assert.equal(seen.contentFormat, 40);
      assert.equal(seen.payload.toString(), '</1/0>');
      assert.equal(seen.peer.key, '10.0.0.1:5683');
      assert.equal(s.client.stats().outgoingRequests, 0);
    } finally {
      await s.close();
    }
  });

  it('sends NON requests and gets NON responses', async () => {
    const s = await endpoints();
    try {
      s.server.setRequestHandler((req) => ({ code: '2.05', payload: Buffer.from(String(req.confirmable)) }));
      const res = await s.client.request(s.serverPeer, { method: 'GET', pathSegments: ['x'], confirmable: false });
      assert.equal(res.payload.toString(), 'false');
    } finally {
      await s.close();
    }
  });

  it('answers 4.04 without a handler, 5.00 when the handler throws or rejects, 4.05 for unknown methods', async () => {
    const s = await endpoints();
    try {
      const r0 = await s.client.request(s.serverPeer, { method: 'GET', pathSegments: ['x'] });
      assert.equal(r0.code, '4.04');
      const errors: unknown[] = [];
      s.server.onError = (e) => errors.push(e);
      s.server.setRequestHandler((req) => {
        if (req.pathSegments[0] === 'sync') throw new Error('boom');
        if (req.pathSegments[0] === 'bad') return { code: 'nonsense' };
        return Promise.reject(new Error('async boom'));
      });
      assert.equal((await s.client.request(s.serverPeer, { method: 'GET', pathSegments: ['sync'] })).code, '5.00');
      assert.equal((await s.client.request(s.serverPeer, { method: 'GET', pathSegments: ['async'] })).code, '5.00');
      assert.equal((await s.client.request(s.serverPeer, { method: 'GET', pathSegments: ['bad'] })).code, '5.00');
      assert.equal(errors.length, 3);
      const raw = await RawPeer.create(s.network);
      raw.send(s.serverPeer, { code: '0.09', confirmable: true, token: Buffer.from([1]) });
      const m = await raw.waitFor((x) => x.packet.ack);
      assert.equal(m.packet.code, '4.05');
      await raw.close();
    } finally {
      await s.close();
    }
  });

  it('rejects unknown critical options with 4.02 and Proxy-Uri with 5.05, ignores unknown elective ones', async () => {
    const s = await endpoints();
    const raw = await RawPeer.create(s.network);
    try {
      let calls = 0;
      s.server.setRequestHandler(() => {
        calls++;
        return { code: '2.05' };
      });
      raw.send(s.serverPeer, {
        code: 'GET',
        confirmable: true,
        token: Buffer.from([1]),
        options: [{ name: '65001', value: Buffer.from([1]) }],
      });
      raw.send(s.serverPeer, {
        code: 'GET',
        confirmable: true,
        token: Buffer.from([2]),
        options: [{ name: 'Proxy-Uri', value: Buffer.from('coap://x') }],
      });
      raw.send(s.serverPeer, {
        code: 'GET',
        confirmable: true,
        token: Buffer.from([3]),
        options: [{ name: '65000', value: Buffer.from([1]) }],
      });
      await waitFor(() => raw.received.length === 3);
      const byToken = (t: number) => raw.received.find((m) => m.packet.token[0] === t)!.packet;
      assert.equal(byToken(1).code, '4.02');
      assert.equal(byToken(2).code, '5.05');
      assert.equal(byToken(3).code, '2.05');
      assert.equal(calls, 1);
    } finally {
      await raw.close();
      await s.close();
    }
  });

  it('RSTs an unparsable CON, ignores unparsable NON and runt datagrams, answers pings with RST', async () => {
    const s = await endpoints();
    const raw = await RawPeer.create(s.network);
    try {
      // CON GET, token length 8 but only 2 token bytes present
      raw.sendRaw(s.serverPeer, Buffer.from([0x48, 0x01, 0x12, 0x34, 0xaa, 0xbb]));
      const rst = await raw.waitFor((m) => m.packet.reset);
      assert.equal(rst.packet.messageId, 0x1234);
      raw.sendRaw(s.serverPeer, Buffer.from([0x58, 0x01, 0x12, 0x35, 0xaa])); // NON, same defect
      raw.sendRaw(s.serverPeer, Buffer.from([0x40, 0x01])); // runt
      raw.sendRaw(s.serverPeer, Buffer.from([0x80, 0x01, 0, 1])); // version 2
      raw.send(s.serverPeer, { code: '0.00', confirmable: true, messageId: 77 }); // ping
      const pong = await raw.waitFor((m) => m.packet.reset && m.packet.messageId === 77);
      assert.ok(pong);
      await sleep(10);
      assert.equal(raw.received.length, 2);
      assert.ok(s.server.stats().dropped >= 3);
    } finally {
      await raw.close();
      await s.close();
    }
  });
});

describe('CoapEndpoint: deduplication', () => {
  it('hands a duplicated CON to the handler once and resends the cached response', async () => {
    const s = await endpoints();
    const raw = await RawPeer.create(s.network);
    try {
      let calls = 0;
      s.server.setRequestHandler(() => ({ code: '2.05', payload: Buffer.from(`call ${++calls}`) }));
      const pkt = generate({ code: 'GET', confirmable: true, messageId: 4242, token: Buffer.from([9, 9]) });
      raw.sendRaw(s.serverPeer, pkt);
      await raw.waitFor(() => true);
      raw.sendRaw(s.serverPeer, pkt);
      raw.sendRaw(s.serverPeer, pkt);
      await waitFor(() => raw.received.length === 3);
      assert.equal(calls, 1);
      assert.deepEqual(raw.received[1].data, raw.received[0].data);
      assert.deepEqual(raw.received[2].data, raw.received[0].data);
      assert.equal(raw.received[0].packet.payload.toString(), 'call 1');
      assert.equal(s.server.stats().duplicates, 2);
      assert.equal(s.server.stats().requestsIn, 1);
      // a NON duplicate is deduplicated too
      const non = generate({ code: 'GET', confirmable: false, messageId: 4243, token: Buffer.from([7]) });
      raw.sendRaw(s.serverPeer, non);
      raw.sendRaw(s.serverPeer, non);
      await waitFor(() => raw.received.length === 5);
      assert.equal(calls, 2);
    } finally {
      await raw.close();
      await s.close();
    }
  });

  it('with every datagram duplicated by the network, each request reaches the handler once', async () => {
    const s = await endpoints({ duplicate: 1, seed: 5 });
    try {
      let calls = 0;
      s.server.setRequestHandler(() => {
        calls++;
        return { code: '2.04' };
      });
      for (let i = 0; i < 20; i++) {
        const r = await s.client.request(s.serverPeer, { method: 'PUT', pathSegments: ['a', String(i)] });
        assert.equal(r.code, '2.04');
      }
      assert.equal(calls, 20);
      assert.ok(s.server.stats().duplicates >= 20);
    } finally {
      await s.close();
    }
  });

  it('a retransmission while the handler still runs gets the empty ACK, then a separate response', async () => {
    const s = await endpoints({}, {}, { separateResponseAfterMs: 1000 });
    const raw = await RawPeer.create(s.network);
    try {
      let calls = 0;
      s.server.setRequestHandler(async () => {
        calls++;
        await sleep(60);
        return { code: '2.05', payload: Buffer.from('late') };
      });
      const pkt = generate({ code: 'GET', confirmable: true, messageId: 555, token: Buffer.from([1, 2, 3]) });
      raw.sendRaw(s.serverPeer, pkt);
      await sleep(10);
      raw.sendRaw(s.serverPeer, pkt);
      const ack = await raw.waitFor((m) => m.packet.ack);
      assert.equal(ack.packet.code, '0.00');
      assert.equal(ack.packet.messageId, 555);
      const res = await raw.waitFor((m) => m.packet.confirmable);
      assert.equal(res.packet.code, '2.05');
      assert.deepEqual(res.packet.token, Buffer.from([1, 2, 3]));
      assert.equal(res.packet.payload.toString(), 'late');
      raw.ack(s.serverPeer, res.packet.messageId);
      await waitFor(() => s.server.stats().separateResponsesPending === 0);
      assert.equal(calls, 1);
    } finally {
      await raw.close();
      await s.close();
    }
  });

  it('bounds dedup state per peer and in total, and expires it', async () => {
    const s = await endpoints({}, {}, { maxDedupEntriesPerPeer: 10, maxDedupEntries: 15, exchangeLifetimeMs: 100 });
    const a = await RawPeer.create(s.network, '10.0.0.8');
    const b = await RawPeer.create(s.network, '10.0.0.9');
    try {
      s.server.setRequestHandler(() => ({ code: '2.05' }));
      for (let i = 0; i < 30; i++) a.send(s.serverPeer, { code: 'GET', confirmable: true, token: Buffer.from([i]) });
      await waitFor(() => a.received.length === 30);
      assert.equal(s.server.stats().dedupEntries, 10);
      for (let i = 0; i < 30; i++) b.send(s.serverPeer, { code: 'GET', confirmable: true, token: Buffer.from([i]) });
      await waitFor(() => b.received.length === 30);
      assert.equal(s.server.stats().dedupEntries, 15);
      await waitFor(() => s.server.stats().dedupEntries === 0, 1000, 'expiry');
      assert.equal(s.server.stats().peers, 0);
    } finally {
      await a.close();
      await b.close();
      await s.close();
    }
  });
});

describe('CoapEndpoint: retransmission', () => {
  it('retransmits a CON with doubling timeouts and gives up promptly with "timeout"', async () => {
    const network = new MemoryNetwork();
    const t = network.createTransport();
    const ep = new CoapEndpoint(t, { ackTimeoutMs: 20, ackRandomFactor: 1.5, maxRetransmit: 4 });
    await ep.start();
    const silent = await RawPeer.create(network);
    try {
      const started = performance.now();
      await assert.rejects(
        ep.request(silent.peer, { method: 'GET', pathSegments: ['x'] }),
        (e: unknown) => e instanceof CoapRequestError && e.reason === 'timeout',
      );
      const elapsed = performance.now() - started;
      const times = silent.received.map((m) => m.at - started);
      assert.equal(times.length, 5, 'one transmission + 4 retransmissions');
      assert.ok(silent.received.every((m) => m.packet.messageId === silent.received[0].packet.messageId));
      const gaps = times.slice(1).map((x, i) => x - times[i]);
      const initial = gaps[0];
      assert.ok(initial >= 19 && initial <= 36, `initial timeout ${initial} in [20, 30]`);
      for (let i = 1; i < gaps.length; i++) {
        const ratio = gaps[i] / gaps[i - 1];
        assert.ok(ratio > 1.6 && ratio < 2.5, `gap ${i} doubles (${gaps.map((g) => g.toFixed(1))})`);
      }
      // fail once the last retransmission timed out: 31 x initial, not EXCHANGE_LIFETIME
      assert.ok(elapsed >= 31 * 20 - 5 && elapsed < 31 * 30 + 150, `gave up after ${elapsed} ms`);
      assert.equal(ep.stats().retransmissions, 4);
      assert.equal(ep.stats().timeouts, 1);
      assert.equal(ep.stats().outgoingRequests, 0);
    } finally {
      await silent.close();
      await ep.close();
      network.close();
    }
  });

  it('rejects with "reset" on RST', async () => {
    const s = await endpoints();
    const raw = await RawPeer.create(s.network);
    try {
      raw.onMessage = (m) => raw.rst(m.from, m.packet.messageId);
      await assert.rejects(
        s.client.request(raw.peer, { method: 'GET', pathSegments: ['x'] }),
        (e: unknown) => e instanceof CoapRequestError && e.reason === 'reset',
      );
      assert.equal(s.client.stats().resets, 1);
    } finally {
      await raw.close();
      await s.close();
    }
  });

  it('waits for a separate response after the empty ACK (and ACKs it), bounded by timeoutMs', async () => {
    const s = await endpoints();
    const raw = await RawPeer.create(s.network);
    try {
      raw.onMessage = (m, r) => {
        if (m.packet.code !== '0.01') return;
        r.ack(m.from, m.packet.messageId);
        if (m.packet.options.some((o) => o.name === 'Uri-Path' && o.value.toString() === 'never')) return;
        setTimeout(
          () => r.send(m.from, { code: '2.05', confirmable: true, token: m.packet.token, payload: Buffer.from('sep') }),
          80,
        );
      };
      const res = await s.client.request(raw.peer, { method: 'GET', pathSegments: ['x'] });
      assert.equal(res.code, '2.05');
      assert.equal(res.payload.toString(), 'sep');
      const ackOfResponse = await raw.waitFor((m) => m.packet.ack && m.packet.code === '0.00');
      assert.ok(ackOfResponse);
      assert.equal(s.client.stats().retransmissions, 0, 'no retransmission after the empty ACK');
      const t0 = performance.now();
      await assert.rejects(
        s.client.request(raw.peer, { method: 'GET', pathSegments: ['never'], timeoutMs: 150 }),
        (e: unknown) => e instanceof CoapRequestError && e.reason === 'timeout',
      );
      const took = performance.now() - t0;
      assert.ok(took >= 145 && took < 400, `hard timeout ${took}`);
    } finally {
      await raw.close();
      await s.close();
    }
  });

  it('survives a lossy, duplicating, reordering network', async () => {
    // 15% loss each way: an attempt fails 28% of the time; 11 attempts make a failed request ~1e-6
    const s = await endpoints(
      { loss: 0.15, duplicate: 0.1, reorder: 0.2, delayMs: 1, jitterMs: 2, seed: 11 },
      { maxRetransmit: 10, nstart: 4 },
    );
    try {
      let calls = 0;
      s.server.setRequestHandler((req) => {
        calls++;
        return { code: '2.05', payload: Buffer.from(req.pathSegments.join('/')) };
      });
      const results = await Promise.all(
        Array.from({ length: 100 }, (_, i) =>
          s.client.request(s.serverPeer, { method: 'GET', pathSegments: ['r', String(i)] }),
        ),
      );
      results.forEach((r, i) => assert.equal(r.payload.toString(), `r/${i}`));
      assert.equal(calls, 100, 'each request handled exactly once');
      assert.ok(s.client.stats().retransmissions > 0);
    } finally {
      await s.close();
    }
  });
});

describe('CoapEndpoint: separate responses from the handler', () => {
  it('sends an empty ACK after separateResponseAfterMs and a CON response retransmitted until ACKed', async () => {
    const s = await endpoints({}, {}, { separateResponseAfterMs: 30 });
    const raw = await RawPeer.create(s.network);
    try {
      s.server.setRequestHandler(async () => {
        await sleep(100);
        return { code: '2.04', payload: Buffer.from('done') };
      });
      const t0 = performance.now();
      raw.send(s.serverPeer, { code: 'POST', confirmable: true, messageId: 9, token: Buffer.from([4, 4]) });
      const ack = await raw.waitFor((m) => m.packet.ack);
      assert.equal(ack.packet.code, '0.00');
      assert.ok(ack.at - t0 >= 25 && ack.at - t0 < 90, `empty ACK after ${ack.at - t0}`);
      const r1 = await raw.waitFor((m) => m.packet.confirmable);
      assert.equal(r1.packet.code, '2.04');
      // don't ACK the first copy: it is retransmitted with the same MID
      const r2 = await raw.waitFor((m) => m.packet.confirmable && m !== r1);
      assert.equal(r2.packet.messageId, r1.packet.messageId);
      raw.ack(s.serverPeer, r1.packet.messageId);
      await waitFor(() => s.server.stats().separateResponsesPending === 0);
      // our own client handles the separate response transparently
      const res = await s.client.request(s.serverPeer, { method: 'POST', pathSegments: ['x'] });
      assert.equal(res.code, '2.04');
      assert.equal(res.payload.toString(), 'done');
    } finally {
      await raw.close();
      await s.close();
    }
  });

  it('answers NON requests with NON responses, even slow ones', async () => {
    const s = await endpoints({}, {}, { separateResponseAfterMs: 10 });
    const raw = await RawPeer.create(s.network);
    try {
      s.server.setRequestHandler(async () => {
        await sleep(40);
        return { code: '2.05' };
      });
      raw.send(s.serverPeer, { code: 'GET', confirmable: false, token: Buffer.from([5]) });
      const r = await raw.waitFor(() => true);
      assert.equal(r.packet.confirmable, false);
      assert.equal(r.packet.ack, false);
      assert.equal(r.packet.code, '2.05');
      await sleep(20);
      assert.equal(raw.received.length, 1);
    } finally {
      await raw.close();
      await s.close();
    }
  });
});

describe('CoapEndpoint: NSTART', () => {
  it('keeps at most NSTART requests outstanding per peer and queues the rest', async () => {
    for (const nstart of [1, 3]) {
      const s = await endpoints({}, { nstart }, { maxConcurrentPerPeer: 100 });
      try {
        let inFlight = 0;
        let maxInFlight = 0;
        s.server.setRequestHandler(async () => {
          maxInFlight = Math.max(maxInFlight, ++inFlight);
          await sleep(5);
          inFlight--;
          return { code: '2.05' };
        });
        const all = Array.from({ length: 8 }, () =>
          s.client.request(s.serverPeer, { method: 'GET', pathSegments: ['q'] }),
        );
        assert.equal(s.client.stats().queued, 8 - nstart);
        await Promise.all(all);
        assert.equal(maxInFlight, nstart);
        assert.equal(s.client.stats().queued, 0);
      } finally {
        await s.close();
      }
    }
  });

  it('refuses requests beyond maxQueuedPerPeer with "overloaded"', async () => {
    const s = await endpoints({}, { nstart: 1, maxQueuedPerPeer: 2 });
    try {
      s.server.setRequestHandler(async () => {
        await sleep(5);
        return { code: '2.05' };
      });
      const ok = [0, 1, 2].map(() => s.client.request(s.serverPeer, { method: 'GET', pathSegments: [] }));
      await assert.rejects(
        s.client.request(s.serverPeer, { method: 'GET', pathSegments: [] }),
        (e: unknown) => e instanceof CoapRequestError && e.reason === 'overloaded',
      );
      await Promise.all(ok);
    } finally {
      await s.close();
    }
  });

  it('fails the queue behind a request that got no ACK at all', async () => {
    const network = new MemoryNetwork();
    const ep = new CoapEndpoint(network.createTransport(), { ...FAST, ackTimeoutMs: 10, maxRetransmit: 1 });
    await ep.start();
    const silent = await RawPeer.create(network);
    try {
      const all = [0, 1, 2].map((i) =>
        ep.request(silent.peer, { method: 'GET', pathSegments: [String(i)] }).then(
          () => 'ok',
          (e: CoapRequestError) => e.reason,
        ),
      );
      assert.deepEqual(await Promise.all(all), ['timeout', 'timeout', 'timeout']);
      assert.equal(silent.received.length, 2, 'only the first request was ever sent (+1 retransmission)');
    } finally {
      await silent.close();
      await ep.close();
      network.close();
    }
  });
});

describe('CoapEndpoint: a request failure translator', () => {
  it('that throws still settles the request, with what it threw (a timeout, and a request refused at once)', async () => {
    const network = new MemoryNetwork();
    const ep = new CoapEndpoint(network.createTransport(), { ...FAST, ackTimeoutMs: 10, maxRetransmit: 0 });
    await ep.start();
    const silent = await RawPeer.create(network);
    const throwing = {
      seen: [] as string[],
      failed(err: Error): Error {
        this.seen.push((err as CoapRequestError).reason);
        throw new Error(`translator failed on ${(err as CoapRequestError).reason}`);
      },
    };
    try {
      await assert.rejects(
        ep.request(silent.peer, { method: 'GET', pathSegments: ['a'] }, throwing),
        /translator failed on timeout/,
      );
    } finally {
      await silent.close();
      await ep.close();
      network.close();
    }
    await assert.rejects(
      ep.request(silent.peer, { method: 'GET', pathSegments: ['b'] }, throwing),
      /translator failed on closed/,
    );
    assert.deepEqual(throwing.seen, ['timeout', 'closed']);
  });
});

describe('CoapEndpoint: lifecycle', () => {
  it('close() fails pending requests with "closed" and leaves nothing running', async () => {
    const s = await endpoints();
    const raw = await RawPeer.create(s.network);
    const pending = s.client.request(raw.peer, { method: 'GET', pathSegments: ['x'] });
    const queued = s.client.request(raw.peer, { method: 'GET', pathSegments: ['y'] });
    await sleep(5);
    await s.close();
    await raw.close();
    for (const p of [pending, queued])
      await assert.rejects(p, (e: unknown) => e instanceof CoapRequestError && e.reason === 'closed');
    await assert.rejects(s.client.request(raw.peer, { method: 'GET', pathSegments: [] }), /closed/);
    const st = s.client.stats();
    assert.equal(st.activeExchanges, 0);
    assert.equal(st.peers, 0);
  });

  it('matches responses by peer as well as by token/MID', async () => {
    const network = new MemoryNetwork();
    const ep = new CoapEndpoint(network.createTransport(), FAST);
    await ep.start();
    const dev = await RawPeer.create(network, '10.0.1.1');
    const intruder = await RawPeer.create(network, '10.0.1.2');
    try {
      dev.onMessage = (m) => {
        if (m.packet.code !== '0.01') return;
        // the intruder answers first, with the right MID and token, from the wrong address
        intruder.send(m.from, {
          code: '2.05',
          ack: true,
          messageId: m.packet.messageId,
          token: m.packet.token,
          payload: Buffer.from('evil'),
        });
        setTimeout(
          () =>
            dev.send(m.from, {
              code: '2.05',
              ack: true,
              messageId: m.packet.messageId,
              token: m.packet.token,
              payload: Buffer.from('good'),
            }),
          5,
        );
      };
      const r = await ep.request(dev.peer, { method: 'GET', pathSegments: [] });
      assert.equal(r.payload.toString(), 'good');
    } finally {
      await dev.close();
      await intruder.close();
      await ep.close();
      network.close();
    }
  });

  it('uses random 8-byte tokens and unique message ids', async () => {
    const network = new MemoryNetwork();
    const ep = new CoapEndpoint(network.createTransport(), { ...FAST, nstart: 50 });
    await ep.start();
    const dev = await RawPeer.create(network);
    dev.onMessage = (m, r) =>
      r.send(m.from, { code: '2.05', ack: true, messageId: m.packet.messageId, token: m.packet.token });
    try {
      await Promise.all(Array.from({ length: 50 }, () => ep.request(dev.peer, { method: 'GET', pathSegments: [] })));
      const tokens = new Set(dev.received.map((m) => m.packet.token.toString('hex')));
      const mids = new Set(dev.received.map((m) => m.packet.messageId));
      assert.equal(tokens.size, 50);
      assert.equal(mids.size, 50);
      assert.ok(dev.received.every((m) => m.packet.token.length === 8));
      assert.equal(uint(opt(dev.received[0].packet, 'Observe')), undefined);
    } finally {
      await dev.close();
      await ep.close();
      network.close();
    }
  });
});

describe('CoapEndpoint: bad input', () => {
  it('rejects (does not throw) requests that cannot be encoded, and keeps working', async () => {
    const s = await endpoints();
    try {
      s.server.setRequestHandler(() => ({ code: '2.05' }));
      await assert.rejects(
        s.client.request(s.serverPeer, {
          method: 'GET',
          pathSegments: [],
          options: [{ name: 'No-Such-Option', value: Buffer.alloc(0) }],
        }),
        /unknown CoAP option/,
      );
      await assert.rejects(
        s.client.request(s.serverPeer, { method: 'BREW' as never, pathSegments: [] }),
        /unknown CoAP method/,
      );
      const r = await s.client.request(s.serverPeer, { method: 'GET', pathSegments: [] });
      assert.equal(r.code, '2.05');
      assert.equal(s.client.stats().outgoingRequests, 0);
      assert.equal(s.client.stats().peers, 0);
    } finally {
      await s.close();
    }
  });
});
