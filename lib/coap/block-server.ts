/**
 * Block-wise transfers of the requests we answer (RFC 7959 §2.3-2.5): Block1 bodies reassembled until their last
 * block, and large response bodies (a handler's or a notification's) kept and served block by block to the
 * follow-up requests. Bounded per peer and in total; idle state expires.
 */
import type { Peer } from '../transport/types';
import { blockValue, CodeByte, decodeBlock, OptionNumber, szxToSize, type EncOption } from './codec';
import type { EndpointContext } from './context';
import type { RequestLimits } from './limits';
import type { InEntry, PeerState } from './peer';
import type { InCtx } from './request-context';

/** Body of a large response we serve block by block. */
export interface B2Entry {
  body: Buffer;
  code: number;
  opts: EncOption[];
  expires: number;
  ps: PeerState;
  /** The body of a notification: its Observe value, echoed to follow-ups that carry Observe (node-coap's do). */
  observe?: number;
  /** The handler's OutgoingResponse.onProgress: told of every block served. */
  onProgress?: (sentBytes: number, totalBytes: number) => void;
}

/** Block1 reassembly in progress. */
interface B1Entry {
  chunks: Buffer[];
  size: number;
  expires: number;
  ps: PeerState;
}

/** How block-wise answers go out, and the incoming layer's decisions they need (incoming.ts). */
export interface BlockReplies {
  /** Sends the response to the request of `e` (piggybacked, NON, or separate). */
  emitResponse(
    e: InEntry,
    peer: Peer,
    token: Buffer,
    code: number,
    opts: EncOption[] | undefined,
    payload: Buffer | undefined,
  ): void;
  /** The deferred rate-limit decision; false: the request was dropped. */
  admit(e: InEntry, peer: Peer, now: number): boolean;
  /** 5.03 (CON) or a drop (NON): too many requests in progress. */
  overloaded(e: InEntry, peer: Peer, token: Buffer): void;
}

/** The key of a resource's block-wise state: peer, method, path and query. */
export function uriKey(peerKey: string, code: number, path: string[], query: string[]): string {
  return peerKey + '|' + code + '|' + path.join('/') + '?' + query.join('&');
}

function requestTagKey(tag: Buffer | undefined): string {
  return tag === undefined ? '' : '|' + tag.toString('hex');
}

export class BlockServer {
  private readonly b1 = new Map<string, B1Entry>();
  private readonly b2 = new Map<string, B2Entry>();

  constructor(
    private readonly ctx: EndpointContext,
    private readonly limits: RequestLimits,
  ) {}

  /** Block1 reassemblies in progress. */
  get reassemblies(): number {
    return this.b1.size;
  }

  /** Large bodies kept for Block2 follow-ups. */
  get cachedBodies(): number {
    return this.b2.size;
  }

  /** The body kept for this resource's Block2 follow-ups. */
  cached(key: string): B2Entry | undefined {
    return this.b2.get(key);
  }

