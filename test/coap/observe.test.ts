import { strict as assert } from 'node:assert';
import type { ParsedPacket } from 'coap-packet';
import { CoapRequestError, type IncomingResponse } from '../../lib/coap';
import type { Peer } from '../../lib/transport/types';
import { bytes, endpoints, opt, pathOf, RawPeer, sleep, uint, uintBuf, waitFor, type Setup } from './helpers';

/** A scripted device with one observable resource. Values larger than 64 bytes go block-wise (szx 2). */
class Device {
  token: Buffer | undefined;
  observer: Peer | undefined;
  seq = 10;
  value: Buffer = Buffer.from('v0');
  registrations = 0;
  cancels = 0;
  blockGets: ParsedPacket[] = [];
  constructor(readonly raw: RawPeer) {
    raw.onMessage = (m) => {
      const p = m.packet;
      if (p.code !== '0.01') return;
      const observe = uint(opt(p, 'Observe'));
      const b2 = opt(p, 'Block2');
      if (observe === 0) {
        this.registrations++;
        this.token = p.token;
        this.observer = m.from;
        raw.send(m.from, {
          code: '2.05',
          ack: true,
          messageId: p.messageId,
          token: p.token,
          options: this.valueOptions(0, true),
          payload: this.slice(0),
        });
      } else if (observe === 1) {
        this.cancels++;
        this.observer = undefined;
        raw.send(m.from, {
          code: '2.05',
          ack: true,
          messageId: p.messageId,
          token: p.token,
          payload: Buffer.from('bye'),
        });
      } else {
        assert.equal(pathOf(p), 'obj/0');
        const num = b2 ? uint(b2)! >> 4 : 0;
        this.blockGets.push(p);
        raw.send(m.from, {
          code: '2.05',
          ack: true,
          messageId: p.messageId,
          token: p.token,
          options: this.valueOptions(num, false),
          payload: this.slice(num),
        });
      }
    };
  }
  private big(): boolean {
    return this.value.length > 64;
  }
  private slice(num: number): Buffer {
    return this.big() ? this.value.subarray(num * 64, num * 64 + 64) : this.value;
  }
  private valueOptions(num: number, withObserve: boolean) {
    const o: { name: 'Observe' | 'Block2'; value: Buffer }[] = [];
    if (withObserve) o.push({ name: 'Observe', value: uintBuf(this.seq) });
    if (this.big())
      o.push({ name: 'Block2', value: uintBuf(num * 16 + (num * 64 + 64 < this.value.length ? 8 : 0) + 2) });
    return o;
  }
  notify(opts: { seq?: number; con?: boolean; code?: string; payload?: Buffer; token?: Buffer } = {}): number {
    if (opts.payload) this.value = opts.payload;
    if (opts.seq !== undefined) this.seq = opts.seq;
    else this.seq++;
    const mid = this.raw.nextMid();
    const options = opts.code && opts.code !== '2.05' ? [] : this.valueOptions(0, true);
    this.raw.send(this.observer!, {
      code: opts.code ?? '2.05',
      confirmable: opts.con ?? false,
      messageId: mid,
      token: opts.token ?? this.token,
      options,
      payload: this.slice(0),
    });
    return mid;
  }
}

async function setup(): Promise<{ s: Setup; dev: Device }> {
  const s = await endpoints();
  const raw = await RawPeer.create(s.network, '10.0.3.1');
  return { s, dev: new Device(raw) };
}

