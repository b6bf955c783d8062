import { strict as assert } from 'node:assert';
import { generate } from 'coap-packet';
import { endpoints, RawPeer, sleep, waitFor } from './helpers';

describe('CoapEndpoint: per-source protection', () => {
  it('a flood from one address neither grows state without bound nor starves other peers', async function () {
    this.timeout(30000);
    const s = await endpoints(
      {},
      { ackTimeoutMs: 200 },
      {
        maxConcurrentPerPeer: 4,
        maxRequestsPerSecondPerAddress: 1000,
        maxDedupEntriesPerPeer: 300,
        maxDedupEntries: 5000,
        exchangeLifetimeMs: 60000,
      },
    );
    const attacker = await RawPeer.create(s.network, '10.6.6.6');
    try {
      s.server.setRequestHandler(async (req) => {
        await sleep(req.peer.address === '10.6.6.6' ? 50 : 1);
        return { code: '2.05', payload: Buffer.from('ok') };
      });
      const heapBefore = process.memoryUsage().heapUsed;
      let maxInFlight = 0;
      let maxDedup = 0;
      const legit: number[] = [];
      const legitRun = (async () => {
        for (let i = 0; i < 30; i++) {
          const t0 = performance.now();
          const r = await s.client.request(s.serverPeer, { method: 'GET', pathSegments: ['legit', String(i)] });
          assert.equal(r.code, '2.05');
          legit.push(performance.now() - t0);
          await sleep(5);
        }
      })();
      const token = Buffer.from([1, 2, 3, 4]);
      let sent = 0;
      for (let chunk = 0; chunk < 40; chunk++) {
        for (let i = 0; i < 1000; i++) {
          const pkt = generate({ code: 'GET', confirmable: i % 2 === 0, messageId: sent++ & 0xffff, token });
          attacker.sendRaw(s.serverPeer, pkt);
        }
        await sleep(5);
        const st = s.server.stats();
        maxInFlight = Math.max(maxInFlight, st.incomingInFlight);
        maxDedup = Math.max(maxDedup, st.dedupEntries);
      }
      await legitRun;
      const st = s.server.stats();
      assert.ok(maxInFlight <= 4 + 1, `in flight bounded (${maxInFlight})`);
      assert.ok(maxDedup <= 300 + 30, `dedup bounded (${maxDedup})`);
      assert.ok(st.rateLimited > 30000, `rate limited ${st.rateLimited}`);
      assert.ok(st.overloaded > 0, 'excess answered with 5.03 / dropped');
      assert.equal(legit.length, 30);
      const worst = Math.max(...legit);
      assert.ok(worst < 200, `legit requests stayed fast (worst ${worst.toFixed(1)} ms)`);
      const five03 = attacker.received.filter((m) => m.packet.code === '5.03');
      assert.ok(five03.length > 0);
      assert.ok(five03.every((m) => m.packet.options.some((o) => o.name === 'Max-Age')));
      const heapGrowth = process.memoryUsage().heapUsed - heapBefore;
      assert.ok(heapGrowth < 64 * 1024 * 1024, `heap growth ${(heapGrowth / 1e6).toFixed(1)} MB`);
    } finally {
      await attacker.close();
      await s.close();
    }
  });

  it('many source ports behind one address share the per-address token bucket and the total limits', async function () {
    this.timeout(20000);
    const s = await endpoints(
      {},
      {},
      { maxRequestsPerSecondPerAddress: 200, maxConcurrentTotal: 20, maxDedupEntries: 1000 },
    );
    const ports = await Promise.all(
      Array.from({ length: 50 }, (_, i) => RawPeer.create(s.network, '10.7.7.7', 20000 + i)),
    );
    try {
      let handled = 0;
      s.server.setRequestHandler(async () => {
        handled++;
        await sleep(30);
        return { code: '2.05' };
      });
      for (let round = 0; round < 10; round++) {
        for (const p of ports) p.send(s.serverPeer, { code: 'GET', confirmable: true, token: Buffer.from([round]) });
      }
      await sleep(50);
      const st = s.server.stats();
      assert.ok(st.rateLimited >= 250, `rate limited ${st.rateLimited}`); // 500 sent, burst 200 (+ refill while sending)
      assert.ok(st.incomingInFlight <= 20);
      assert.ok(st.dedupEntries <= 1000);
      assert.ok(handled <= 200);
      await waitFor(() => s.server.stats().incomingInFlight === 0);
    } finally {
      for (const p of ports) await p.close();
      await s.close();
    }
  });

  it('drops NON requests over the concurrency limit without answering', async () => {
    const s = await endpoints({}, {}, { maxConcurrentPerPeer: 2 });
    const raw = await RawPeer.create(s.network);
    try {
      s.server.setRequestHandler(async () => {
        await sleep(20);
        return { code: '2.05' };
      });
      for (let i = 0; i < 10; i++) raw.send(s.serverPeer, { code: 'GET', confirmable: false, token: Buffer.from([i]) });
      await waitFor(() => s.server.stats().incomingInFlight === 0 && raw.received.length >= 2);
      await sleep(10);
      assert.equal(raw.received.length, 2);
      assert.equal(s.server.stats().overloaded, 8);
    } finally {
      await raw.close();
      await s.close();
    }
  });

  it('forgets idle peers: no per-peer state after exchanges complete and dedup entries expire', async () => {
    const s = await endpoints({}, { exchangeLifetimeMs: 50 }, { exchangeLifetimeMs: 50 });
    try {
      s.server.setRequestHandler(() => ({ code: '2.05' }));
      await Promise.all(
        Array.from({ length: 20 }, () => s.client.request(s.serverPeer, { method: 'GET', pathSegments: [] })),
      );
      assert.ok(s.server.stats().peers >= 1);
      await waitFor(() => s.server.stats().peers === 0 && s.server.stats().dedupEntries === 0, 1000);
      assert.equal(s.client.stats().peers, 0);
      assert.equal(s.client.stats().activeExchanges, 0);
    } finally {
      await s.close();
    }
  });
});
