/**
 * A DatagramTransport wrapper that lets the device side send CoAP notifications (RFC 7641 §4.2) on the
 * same socket as its CoapEndpoint.
 *
 * CoapEndpoint serves requests and sends its own, but has no call for "send a notification for this
 * observation": that is an unsolicited 2.05 carrying the observer's token and an Observe sequence
 * number, CON or NON, whose ACK/RST must reach whoever sent it. This wrapper sits between the endpoint
 * and the real transport:
 * - `notify()` encodes and sends the notification itself, retransmits a CON one (RFC 7252 timing) and
 *   settles when its ACK comes, or fails on RST / after the last retransmission;
 * - incoming empty ACK/RST whose message id belongs to one of our notifications are taken here; every
 *   other datagram goes on to the endpoint;
 * - message ids: the wrapper watches the ids the endpoint puts on its own CON/NON messages (it numbers
 *   them sequentially) and numbers notifications half the id space away, so the two never collide
 *   within EXCHANGE_LIFETIME at the server's deduplication.
 * It also lets the client go quiet (`receiving = false`: a sleeping queue-mode device or one that
 * never came back from a firmware update).
 */
import { randomInt } from 'node:crypto';
import { encodeMessage, MessageType, type EncOption } from '../coap/codec';
import { CoapRequestError } from '../coap/types';
import type { DatagramTransport, Peer, PeerAddress } from '../transport/types';
import { toPeer } from '../transport/peer';

export interface NotificationTiming {
  ackTimeoutMs: number;
  ackRandomFactor: number;
  maxRetransmit: number;
}

interface PendingCon {
  buf: Buffer;
  peer: Peer;
  retransmits: number;
  rto: number;
  timer: NodeJS.Timeout | undefined;
  resolve: () => void;
  reject: (err: Error) => void;
  onReset: () => void;
}

/** How many NON notifications we remember, per transport, to recognise an RST answering one. */
const RECENT_NON = 32;

export class NotifierTransport implements DatagramTransport {
  /** False: every incoming datagram is dropped. */
  receiving = true;
  /** False: nothing is sent (the endpoint's messages included). */
  sending = true;
  /** Notifications sent (CON and NON), for statistics. */
  sent = 0;
  private listener: ((data: Buffer, peer: Peer) => void) | undefined;
  private lastMid = randomInt(65536);
  private own = 0;
  private readonly pending = new Map<string, PendingCon>();
  private readonly recentNon = new Map<string, () => void>();
  private closed = false;

  constructor(
    readonly inner: DatagramTransport,
    private readonly timing: NotificationTiming,
  ) {
    inner.onDatagram(this.onInner);
  }

  start(): Promise<PeerAddress> {
    return this.inner.start();
  }

  localAddress(): PeerAddress | undefined {
    return this.inner.localAddress();
  }

  onDatagram(listener: (data: Buffer, peer: Peer) => void): void {
    this.listener = listener;
  }

  send(data: Buffer, peer: PeerAddress): void {
    if (!this.sending || this.closed) return;
    if (data.length >= 4 && data[1] !== 0) {
      const type = (data[0] >> 4) & 3;
      if (type === MessageType.CON || type === MessageType.NON) this.lastMid = (data[2] << 8) | data[3];
    }
    this.inner.send(data, peer);
  }

  /** Number of CON notifications waiting for their ACK. */
  get unacknowledged(): number {
    return this.pending.size;
  }

  /**
   * Sends one notification. A NON one resolves at once; a CON one when ACKed. Rejects with
   * CoapRequestError 'reset' (the observer does not want it: `onReset` is called too) or 'timeout'.
   */
  notify(
    peerIn: PeerAddress,
    token: Buffer,
    code: number,
    options: EncOption[],
    payload: Buffer | undefined,
    confirmable: boolean,
    onReset: () => void,
  ): Promise<void> {
    if (this.closed) return Promise.reject(new CoapRequestError('transport closed', 'closed'));
    const peer = toPeer(peerIn);
    const mid = (this.lastMid + 0x8000 + (this.own++ & 0x3fff)) & 0xffff;
    const key = peer.key + '#' + mid;
    const buf = encodeMessage(confirmable ? MessageType.CON : MessageType.NON, code, mid, token, options, payload);
    this.sent++;
    if (!confirmable) {
      this.recentNon.delete(key);
      this.recentNon.set(key, onReset);
      if (this.recentNon.size > RECENT_NON) this.recentNon.delete(this.recentNon.keys().next().value!);
      if (this.sending) this.inner.send(buf, peer);
      return Promise.resolve();
    }
    return new Promise<void>((resolve, reject) => {
      const t = this.timing;
      const p: PendingCon = {
        buf,
        peer,
        retransmits: 0,
        rto: t.ackTimeoutMs * (1 + Math.random() * (t.ackRandomFactor - 1)),
        timer: undefined,
        resolve,
        reject,
        onReset,
      };
      this.pending.get(key)?.reject(new CoapRequestError('superseded', 'cancelled'));
      this.pending.set(key, p);
      this.arm(key, p);
      if (this.sending) this.inner.send(buf, peer);
    });
  }

  private arm(key: string, p: PendingCon): void {
    p.timer = setTimeout(() => {
      if (this.pending.get(key) !== p) return;
      if (p.retransmits >= this.timing.maxRetransmit) {
        this.pending.delete(key);
        p.reject(new CoapRequestError(`no ACK from ${p.peer.key} for a notification`, 'timeout'));
        return;
      }
      p.retransmits++;
      p.rto *= 2;
      if (this.sending) this.inner.send(p.buf, p.peer);
      this.arm(key, p);
    }, p.rto);
  }

  /** Fails every unacknowledged notification and closes the socket. */
  close(): Promise<void> {
    this.closed = true;
    for (const p of this.pending.values()) {
      if (p.timer !== undefined) clearTimeout(p.timer);
      p.reject(new CoapRequestError('transport closed', 'closed'));
    }
    this.pending.clear();
    this.recentNon.clear();
    return this.inner.close();
  }

  private readonly onInner = (data: Buffer, peer: Peer): void => {
    if (!this.receiving || this.closed) return;
    if (data.length === 4 && data[1] === 0) {
      const type = (data[0] >> 4) & 3;
      if (type === MessageType.ACK || type === MessageType.RST) {
        const key = peer.key + '#' + ((data[2] << 8) | data[3]);
        const p = this.pending.get(key);
        if (p !== undefined) {
          this.pending.delete(key);
          if (p.timer !== undefined) clearTimeout(p.timer);
          if (type === MessageType.ACK) p.resolve();
          else {
            p.onReset();
            p.reject(new CoapRequestError(`${peer.key} reset a notification`, 'reset'));
          }
          return;
        }
        if (type === MessageType.RST) {
          const onReset = this.recentNon.get(key);
          if (onReset !== undefined) {
            this.recentNon.delete(key);
            onReset();
            return;
          }
        }
      }
    }
    this.listener?.(data, peer);
  };
}
