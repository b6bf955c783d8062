/**
 * CoapEndpoint as the observed party (RFC 7641 §4): `notify()` sends notifications of observations it
 * answered, CON (retransmitted, settled by ACK / RST / timeout) or NON (RST reported by a hook), large
 * values as a first Block2 block with the rest served to the observer's follow-ups (RFC 7959 §2.6).
 * The observer is our own CoapEndpoint on the in-memory network, sometimes lossy.
 */
import { strict as assert } from 'node:assert';
import { parse } from 'coap-packet';
import {
  CoapEndpoint,
  CoapRequestError,
  decodeBlock,
  encodeUint,
  type IncomingRequest,
  type IncomingResponse,
  type ObservationHandle,
} from '../../lib/coap';
import type { Peer } from '../../lib/transport/types';
import { bytes, endpoints, opt, RawPeer, sleep, uint, uintBuf, waitFor, type Setup } from './helpers';

/** `s.server` plays the device: it answers Observe=0 on any path with Observe and `value`. */
class Device {
  seq = 100;
  value: Buffer = Buffer.from('v0');
  readonly requests: IncomingRequest[] = [];
  readonly resets: Array<{ peer: Peer; token: Buffer }> = [];
  constructor(readonly ep: CoapEndpoint) {
    ep.setRequestHandler((req) => {
      this.requests.push(req);
      if (req.observe === 0)
        return {
          code: '2.05',
          contentFormat: 0,
          payload: this.value,
          options: [{ name: 'Observe', value: encodeUint(this.seq) }],
        };
      return { code: '2.05', contentFormat: 0, payload: this.value };
    });
    ep.onNotificationReset = (peer, token) => this.resets.push({ peer, token });
  }
  notify(peer: Peer, token: Buffer, value: Buffer, confirmable: boolean, seq = ++this.seq): Promise<void> {
    this.value = value;
    return this.ep.notify(
      peer,
      token,
      { code: '2.05', observe: seq, contentFormat: 0, payload: value },
      { confirmable },
    );
  }
}

interface Observed {
  s: Setup;
  dev: Device;
  got: IncomingResponse[];
  observation: ObservationHandle;
  token: Buffer;
}

/** s.client observes s.server (the device) at /obj/0. */
async function observed(
  net: Parameters<typeof endpoints>[0] = {},
  opts: Parameters<typeof endpoints>[1] = {},
): Promise<Observed> {
  const s = await endpoints(net, opts, opts);
  const dev = new Device(s.server);
  const got: IncomingResponse[] = [];
  const { response, observation } = await s.client.observe(
    s.serverPeer,
    { method: 'GET', pathSegments: ['obj', '0'] },
    (n) => got.push(n),
  );
  assert.equal(response.code, '2.05');
  assert.equal(response.observe, dev.seq);
  assert.ok(observation);
  return { s, dev, got, observation, token: observation.token };
}

/** Messages (not empty ones) the device sent to the observer, parsed. */
function recordFromDevice(s: Setup): ReturnType<typeof parse>[] {
  const out: ReturnType<typeof parse>[] = [];
  const prev = s.network.tap;
  s.network.tap = (data, from, to) => {
    if (from.key === s.serverPeer.key && data[1] !== 0) out.push(parse(data));
    return prev?.(data, from, to);
  };
  return out;
}

