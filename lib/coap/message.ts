/**
 * The CoAP message layer over UDP (RFC 7252 §4): message ids, the CON/NON messages we sent that await an ACK or RST
 * (by `peerKey#mid`), deduplication of the messages we receive (EXCHANGE_LIFETIME), empty ACK/RST, and the
 * retransmission of separate CON responses. The part a transport without message ids (CoAP over TCP, RFC 8323)
 * does without: the exchange layer above it matches by token.
 */
import { randomInt } from 'node:crypto';
import type { Peer, PeerAddress } from '../transport/types';
import { emptyMessage, encodeMessage, MessageType, type EncOption } from './codec';
import type { EndpointContext } from './context';
import { InEntry, type PeerState } from './peer';
import { StringTable } from './string-table';
import type { TimerItem } from './timers';

/** A message of ours waiting for its ACK/RST (a request, a separate response, a CON notification). */
export interface PendingMessage {
  /** `peerKey#mid` while it waits, null (or '') when it does not. */
  midKey: string | null;
}

const NO_BUF = Buffer.alloc(0);

/** A separate CON response we retransmit until ACKed. */
export class OutResponse implements TimerItem, PendingMessage {
  timerAt = 0;
  timerIdx = -1;
  retransmits = 0;
  midKey = '';
  buf: Buffer = NO_BUF;
  constructor(
    private readonly layer: MessageLayer,
    readonly peer: Peer,
    public rto: number,
  ) {}
  onTimer(now: number): void {
    this.layer.onOutResponseTimer(this, now);
  }
}

export class MessageLayer {
  private nextMid = randomInt(65536);
  /** `peerKey#mid` -> our CON/NON awaiting ACK/RST (requests), separate CON responses, CON notifications. */
  private readonly pending = new StringTable<PendingMessage>(); // not a Map: see StringTable
  /** `peerKey#mid` -> dedup entry, in arrival order. */
  // A Map, not a StringTable: its entries live for EXCHANGE_LIFETIME (promoted anyway), and with tens of thousands
  // of them a Map's lookups cost less.
  private readonly dedup = new Map<string, InEntry>();
  // A Map used as a FIFO leaves deleted slots at its front that `values().next()` walks over on every
  // eviction (O(n) once the cap is reached): the order lives in this list instead.
  private dedupHead: InEntry | null = null;
  private dedupTail: InEntry | null = null;
  /** Separate CON responses awaiting their ACK. */
  separatePending = 0;

  constructor(private readonly ctx: EndpointContext) {}

  get dedupEntries(): number {
    return this.dedup.size;
  }

  // ---------------------------------------------------------------- message ids and messages awaiting ACK/RST

  /** A message id free with this peer; `holder.midKey` (when given) gets its `peerKey#mid`. */
  allocMid(peerKey: string, holder: PendingMessage | null): number {
    for (let i = 0; i < 65536; i++) {
      const mid = (this.nextMid = (this.nextMid + 1) & 0xffff);
      const key = peerKey + '#' + mid;
      if (!this.pending.has(key)) {
        if (holder !== null) holder.midKey = key;
        return mid;
      }
    }
    throw new Error('no free message id');
  }

  /** Waits for the ACK/RST of `msg` (under its midKey). */
  track(msg: PendingMessage): void {
    if (msg.midKey !== null) this.pending.set(msg.midKey, msg);
  }

  /** Stops waiting for whatever awaits the ACK/RST of `midKey` (known to be one's own). */
  drop(midKey: string): void {
    this.pending.delete(midKey);
  }

  /** Stops waiting for the ACK/RST of `msg`. */
  untrack(msg: PendingMessage): void {
    const key = msg.midKey;
    if (key !== null && this.pending.get(key) === msg) this.pending.delete(key);
  }

  /** Ours awaiting an ACK/RST with this `peerKey#mid`. */
  awaiting(midKey: string): PendingMessage | undefined {
    return this.pending.get(midKey);
  }

  sendRst(mid: number, peer: PeerAddress): void {
    this.ctx.st.resetsSent++;
    this.ctx.transport.send(emptyMessage(MessageType.RST, mid), peer);
  }

  /** An empty ACK not remembered (a duplicate is answered again by the layer above). */
  sendAck(mid: number, peer: PeerAddress): void {
    this.ctx.transport.send(emptyMessage(MessageType.ACK, mid), peer);
  }