  /**
   * A request with Block1: takes its block into the reassembly of its resource (and Request-Tag). Returns the body
   * to hand to the handler (the whole of it at the last block), or undefined when the request was answered here
   * (2.31 Continue, 4.08, 4.13, 4.00, 5.03) or dropped by the rate limit.
   */
  receiveBlock1(
    out: BlockReplies,
    c: InCtx,
    block1: Buffer,
    ps: PeerState,
    payload: Buffer,
    deferred: boolean,
    now: number,
  ): Buffer | undefined {
    const o = this.ctx.o;
    const e = c.entry;
    const peer = c.peer;
    const token = c.token;
    const blk = decodeBlock(block1);
    if (blk === undefined) {
      out.emitResponse(e, peer, token, CodeByte.BadRequest, undefined, Buffer.from('bad Block1'));
      return undefined;
    }
    const key = uriKey(ps.key, c.code, c.path, c.query) + requestTagKey(c.requestTag);
    const off = blk.num * blk.size;
    let t = this.b1.get(key);
    if (deferred && (blk.num === 0 || t === undefined || off !== t.size) && !out.admit(e, peer, now)) return undefined;
    if (blk.num === 0) {
      if (c.size1 !== undefined && c.size1 > o.maxBodySize) return this.tooLarge(out, c, key);
      if (t === undefined) {
        if (blk.more) {
          if (!this.makeRoom(ps)) {
            out.overloaded(e, peer, token);
            return undefined;
          }
          t = { chunks: [], size: 0, expires: 0, ps };
          this.b1.set(key, t);
          ps.blocks++;
        }
      } else {
        t.chunks = [];
        t.size = 0;
      }
    } else if (t === undefined || off > t.size) {
      if (t !== undefined) this.dropB1(key, t);
      out.emitResponse(e, peer, token, CodeByte.RequestEntityIncomplete, undefined, undefined);
      return undefined;
    } else if (off < t.size) {
      // a block we already have (re-sent with a new MID): acknowledge again, nothing to append
      if (blk.more) {
        const echo: EncOption[] = [{ n: OptionNumber.Block1, v: blockValue(blk.num, true, blk.szx) }];
        out.emitResponse(e, peer, token, CodeByte.Continue, echo, undefined);
        return undefined;
      }
      this.dropB1(key, t);
      out.emitResponse(e, peer, token, CodeByte.RequestEntityIncomplete, undefined, undefined);
      return undefined;
    }
    if (blk.more && payload.length !== blk.size) {
      if (t !== undefined) this.dropB1(key, t);
      out.emitResponse(e, peer, token, CodeByte.BadRequest, undefined, Buffer.from('Block1 block size mismatch'));
      return undefined;
    }
    if (t !== undefined) {
      if (t.size + payload.length > o.maxBodySize) return this.tooLarge(out, c, key);
      if (blk.more) {
        t.chunks.push(payload);
        t.size += payload.length;
        t.expires = now + o.blockTransferTimeoutMs;
        const szx = blk.szx < this.ctx.ourSzx ? blk.szx : this.ctx.ourSzx;
        const more: EncOption[] = [{ n: OptionNumber.Block1, v: blockValue(blk.num, true, szx) }];
        out.emitResponse(e, peer, token, CodeByte.Continue, more, undefined);
        return undefined;
      }
      // last block: only now check the concurrency limit, so that a 5.03 lets the client retry this block
      if (this.limits.overLimit(ps)) {
        out.overloaded(e, peer, token);
        return undefined;
      }
      t.chunks.push(payload);
      payload = Buffer.concat(t.chunks, t.size + payload.length);
      this.dropB1(key, t);
    }
    c.b1echo = blockValue(blk.num, false, blk.szx);
    return payload;
  }

  /** 4.13 with the largest body we take; the reassembly (if any) is dropped. Answered: undefined. */
  private tooLarge(out: BlockReplies, c: InCtx, key: string): undefined {
    const t = this.b1.get(key);
    if (t !== undefined) this.dropB1(key, t);
    const size1: EncOption[] = [{ n: OptionNumber.Size1, v: this.ctx.o.maxBodySize }];
    out.emitResponse(c.entry, c.peer, c.token, CodeByte.RequestEntityTooLarge, size1, undefined);
    return undefined;
  }

  /**
   * The handler's response to `c`, when it goes out with Block2 (larger than the block size, or a later block
   * asked for): keeps the body for the follow-ups and sends the block asked for. False: it fits one message.
   */
  serveResponse(
    out: BlockReplies,
    c: InCtx,
    code: number,
    opts: EncOption[],
    payload: Buffer,
    onProgress: ((sentBytes: number, totalBytes: number) => void) | undefined,
  ): boolean {
    const e = c.entry;
    const szx = c.b2szx >= 0 ? c.b2szx : this.ctx.ourSzx;
    const size = szxToSize(szx);
    if (!(payload.length > size || c.b2num > 0)) return false;
    const key = c.b2key ?? uriKey(e.ps.key, c.code, c.path, c.query);
    const old = this.b2.get(key);
    if (old !== undefined) this.dropB2(key, old);
    const entry: B2Entry = { body: payload, code, opts, expires: 0, ps: e.ps };
    if (onProgress !== undefined) entry.onProgress = onProgress;
    if (payload.length > size && this.makeRoom(e.ps)) {
      this.b2.set(key, entry);
      e.ps.blocks++;
    }
    this.serveBlock(out, e, c.peer, c.token, entry, key, c.b2num * size, szx, performance.now());
    return true;
  }

