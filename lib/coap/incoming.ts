/**
 * The requests we answer (RFC 7252 §5.2): admission (rate limit, duplicates, concurrency), reading a request's
 * options, refusing what we cannot serve (4.05, 4.02, 5.05), Block2 follow-ups and Block1 blocks (via
 * block-server.ts), handing the request to the handler, and sending its response piggybacked, NON or (when the
 * handler is slow) as a separate CON response.
 */
import type { Peer } from '../transport/types';
import {
  CodeByte,
  codeFromByte,
  codeToByte,
  decodeBlock,
  emptyMessage,
  encodeMessage,
  MessageType,
  METHOD_BY_CODE,
  OptionNumber,
  optionNumber,
  parseMessage,
  type EncOption,
  type ParsedPacket,
} from './codec';
import { uriKey, type BlockReplies, type BlockServer } from './block-server';
import type { EndpointContext } from './context';
import type { RequestLimits } from './limits';
import type { MessageLayer } from './message';
import type { Notifier } from './observe-server';
import type { InEntry, PeerState } from './peer';
import { InCtx, readRequestOptions, type SeparateResponseTimer } from './request-context';
import type { CoapMethod, CoapOption, IncomingRequest, OutgoingResponse, RequestHandler } from './types';

const NOT_FOUND: OutgoingResponse = Object.freeze({ code: '4.04' });
const SERVER_ERROR: OutgoingResponse = Object.freeze({ code: '5.00' });

function isThenable(v: unknown): v is PromiseLike<OutgoingResponse> {
  return v !== null && typeof v === 'object' && typeof (v as PromiseLike<unknown>).then === 'function';
}

export class IncomingRequests implements BlockReplies, SeparateResponseTimer {
  handler: RequestHandler | undefined = undefined;

  constructor(
    private readonly ctx: EndpointContext,
    private readonly messages: MessageLayer,
    private readonly limits: RequestLimits,
    private readonly blocks: BlockServer,
    private readonly notifier: Notifier,
  ) {}

  /** A request datagram (code class 0). */
  onRequest(data: Buffer, peer: Peer, type: number, code: number, mid: number): void {
    const ctx = this.ctx;
    const st = ctx.st;
    if (type > MessageType.NON) {
      st.dropped++; // a request in an ACK or RST: format error, silently ignored
      return;
    }
    const now = performance.now();
    // The rate limit counts new exchanges: the next block of a block-wise transfer in progress (Block1
    // into a reassembly, Block2 from a cached body) takes no token, so that a fast link does not stall
    // a large transfer for an ACK_TIMEOUT whenever the bucket runs dry. For a peer with such a transfer
    // the decision waits until the request is parsed (processRequest: `admit`).
    let deferred = false;
    if (ctx.o.maxRequestsPerSecondPerAddress > 0) {
      const ps0 = ctx.peers.find(peer.key);
      if (ps0 !== undefined && ps0.blocks > 0) deferred = true;
      else if (!this.limits.takeToken(peer.address, now)) {
        st.rateLimited++;
        st.dropped++;
        return;
      }
    }
    const dkey = peer.key + '#' + mid;
    const dup = this.messages.duplicateOf(dkey);
    if (dup !== undefined) {
      this.onDuplicateRequest(dup, peer);
      return;
    }
    const con = type === MessageType.CON;
    const msg = parseMessage(data);
    if (msg === undefined) {
      if (con) this.messages.sendRst(mid, peer);
      st.dropped++;
      return;
    }
    st.requestsIn++;
    const ps = ctx.peers.get(peer.key);
    const e = this.messages.addDedup(dkey, ps, now);
    e.con = con;
    e.mid = mid;
    this.processRequest(e, peer, ps, msg, code, now, deferred);
    ctx.peers.release(ps);
  }

  private onDuplicateRequest(e: InEntry, peer: Peer): void {
    this.ctx.st.duplicates++;
    if (e.buf !== undefined) {
      this.ctx.transport.send(e.buf, peer);
      return;
    }
    if (e.pending && e.con && !e.separate) {
      // the client is retransmitting while the handler still works: ACK now, respond separately
      if (e.ctx !== null) this.ctx.timers.cancel(e.ctx);
      this.goSeparate(e, peer);
    }
  }

  private goSeparate(e: InEntry, peer: Peer): void {
    e.separate = true;
    e.buf = emptyMessage(MessageType.ACK, e.mid);
    this.ctx.transport.send(e.buf, peer);
  }

