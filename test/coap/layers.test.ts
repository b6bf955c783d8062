import { strict as assert } from 'node:assert';
import { decodeBlock, encodeMessage, MessageType, parseMessage, type ParsedPacket } from '../../lib/coap/codec';
import { nextBlock1, takeBlock2 } from '../../lib/coap/block-client';
import { EndpointContext } from '../../lib/coap/context';
import { resolveOptions } from '../../lib/coap/endpoint-options';
import { MessageLayer, OutResponse } from '../../lib/coap/message';
import { Kind, OutRequest, PeerTable, type RequestTimerOwner } from '../../lib/coap/peer';
import { InCtx, readRequestOptions } from '../../lib/coap/request-context';
import { toPeer } from '../../lib/transport/peer';
import type { DatagramTransport, Peer, PeerAddress } from '../../lib/transport/types';

/** A transport that only records what is sent. */
class RecordingTransport implements DatagramTransport {
  readonly sent: Buffer[] = [];
  onDatagram(): void {}
  start(): Promise<PeerAddress> {
    return Promise.resolve({ address: '127.0.0.1', port: 5683 });
  }
  close(): Promise<void> {
    return Promise.resolve();
  }
  localAddress(): PeerAddress | undefined {
    return undefined;
  }
  send(data: Buffer): void {
    this.sent.push(data);
  }
}

const peer: Peer = toPeer({ address: '192.0.2.1', port: 5683 });
const noTimers: RequestTimerOwner = { onRequestTimer: () => {} };

function context(): { ctx: EndpointContext; transport: RecordingTransport; errors: unknown[] } {
  const transport = new RecordingTransport();
  const errors: unknown[] = [];
  const ctx = new EndpointContext(resolveOptions({ maxDedupEntriesPerPeer: 2 }), transport, {
    onError: (err) => errors.push(err),
  });
  return { ctx, transport, errors };
}

function request(payload?: Buffer): OutRequest {
  const ps = new PeerTable().get(peer.key);
  return new OutRequest(
    noTimers,
    peer,
    ps,
    { method: 'GET', pathSegments: ['x'], payload },
    Kind.Request,
    false,
    undefined,
  );
}

function block2Response(num: number, more: boolean, payload: Buffer): ParsedPacket {
  const msg = parseMessage(
    encodeMessage(MessageType.ACK, 0x45, 1, undefined, [{ n: 23, v: num * 16 + (more ? 8 : 0) + 0 }], payload),
  );
  assert.ok(msg !== undefined);
  return msg;
}