  /** An empty ACK, remembered for duplicates of the message it acknowledges. */
  ackAndRemember(dkey: string, peer: Peer, mid: number, now: number): void {
    const e = this.addDedup(dkey, this.ctx.peers.get(peer.key), now);
    e.buf = emptyMessage(MessageType.ACK, mid);
    this.ctx.transport.send(e.buf, peer);
  }

  // ---------------------------------------------------------------- separate responses (CON, retransmitted)

  sendSeparateResponse(
    peer: Peer,
    code: number,
    token: Buffer,
    opts: EncOption[] | undefined,
    payload: Buffer | undefined,
  ): void {
    const ctx = this.ctx;
    const r = new OutResponse(this, peer, ctx.initialRto());
    const mid = this.allocMid(peer.key, r);
    const buf = encodeMessage(MessageType.CON, code, mid, token, opts, payload);
    r.buf = buf;
    this.pending.set(r.midKey, r);
    this.separatePending++;
    ctx.timers.schedule(r, performance.now() + r.rto);
    ctx.transport.send(buf, peer);
  }

  /** @internal timer callback */
  onOutResponseTimer(r: OutResponse, now: number): void {
    if (this.pending.get(r.midKey) !== r) return;
    const ctx = this.ctx;
    if (r.retransmits >= ctx.o.maxRetransmit) {
      this.finishOutResponse(r);
      return;
    }
    r.retransmits++;
    ctx.st.retransmissions++;
    r.rto *= 2;
    ctx.timers.schedule(r, now + r.rto);
    ctx.transport.send(r.buf, r.peer);
  }

  /** The separate response was ACKed or RST (or timed out). */
  finishOutResponse(r: OutResponse): void {
    if (this.pending.get(r.midKey) !== r) return;
    this.pending.delete(r.midKey);
    this.ctx.timers.cancel(r);
    this.separatePending--;
  }

  // ---------------------------------------------------------------- deduplication of what we receive

  /** The dedup entry of a message already received (`peerKey#mid`). */
  duplicateOf(dkey: string): InEntry | undefined {
    return this.dedup.get(dkey);
  }

  addDedup(key: string, ps: PeerState, now: number): InEntry {
    const o = this.ctx.o;
    if (ps.dedupCount >= o.maxDedupEntriesPerPeer && ps.dHead !== null) this.dropDedup(ps.dHead, false);
    const previous = this.dedup.get(key);
    if (previous !== undefined) this.dropDedup(previous, false);
    if (this.dedup.size >= o.maxDedupEntries) {
      const oldest = this.dedupHead;
      if (oldest !== null) this.dropDedup(oldest, oldest.ps !== ps);
    }
    const e = new InEntry(key, ps, now + o.exchangeLifetimeMs);
    e.gPrev = this.dedupTail;
    if (this.dedupTail !== null) this.dedupTail.gNext = e;
    else this.dedupHead = e;
    this.dedupTail = e;
    const tail = ps.dTail;
    e.pPrev = tail;
    if (tail !== null) tail.pNext = e;
    else ps.dHead = e;
    ps.dTail = e;
    ps.dedupCount++;
    this.dedup.set(key, e);
    return e;
  }

  /** Forgets a dedup entry; `free`: release its peer's state if that leaves it idle. */
  dropDedup(e: InEntry, free: boolean): void {
    if (this.dedup.get(e.key) === e) this.dedup.delete(e.key);
    if (e.gPrev !== null || this.dedupHead === e) {
      if (e.gPrev !== null) e.gPrev.gNext = e.gNext;
      else this.dedupHead = e.gNext;
      if (e.gNext !== null) e.gNext.gPrev = e.gPrev;
      else this.dedupTail = e.gPrev;
      e.gPrev = e.gNext = null;
    }
    const ps = e.ps;
    const p = e.pPrev;
    const n = e.pNext;
    if (p !== null) p.pNext = n;
    else if (ps.dHead === e) ps.dHead = n;
    else return; // not linked
    if (n !== null) n.pPrev = p;
    else ps.dTail = p;
    e.pPrev = e.pNext = null;
    ps.dedupCount--;
    if (free) this.ctx.peers.release(ps);
  }

  /** Drops the dedup entries past EXCHANGE_LIFETIME (oldest first; stops at the first live one). */
  sweep(now: number): void {
    for (let e = this.dedupHead; e !== null;) {
      const next: InEntry | null = e.gNext;
      if (e.expires > now) break;
      if (!e.pending) this.dropDedup(e, true);
      e = next;
    }
  }

  close(): void {
    this.pending.clear();
    this.dedup.clear();
    this.dedupHead = this.dedupTail = null;
    this.separatePending = 0;
  }
}