  /** @internal timer callback: the handler is slow, switch to a separate response. */
  onSeparateTimer(c: InCtx): void {
    const e = c.entry;
    if (e.pending && e.con && !e.separate && !this.ctx.closed) this.goSeparate(e, c.peer);
  }

  /** A new request: read, checked, its blocks handled, then handed to the handler. */
  private processRequest(
    e: InEntry,
    peer: Peer,
    ps: PeerState,
    msg: ParsedPacket,
    code: number,
    now: number,
    deferred: boolean,
  ): void {
    const c = new InCtx(this, e, peer, msg.token, code);
    readRequestOptions(c, msg.options);
    if (deferred && c.block1 === undefined && c.block2 === undefined && !this.admit(e, peer, now)) return;
    const method = METHOD_BY_CODE[code];
    if (method === undefined)
      return this.emitResponse(e, peer, c.token, CodeByte.MethodNotAllowed, undefined, undefined);
    if (this.refused(c)) return;
    if (c.block2 !== undefined && this.block2Request(c, c.block2, ps, deferred, now)) return;
    let payload = msg.payload;
    if (c.block1 !== undefined) {
      const body = this.blocks.receiveBlock1(this, c, c.block1, ps, payload, deferred, now);
      if (body === undefined) return;
      payload = body;
    }
    if (this.limits.overLimit(ps)) return this.overloaded(e, peer, c.token);
    this.dispatch(c, ps, method, msg.options, payload, now);
  }

  /** Options we do not serve: an unsupported critical option (4.02), a proxy request (5.05). True: answered. */
  private refused(c: InCtx): boolean {
    const bad = c.badCritical;
    if (bad !== 0) {
      const why = bad === OptionNumber.Accept ? 'Accept longer than 2 bytes' : `unsupported critical option ${bad}`;
      this.emitResponse(c.entry, c.peer, c.token, CodeByte.BadOption, undefined, Buffer.from(why));
      return true;
    }
    if (c.proxy) {
      this.emitResponse(c.entry, c.peer, c.token, CodeByte.ProxyingNotSupported, undefined, undefined);
      return true;
    }
    return false;
  }

  /**
   * A request with Block2: a later block of a body we keep is served from it (true: answered, or dropped by the
   * rate limit); otherwise the block asked for is noted for the handler's response (false).
   */
  private block2Request(c: InCtx, block2: Buffer, ps: PeerState, deferred: boolean, now: number): boolean {
    const blk = decodeBlock(block2);
    if (blk === undefined) {
      this.emitResponse(c.entry, c.peer, c.token, CodeByte.BadOption, undefined, Buffer.from('bad Block2'));
      return true;
    }
    const ourSzx = this.ctx.ourSzx;
    const szx = blk.szx < ourSzx ? blk.szx : ourSzx;
    const key = uriKey(ps.key, c.code, c.path, c.query);
    c.b2key = key;
    if (blk.num > 0) {
      const cached = this.blocks.cached(key);
      if (cached !== undefined) {
        const withObserve = c.observe !== undefined;
        this.blocks.serveBlock(this, c.entry, c.peer, c.token, cached, key, blk.num * blk.size, szx, now, withObserve);
        return true;
      }
    }
    if (deferred && c.block1 === undefined && !this.admit(c.entry, c.peer, now)) return true;
    c.b2num = blk.num;
    c.b2szx = blk.num === 0 ? szx : blk.szx;
    return false;
  }

  /** Hands the request to the handler; its response (now or later) goes out through finishIncoming. */
  private dispatch(
    c: InCtx,
    ps: PeerState,
    method: CoapMethod,
    options: ParsedPacket['options'],
    payload: Buffer,
    now: number,
  ): void {
    const e = c.entry;
    const con = e.con;
    const req: IncomingRequest = {
      peer: c.peer,
      method,
      code: codeFromByte(c.code),
      confirmable: con,
      messageId: e.mid,
      token: c.token,
      pathSegments: c.path,
      query: c.query,
      contentFormat: c.contentFormat,
      accept: c.accept,
      observe: c.observe,
      payload,
      options: options as CoapOption[],
    };
    e.pending = true;
    e.ctx = c;
    ps.inFlight++;
    this.limits.inFlightTotal++;
    const h = this.handler;
    let r: OutgoingResponse | Promise<OutgoingResponse>;
    if (h === undefined) r = NOT_FOUND;
    else {
      try {
        r = h(req);
      } catch (err) {
        this.ctx.reportError(err);
        r = SERVER_ERROR;
      }
    }
    if (isThenable(r)) {
      if (con) this.ctx.timers.schedule(c, now + this.ctx.o.separateResponseAfterMs);
      r.then(
        (res) => this.finishIncoming(c, res),
        (err) => {
          this.ctx.reportError(err);
          this.finishIncoming(c, SERVER_ERROR);
        },
      );
    } else this.finishIncoming(c, r);
  }