describe('coap layers', () => {
  describe('PeerTable', () => {
    it('keeps a peer while it has something in progress and drops it once idle', () => {
      const peers = new PeerTable();
      const ps = peers.get(peer.key);
      assert.equal(peers.get(peer.key), ps);
      ps.inFlight = 1;
      peers.release(ps);
      assert.equal(peers.size, 1);
      ps.inFlight = 0;
      peers.release(ps);
      assert.equal(peers.size, 0);
      peers.close();
      peers.get(peer.key);
      assert.equal(peers.size, 0, 'a closed table keeps no state');
    });
  });

  describe('MessageLayer', () => {
    it('gives message ids not awaiting an ACK and records their key in the holder', () => {
      const { ctx } = context();
      const m = new MessageLayer(ctx);
      const first = { midKey: null as string | null };
      const mid = m.allocMid(peer.key, first);
      assert.equal(first.midKey, `${peer.key}#${mid}`);
      m.track(first);
      assert.equal(m.awaiting(`${peer.key}#${mid}`), first);
      const second = { midKey: null as string | null };
      assert.notEqual(m.allocMid(peer.key, second), mid);
      m.untrack(first);
      assert.equal(m.awaiting(`${peer.key}#${mid}`), undefined);
    });

    it('bounds the dedup entries of one peer (oldest dropped) and releases the peer when they expire', () => {
      const { ctx } = context();
      const m = new MessageLayer(ctx);
      const ps = ctx.peers.get(peer.key);
      m.addDedup(`${peer.key}#1`, ps, 0);
      m.addDedup(`${peer.key}#2`, ps, 0);
      m.addDedup(`${peer.key}#3`, ps, 0);
      assert.equal(m.duplicateOf(`${peer.key}#1`), undefined);
      assert.ok(m.duplicateOf(`${peer.key}#3`) !== undefined);
      assert.equal(ps.dedupCount, 2);
      m.sweep(ctx.o.exchangeLifetimeMs + 1);
      assert.equal(m.dedupEntries, 0);
      assert.equal(ctx.peers.size, 0);
    });

    it('retransmits a separate response until its ACK', () => {
      const { ctx, transport } = context();
      const m = new MessageLayer(ctx);
      m.sendSeparateResponse(peer, 0x45, Buffer.from([1]), undefined, Buffer.from('v'));
      assert.equal(m.separatePending, 1);
      assert.equal(transport.sent.length, 1);
      const mid = transport.sent[0].readUInt16BE(2);
      const r = m.awaiting(`${peer.key}#${mid}`);
      assert.ok(r instanceof OutResponse);
      m.onOutResponseTimer(r, performance.now());
      assert.equal(transport.sent.length, 2);
      assert.deepEqual(transport.sent[1], transport.sent[0]);
      m.finishOutResponse(r);
      assert.equal(m.separatePending, 0);
      assert.equal(m.awaiting(`${peer.key}#${mid}`), undefined);
      ctx.timers.clear();
    });
  });

  describe('block-client', () => {
    it('reassembles a Block2 body and says why a transfer fails', () => {
      const x = request();
      const a = Buffer.alloc(16, 1);
      const b = Buffer.alloc(5, 2);
      assert.equal(
        takeBlock2(x, block2Response(0, true, a), decodeBlock(Buffer.from([8]))!, undefined, 0, 1000),
        undefined,
      );
      const body = takeBlock2(x, block2Response(1, false, b), decodeBlock(Buffer.from([0x10]))!, undefined, 0, 1000);
      assert.ok(Buffer.isBuffer(body));
      assert.deepEqual(body, Buffer.concat([a, b]));
      const y = request();
      assert.equal(
        takeBlock2(y, block2Response(1, false, b), decodeBlock(Buffer.from([0x10]))!, undefined, 0, 1000),
        'unexpected Block2 NUM 1 in first response',
      );
    });

    it('goes on with the next Block1 block on 2.31, in the smaller size the peer asks for', () => {
      const x = request(Buffer.alloc(3000));
      x.b1szx = 6;
      x.b1more = true;
      assert.equal(nextBlock1(x, (2 << 5) | 31, decodeBlock(Buffer.from([5]))), true);
      assert.equal(x.b1off, 1024);
      assert.equal(x.b1szx, 5);
      assert.equal(nextBlock1(x, 0x44, undefined), false);
    });
  });

  describe('request context', () => {
    it('reads path, query, Request-Tag and the first unsupported critical option', () => {
      const data = encodeMessage(
        MessageType.CON,
        2,
        7,
        undefined,
        [
          { n: 11, v: 'rd' },
          { n: 15, v: 'ep=a' },
          { n: 292, v: Buffer.from([9]) },
          { n: 65001, v: 1 },
        ],
        undefined,
      );
      const msg = parseMessage(data);
      assert.ok(msg !== undefined);
      const { ctx } = context();
      const e = new MessageLayer(ctx).addDedup('k', ctx.peers.get(peer.key), 0);
      const c = new InCtx({ onSeparateTimer: () => {} }, e, peer, msg.token, 2);
      readRequestOptions(c, msg.options);
      assert.deepEqual(c.path, ['rd']);
      assert.deepEqual(c.query, ['ep=a']);
      assert.deepEqual(c.requestTag, Buffer.from([9]));
      assert.equal(c.badCritical, 65001);
    });
  });
});