  /** Sends the block at `off` of a kept body (and forgets the body after its last block). */
  serveBlock(
    out: BlockReplies,
    e: InEntry,
    peer: Peer,
    token: Buffer,
    c: B2Entry,
    key: string,
    off: number,
    szx: number,
    now: number,
    withObserve = false,
  ): void {
    const body = c.body;
    const size = szxToSize(szx);
    if (off >= body.length && off > 0) {
      this.dropB2(key, c);
      return out.emitResponse(e, peer, token, CodeByte.BadOption, undefined, Buffer.from('Block2 beyond the end'));
    }
    const end = Math.min(off + size, body.length);
    const more = end < body.length;
    const opts = c.opts.slice();
    opts.push({ n: OptionNumber.Block2, v: blockValue(off / size, more, szx) });
    if (off === 0) opts.push({ n: OptionNumber.Size2, v: body.length });
    if (withObserve && c.observe !== undefined) opts.push({ n: OptionNumber.Observe, v: c.observe });
    if (more) c.expires = now + this.ctx.o.blockTransferTimeoutMs;
    else this.dropB2(key, c);
    out.emitResponse(e, peer, token, c.code, opts, body.subarray(off, end));
    if (c.onProgress !== undefined) this.ctx.progressOf(c.onProgress, end, body.length);
  }

  /** Keeps a notification's body for the observer's Block2 follow-ups to `key` (replacing an older one). */
  keepNotificationBody(
    ps: PeerState,
    key: string,
    code: number,
    opts: EncOption[],
    body: Buffer,
    observe: number,
  ): void {
    const old = this.b2.get(key);
    if (old !== undefined) this.dropB2(key, old);
    if (this.makeRoom(ps)) {
      const expires = performance.now() + this.ctx.o.blockTransferTimeoutMs;
      this.b2.set(key, { body, code, opts, expires, ps, observe });
      ps.blocks++;
    }
    this.ctx.peers.release(ps);
  }

  /** Frees room for one more block state of this peer if it can; false when the total is still at its limit. */
  private makeRoom(ps: PeerState): boolean {
    const o = this.ctx.o;
    if (ps.blocks >= o.maxBlockTransfersPerPeer) this.evictPeerBlock(ps);
    if (this.b1.size + this.b2.size >= o.maxBlockTransfers) this.evictOldestB2();
    return this.b1.size + this.b2.size < o.maxBlockTransfers;
  }

  private dropB1(key: string, t: B1Entry): void {
    if (this.b1.get(key) !== t) return;
    this.b1.delete(key);
    t.ps.blocks--;
    this.ctx.peers.release(t.ps);
  }

  private dropB2(key: string, c: B2Entry): void {
    if (this.b2.get(key) !== c) return;
    this.b2.delete(key);
    c.ps.blocks--;
    this.ctx.peers.release(c.ps);
  }

  private evictOldestB2(): void {
    for (const [k, c] of this.b2) {
      this.dropB2(k, c);
      return;
    }
  }

  /** Frees room for one more block state of this peer: its oldest cached body, else its oldest reassembly. */
  private evictPeerBlock(ps: PeerState): void {
    for (const [k, c] of this.b2)
      if (c.ps === ps) {
        this.dropB2(k, c);
        return;
      }
    for (const [k, t] of this.b1)
      if (t.ps === ps) {
        this.dropB1(k, t);
        return;
      }
  }

  sweep(now: number): void {
    for (const [k, t] of this.b1) if (t.expires <= now) this.dropB1(k, t);
    for (const [k, c] of this.b2) if (c.expires <= now) this.dropB2(k, c);
  }

  close(): void {
    this.b1.clear();
    this.b2.clear();
  }
}