describe('CoapEndpoint: observe (RFC 7641)', () => {
  it('registers, delivers notifications in order and drops stale (reordered) ones', async () => {
    const { s, dev } = await setup();
    try {
      const got: IncomingResponse[] = [];
      const { response, observation } = await s.client.observe(
        dev.raw.peer,
        { method: 'GET', pathSegments: ['obj', '0'] },
        (n) => got.push(n),
      );
      assert.equal(response.code, '2.05');
      assert.equal(response.observe, 10);
      assert.equal(response.payload.toString(), 'v0');
      assert.ok(observation);
      assert.deepEqual(observation.token, dev.token);
      assert.equal(s.client.stats().observations, 1);
      dev.notify({ seq: 11, payload: Buffer.from('a') });
      dev.notify({ seq: 13, payload: Buffer.from('c') });
      dev.notify({ seq: 12, payload: Buffer.from('b') }); // overtaken: stale
      dev.notify({ seq: 14, payload: Buffer.from('d'), con: true });
      await waitFor(() => got.length === 3);
      await sleep(10);
      assert.deepEqual(
        got.map((n) => n.payload.toString()),
        ['a', 'c', 'd'],
      );
      assert.deepEqual(
        got.map((n) => n.observe),
        [11, 13, 14],
      );
      assert.ok(got.every((n) => n.token.equals(dev.token!)));
      assert.equal(s.client.stats().staleNotifications, 1);
      // the CON notification was ACKed
      const acks = dev.raw.received.filter((m) => m.packet.ack && m.packet.code === '0.00');
      assert.equal(acks.length, 1);
      // a jump of 2^23 or more forwards counts as older (stale)
      dev.notify({ seq: 14 + (1 << 23) + 1, payload: Buffer.from('stale') });
      // sequence wrap-around: 14 -> 14 + 2^23 - 100 -> 16777000 -> 3 are all fresh
      dev.notify({ seq: 14 + (1 << 23) - 100, payload: Buffer.from('e') });
      await waitFor(() => got.length === 4);
      assert.equal(got[3].payload.toString(), 'e');
      dev.notify({ seq: 16777000, payload: Buffer.from('f') });
      dev.notify({ seq: 3, payload: Buffer.from('g') }); // wrapped around 2^24
      await waitFor(() => got.length === 6);
      assert.deepEqual(
        got.slice(3).map((n) => n.payload.toString()),
        ['e', 'f', 'g'],
      );
      await observation.cancel('passive');
    } finally {
      await dev.raw.close();
      await s.close();
    }
  });

  it('a duplicated CON notification is ACKed twice and delivered once', async () => {
    const { s, dev } = await setup();
    try {
      const got: string[] = [];
      await s.client.observe(dev.raw.peer, { method: 'GET', pathSegments: ['obj', '0'] }, (n) =>
        got.push(n.payload.toString()),
      );
      s.network.conditions = { duplicate: 1 };
      dev.notify({ con: true, payload: Buffer.from('x') });
      await waitFor(() => dev.raw.received.filter((m) => m.packet.ack).length >= 2);
      await sleep(5);
      assert.deepEqual(got, ['x']);
    } finally {
      await dev.raw.close();
      await s.close();
    }
  });

  it('active cancel sends GET Observe=1 with the same token; later notifications get RST', async () => {
    const { s, dev } = await setup();
    try {
      const got: string[] = [];
      const { observation } = await s.client.observe(
        dev.raw.peer,
        { method: 'GET', pathSegments: ['obj', '0'], accept: 0 },
        (n) => got.push(n.payload.toString()),
      );
      const token = dev.token!;
      const res = (await observation!.cancel()) as IncomingResponse;
      assert.equal(res.code, '2.05');
      assert.equal(res.payload.toString(), 'bye');
      assert.equal(dev.cancels, 1);
      const cancelReq = dev.raw.received.find((m) => uint(opt(m.packet, 'Observe')) === 1)!;
      assert.ok(cancelReq.packet.token.equals(token));
      assert.equal(pathOf(cancelReq.packet), 'obj/0');
      assert.equal(uint(opt(cancelReq.packet, 'Accept')), 0);
      assert.equal(s.client.stats().observations, 0);
      dev.observer = s.clientPeer;
      const mid = dev.notify({ con: true, token });
      const rst = await dev.raw.waitFor((m) => m.packet.reset && m.packet.messageId === mid);
      assert.ok(rst);
      assert.deepEqual(got, []);
      assert.equal(await observation!.cancel(), undefined, 'cancelling twice is a no-op');
    } finally {
      await dev.raw.close();
      await s.close();
    }
  });

  it('passive cancel forgets the observation and RSTs the next notification', async () => {
    const { s, dev } = await setup();
    try {
      const got: string[] = [];
      let unknownCalls = 0;
      s.client.setUnknownNotificationHandler(() => {
        unknownCalls++;
        return () => {};
      });
      const { observation } = await s.client.observe(dev.raw.peer, { method: 'GET', pathSegments: ['obj', '0'] }, (n) =>
        got.push(n.payload.toString()),
      );
      assert.equal(await observation!.cancel('passive'), undefined);
      assert.equal(dev.cancels, 0, 'nothing sent');
      const mid = dev.notify({ con: false });
      await dev.raw.waitFor((m) => m.packet.reset && m.packet.messageId === mid);
      assert.deepEqual(got, []);
      assert.equal(unknownCalls, 0, 'a cancelled token is not offered for adoption');
    } finally {
      await dev.raw.close();
      await s.close();
    }
  });

  it('RSTs a notification with an unknown token, or adopts it via the unknown-notification handler', async () => {
    const { s, dev } = await setup();
    try {
      dev.observer = s.clientPeer;
      dev.token = Buffer.from('deadbeef', 'hex');
      const mid1 = dev.notify({ con: true });
      await dev.raw.waitFor((m) => m.packet.reset && m.packet.messageId === mid1);
      const adopted: string[] = [];
      const offered: IncomingResponse[] = [];
      s.client.setUnknownNotificationHandler((n) => {
        offered.push(n);
        return (x) => adopted.push(x.payload.toString());
      });
      const mid2 = dev.notify({ con: true, payload: Buffer.from('p1') });
      await dev.raw.waitFor((m) => m.packet.ack && m.packet.messageId === mid2);
      dev.notify({ payload: Buffer.from('p2') });
      await waitFor(() => adopted.length === 2);
      assert.deepEqual(adopted, ['p1', 'p2']);
      assert.equal(offered.length, 1, 'asked once, then it is a live observation');
      assert.equal(offered[0].observe, dev.seq - 1);
      const handle = s.client.getObservation(dev.raw.peer, dev.token);
      assert.ok(handle);
      assert.equal(await handle.cancel('active'), undefined, 'no path known: falls back to passive');
    } finally {
      await dev.raw.close();
      await s.close();
    }
  });

  it('a non-2.xx notification ends the observation (delivered, then dropped)', async () => {
    const { s, dev } = await setup();
    try {
      const got: IncomingResponse[] = [];
      await s.client.observe(dev.raw.peer, { method: 'GET', pathSegments: ['obj', '0'] }, (n) => got.push(n));
      dev.notify({ code: '4.04', con: true, payload: Buffer.alloc(0) });
      await waitFor(() => got.length === 1);
      assert.equal(got[0].code, '4.04');
      assert.equal(s.client.stats().observations, 0);
      const mid = dev.notify({ con: true });
      await dev.raw.waitFor((m) => m.packet.reset && m.packet.messageId === mid);
      assert.equal(got.length, 1);
    } finally {
      await dev.raw.close();
      await s.close();
    }
  });

  it('fetches the rest of a Block2 notification with GETs without Observe and delivers the whole value', async () => {
    const { s, dev } = await setup();
    try {
      dev.value = bytes(200, 1); // the registration response is block-wise too
      const got: IncomingResponse[] = [];
      const { response, observation } = await s.client.observe(
        dev.raw.peer,
        { method: 'GET', pathSegments: ['obj', '0'] },
        (n) => got.push(n),
      );
      assert.ok(response.payload.equals(dev.value));
      assert.equal(response.observe, 10);
      assert.ok(observation);
      assert.equal(dev.blockGets.length, 3);
      assert.ok(dev.blockGets.every((p) => opt(p, 'Observe') === undefined));
      assert.ok(
        dev.blockGets.every((p) => !p.token.equals(dev.token!)),
        'follow-ups use new tokens',
      );
      dev.blockGets = [];
      const v1 = bytes(300, 2);
      dev.notify({ payload: v1, con: true });
      await waitFor(() => got.length === 1);
      assert.ok(got[0].payload.equals(v1));
      assert.equal(got[0].observe, 11);
      assert.equal(dev.blockGets.length, 4);
      assert.ok(dev.blockGets.every((p) => opt(p, 'Observe') === undefined));
      assert.equal(s.client.stats().observations, 1);
      await observation!.cancel('passive');
    } finally {
      await dev.raw.close();
      await s.close();
    }
  });

  it('rejects observe() like request() and reports no observation without Observe in the response', async () => {
    const { s, dev } = await setup();
    try {
      dev.raw.onMessage = (m) =>
        dev.raw.send(m.from, {
          code: '2.05',
          ack: true,
          messageId: m.packet.messageId,
          token: m.packet.token,
          payload: Buffer.from('plain'),
        });
      const r = await s.client.observe(dev.raw.peer, { method: 'GET', pathSegments: ['x'] }, () => {});
      assert.equal(r.observation, undefined);
      assert.equal(r.response.payload.toString(), 'plain');
      assert.equal(s.client.stats().observations, 0);
      dev.raw.onMessage = (m) => dev.raw.rst(m.from, m.packet.messageId);
      await assert.rejects(
        s.client.observe(dev.raw.peer, { method: 'GET', pathSegments: ['x'] }, () => {}),
        (e: unknown) => e instanceof CoapRequestError && e.reason === 'reset',
      );
    } finally {
      await dev.raw.close();
      await s.close();
    }
  });
});