describe('CoapEndpoint: notify() as the observed party (RFC 7641 §4)', () => {
  it('sends NON notifications with the token and a 24-bit Observe, which the observer delivers in order', async () => {
    const { s, dev, got, token } = await observed();
    const sent = recordFromDevice(s);
    try {
      await dev.notify(s.clientPeer, token, Buffer.from('a'), false);
      await dev.notify(s.clientPeer, token, Buffer.from('b'), false);
      await dev.notify(s.clientPeer, token, Buffer.from('c'), false, 2 ** 24 + 103); // sent as 103
      await waitFor(() => got.length === 3);
      assert.deepEqual(
        got.map((n) => n.payload.toString()),
        ['a', 'b', 'c'],
      );
      assert.deepEqual(
        got.map((n) => n.observe),
        [101, 102, 103],
      );
      assert.ok(got.every((n) => n.token.equals(token) && n.code === '2.05' && n.contentFormat === 0));
      assert.equal(sent.length, 3);
      assert.ok(sent.every((p) => !p.confirmable && !p.ack && p.token.equals(token)));
      assert.equal(s.server.stats().notificationsOut, 3);
      assert.equal(s.server.stats().notificationsPending, 0);
    } finally {
      await s.close();
    }
  });

  it('retransmits CON notifications over a lossy network and resolves each on its ACK', async function () {
    this.timeout(20000);
    const { s, dev, got, token } = await observed({}, { maxRetransmit: 10 });
    s.network.conditions = { loss: 0.2 };
    try {
      for (let i = 0; i < 20; i++) await dev.notify(s.clientPeer, token, Buffer.from(`v${i}`), true);
      await waitFor(() => got.length > 0 && got[got.length - 1].payload.toString() === 'v19', 5000);
      const values = got.map((n) => Number(n.payload.toString().slice(1)));
      assert.deepEqual(
        values,
        [...new Set(values)].sort((a, b) => a - b),
        'in order, each once',
      );
      assert.ok(s.server.stats().retransmissions > 0, 'some notifications were retransmitted');
      assert.equal(s.server.stats().notificationsPending, 0);
      assert.equal(s.server.stats().activeExchanges, 0);
    } finally {
      await s.close();
    }
  });

  it('rejects a CON notification answered by RST with "reset", after telling onNotificationReset', async () => {
    const { s, dev, got, token, observation } = await observed();
    try {
      await dev.notify(s.clientPeer, token, Buffer.from('one'), true);
      await waitFor(() => got.length === 1);
      await observation.cancel('passive'); // the observer forgets it: the next notification gets RST
      const order: string[] = [];
      s.server.onNotificationReset = (peer, t) => {
        order.push('hook');
        dev.resets.push({ peer, token: t });
      };
      await assert.rejects(
        dev.notify(s.clientPeer, token, Buffer.from('two'), true).finally(() => order.push('settled')),
        (err: CoapRequestError) => err instanceof CoapRequestError && err.reason === 'reset',
      );
      assert.deepEqual(order, ['hook', 'settled']);
      assert.equal(dev.resets.length, 1);
      assert.equal(dev.resets[0].peer.key, s.clientPeer.key);
      assert.ok(dev.resets[0].token.equals(token));
      assert.equal(s.server.stats().notificationResets, 1);
      assert.equal(got.length, 1);
    } finally {
      await s.close();
    }
  });

  it('reports an RST answering a NON notification through onNotificationReset', async () => {
    const { s, dev, token, observation } = await observed();
    try {
      await observation.cancel('passive');
      await dev.notify(s.clientPeer, token, Buffer.from('x'), false); // resolves once sent
      await waitFor(() => dev.resets.length === 1);
      assert.equal(dev.resets[0].peer.key, s.clientPeer.key);
      assert.ok(dev.resets[0].token.equals(token));
      // an RST for an unrelated message id is not taken for one
      s.serverT.network.transmit(Buffer.from([0x70, 0, 0x12, 0x34]), s.clientPeer, s.serverPeer);
      await sleep(10);
      assert.equal(dev.resets.length, 1);
    } finally {
      await s.close();
    }
  });

  it('rejects a CON notification with "timeout" when the observer never ACKs, after MAX_RETRANSMIT', async () => {
    const { s, dev, token } = await observed({}, { maxRetransmit: 3 });
    const sent = recordFromDevice(s);
    s.network.setLink(s.clientPeer, s.serverPeer, { loss: 1 }); // ACKs never arrive
    try {
      const t0 = performance.now();
      await assert.rejects(
        dev.notify(s.clientPeer, token, Buffer.from('x'), true),
        (err: CoapRequestError) => err.reason === 'timeout',
      );
      const elapsed = performance.now() - t0;
      assert.equal(sent.length, 4, 'the notification and 3 retransmissions');
      assert.ok(new Set(sent.map((p) => p.messageId)).size === 1, 'retransmissions keep the message id');
      // 20 * (1 + 2 + 4 + 8) = 300 ms at least (rto in [20, 30) ms)
      assert.ok(elapsed >= 280, `gave up after ${elapsed} ms`);
      assert.equal(s.server.stats().notificationsPending, 0);
    } finally {
      await s.close();
    }
  });

  it('a newer CON notification replaces an unacknowledged one (RFC 7641 §4.5.2)', async () => {
    const { s, dev, got, token } = await observed();
    try {
      const first = dev.notify(s.clientPeer, token, Buffer.from('old'), true);
      const second = dev.notify(s.clientPeer, token, Buffer.from('new'), true); // before the ACK of the first
      await assert.rejects(first, (err: CoapRequestError) => err.reason === 'cancelled');
      await second;
      await waitFor(() => got.some((n) => n.payload.toString() === 'new'));
      assert.equal(s.server.stats().notificationsPending, 0);
    } finally {
      await s.close();
    }
  });

  it('takes message ids from the endpoint allocator: no collision with its own requests', async () => {
    const { s, dev, got, token } = await observed();
    const sent = recordFromDevice(s);
    try {
      s.client.setRequestHandler(() => ({ code: '2.04' }));
      const work: Promise<unknown>[] = [];
      for (let i = 0; i < 100; i++) {
        // CON ones supersede each other before their ACKs come ('cancelled'), which is fine here
        const n = dev.notify(s.clientPeer, token, Buffer.from(`n${i}`), i % 2 === 0);
        work.push(n.catch((err: CoapRequestError) => assert.equal(err.reason, 'cancelled')));
        work.push(s.server.request(s.clientPeer, { method: 'POST', pathSegments: ['r', String(i)] }));
      }
      await Promise.all(work);
      const mids = sent.filter((p) => !p.ack).map((p) => p.messageId);
      assert.ok(mids.length >= 200);
      assert.equal(new Set(mids).size, mids.length, 'every CON/NON message id distinct');
      await waitFor(() => got.length > 0 && got[got.length - 1].payload.toString() === 'n99');
    } finally {
      await s.close();
    }
  });

  it('a 4.xx notification carries no Observe and ends the observation at the observer', async () => {
    const { s, dev, got, token } = await observed();
    const sent = recordFromDevice(s);
    try {
      await s.server.notify(s.clientPeer, token, { code: '4.04', observe: 0 }, { confirmable: true });
      await waitFor(() => got.length === 1);
      assert.equal(got[0].code, '4.04');
      assert.equal(opt(sent[0], 'Observe'), undefined);
      assert.equal(s.client.stats().observations, 0);
      await dev.notify(s.clientPeer, token, Buffer.from('late'), false);
      await waitFor(() => dev.resets.length === 1, 2000, 'RST for a notification after the end');
    } finally {
      await s.close();
    }
  });

  it('sends a large value as its first Block2 block; follow-ups are served from the kept body', async function () {
    this.timeout(20000);
    const { s, dev, got, token } = await observed({ loss: 0.1, seed: 77 }, { maxRetransmit: 8 });
    const sent = recordFromDevice(s);
    try {
      const before = dev.requests.length;
      const big = bytes(5000, 21);
      await dev.notify(s.clientPeer, token, big, true);
      await waitFor(() => got.length === 1, 10000, 'the reassembled notification');
      assert.equal(got[0].payload.length, big.length);
      assert.ok(got[0].payload.equals(big));
      assert.equal(got[0].observe, dev.seq);
      const first = sent.find((p) => opt(p, 'Observe') !== undefined)!;
      assert.deepEqual(decodeBlock(opt(first, 'Block2')!), { num: 0, more: true, szx: 6, size: 1024 });
      assert.equal(uint(opt(first, 'Size2')), 5000);
      assert.equal(first.payload.length, 1024);
      assert.equal(dev.requests.length, before, 'the follow-up GETs never reached the handler');
      assert.equal(s.server.stats().cachedBlockResponses, 0, 'body dropped after the last block');
      // a second large value replaces the first
      const big2 = bytes(3000, 22);
      await dev.notify(s.clientPeer, token, big2, true); // (a NON one could be lost here)
      await waitFor(() => got.length === 2, 10000);
      assert.ok(got[1].payload.equals(big2));
    } finally {
      await s.close();
    }
  });

  it('uses the smaller block size the observer asked for when registering', async () => {
    const s = await endpoints();
    const raw = await RawPeer.create(s.network);
    try {
      const dev = new Device(s.server);
      const get = (token: number, options: Array<{ name: 'Observe' | 'Block2'; value: Buffer }>) =>
        raw.send(s.serverPeer, {
          code: 'GET',
          confirmable: true,
          token: Buffer.from([token]),
          options: [
            { name: 'Uri-Path', value: Buffer.from('obj') },
            { name: 'Uri-Path', value: Buffer.from('0') },
            ...options,
          ],
        });
      // register asking for 64-byte blocks (Block2 NUM=0 SZX=2)
      get(1, [
        { name: 'Observe', value: Buffer.alloc(0) },
        { name: 'Block2', value: uintBuf(2) },
      ]);
      await raw.waitFor((m) => m.packet.token[0] === 1);
      const big = bytes(200, 5);
      await dev.notify(raw.peer, Buffer.from([1]), big, false);
      const n = await raw.waitFor((m) => m.packet.token[0] === 1 && uint(opt(m.packet, 'Observe')) === dev.seq);
      assert.deepEqual(decodeBlock(opt(n.packet, 'Block2')!), { num: 0, more: true, szx: 2, size: 64 });
      assert.ok(n.packet.payload.equals(big.subarray(0, 64)));
      const before = dev.requests.length;
      const parts = [n.packet.payload];
      for (let num = 1; num < 4; num++) {
        get(10 + num, [{ name: 'Block2', value: uintBuf(num * 16 + 2) }]);
        const b = await raw.waitFor((m) => m.packet.token[0] === 10 + num);
        assert.equal(b.packet.code, '2.05');
        assert.equal(opt(b.packet, 'Observe'), undefined, 'no Observe in answers to plain GETs');
        assert.equal(decodeBlock(opt(b.packet, 'Block2')!)!.more, num < 3);
        parts.push(b.packet.payload);
      }
      assert.ok(Buffer.concat(parts).equals(big));
      assert.equal(dev.requests.length, before, 'served from the kept body');
    } finally {
      await raw.close();
      await s.close();
    }
  });

  it('close() rejects unacknowledged CON notifications with "closed"', async () => {
    const { s, dev, token } = await observed();
    s.network.setLink(s.clientPeer, s.serverPeer, { loss: 1 });
    const p = dev.notify(s.clientPeer, token, Buffer.from('x'), true);
    await sleep(5);
    assert.equal(s.server.stats().notificationsPending, 1);
    await s.close();
    await assert.rejects(p, (err: CoapRequestError) => err.reason === 'closed');
    await assert.rejects(
      s.server.notify(s.clientPeer, token, { code: '2.05', observe: 1 }, { confirmable: false }),
      (err: CoapRequestError) => err.reason === 'closed',
    );
  });

  it('refuses bad notifications without sending anything', async () => {
    const { s, token } = await observed();
    try {
      await assert.rejects(
        s.server.notify(s.clientPeer, token, { code: '0.01', observe: 1 }, { confirmable: false }),
        TypeError,
      );
      await assert.rejects(
        s.server.notify(s.clientPeer, token, { code: '2.05', observe: -1 }, { confirmable: false }),
        RangeError,
      );
      assert.equal(s.server.stats().notificationsOut, 0);
    } finally {
      await s.close();
    }
  });
});