  /** The deferred rate-limit decision (see onRequest) for a request that continues no block-wise transfer. */
  admit(e: InEntry, peer: Peer, now: number): boolean {
    if (this.limits.takeToken(peer.address, now)) return true;
    const st = this.ctx.st;
    st.requestsIn--;
    st.rateLimited++;
    st.dropped++;
    this.messages.dropDedup(e, false);
    return false;
  }

  overloaded(e: InEntry, peer: Peer, token: Buffer): void {
    const st = this.ctx.st;
    st.overloaded++;
    if (!e.con) {
      st.dropped++;
      return;
    }
    const maxAge: EncOption[] = [{ n: OptionNumber.MaxAge, v: this.ctx.o.overloadMaxAgeS }];
    this.emitResponse(e, peer, token, CodeByte.ServiceUnavailable, maxAge, undefined);
  }

  /** The handler's response (or a failure) for a pending incoming exchange. */
  private finishIncoming(c: InCtx, res: OutgoingResponse): void {
    const e = c.entry;
    if (!e.pending) return;
    e.pending = false;
    e.ctx = null;
    const ctx = this.ctx;
    ctx.timers.cancel(c);
    const ps = e.ps;
    ps.inFlight--;
    this.limits.inFlightTotal--;
    if (ctx.closed) return;
    try {
      this.sendHandlerResponse(c, res);
    } catch (err) {
      ctx.reportError(err);
      this.emitResponse(e, c.peer, c.token, CodeByte.InternalServerError, undefined, undefined);
    }
    ctx.peers.release(ps);
  }

  private sendHandlerResponse(c: InCtx, res: OutgoingResponse): void {
    if (res === null || typeof res !== 'object') throw new TypeError('request handler returned no response');
    const code = codeToByte(res.code);
    const cls = code >> 5;
    if (cls < 2 || cls > 5 || cls === 3) throw new TypeError(`invalid response code ${res.code}`);
    if (c.observe !== undefined) this.notifier.trackServedObservation(c, code, res);
    const opts: EncOption[] = [];
    if (res.contentFormat !== undefined) opts.push({ n: OptionNumber.ContentFormat, v: res.contentFormat });
    const lp = res.locationPath;
    if (lp !== undefined) for (let i = 0; i < lp.length; i++) opts.push({ n: OptionNumber.LocationPath, v: lp[i] });
    const ro = res.options;
    if (ro !== undefined)
      for (let i = 0; i < ro.length; i++) opts.push({ n: optionNumber(ro[i].name), v: ro[i].value });
    if (c.b1echo >= 0) opts.push({ n: OptionNumber.Block1, v: c.b1echo });
    const payload = res.payload;
    // a large body goes out with Block2, the rest kept for the follow-ups
    if (payload !== undefined && this.blocks.serveResponse(this, c, code, opts, payload, res.onProgress)) return;
    this.emitResponse(c.entry, c.peer, c.token, code, opts, payload);
  }

  /** Sends the response to the request of `e`: piggybacked on the ACK, NON, or separate (CON) after an empty ACK. */
  emitResponse(
    e: InEntry,
    peer: Peer,
    token: Buffer,
    code: number,
    opts: EncOption[] | undefined,
    payload: Buffer | undefined,
  ): void {
    if (e.separate) {
      this.messages.sendSeparateResponse(peer, code, token, opts, payload);
      return;
    }
    let buf: Buffer;
    if (e.con) buf = encodeMessage(MessageType.ACK, code, e.mid, token, opts, payload);
    else buf = encodeMessage(MessageType.NON, code, this.messages.allocMid(peer.key, null), token, opts, payload);
    e.buf = buf;
    this.ctx.transport.send(buf, peer);
  }
}
