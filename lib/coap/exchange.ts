/**
 * The exchange layer for our outgoing requests (RFC 7252 §5.3, §4.7): tokens and the table of requests awaiting a
 * response by token, NSTART slots and the per-peer queue, sending each step of an exchange (the request, its
 * Block1 blocks, the Block2 requests), time limits and CON retransmission timing, and ending exchanges (failure,
 * close, an observation's end). Responses are taken by response.ts. Below it the message layer (ids, ACK/RST); a
 * transport without message ids would plug in there.
 */
import type { Peer, PeerAddress } from '../transport/types';
import { toPeer } from '../transport/peer';
import {
  blockValue,
  encodeMessage,
  MessageType,
  OptionNumber,
  optionNumber,
  sizeToSzx,
  szxToSize,
  OptionList,
  type BlockOption,
  type ParsedPacket,
} from './codec';
import type { EndpointContext } from './context';
import type { MessageLayer } from './message';
import type { ObservationTable } from './observation-table';
import { Kind, OutRequest, type Observation, type RequestTimerOwner } from './peer';
import { StringTable } from './string-table';
import { keepToken, randomToken } from './tokens';
import {
  CoapRequestError,
  translateFailure,
  type NotificationListener,
  type OutgoingRequest,
  type RequestFailureTranslator,
} from './types';

export class Exchanges implements RequestTimerOwner {
  /** `peerKey|tokenhex` -> our request awaiting its response (not a Map: see StringTable). */
  private readonly byToken = new StringTable<OutRequest>();
  /** Requests waiting for an NSTART slot, over all peers. */
  queuedTotal = 0;

  constructor(
    private readonly ctx: EndpointContext,
    private readonly messages: MessageLayer,
    private readonly observations: ObservationTable,
  ) {}

  /** Outgoing requests in progress (queued ones included). */
  get outgoing(): number {
    return this.byToken.size;
  }

  /** Our request awaiting a response with this `peerKey|tokenhex`. */
  find(tokenKey: string): OutRequest | undefined {
    return this.byToken.get(tokenKey);
  }

  start(
    peerIn: PeerAddress,
    req: OutgoingRequest,
    kind: Kind,
    listener: NotificationListener | undefined,
    failure?: RequestFailureTranslator,
  ): Promise<unknown> {
    const ctx = this.ctx;
    if (ctx.closed) return refused(new CoapRequestError('endpoint closed', 'closed'), failure);
    const peer = toPeer(peerIn);
    const given = req.token;
    let givenKey = '';
    if (given !== undefined) {
      givenKey = peer.key + '|' + given.toString('hex');
      if (this.byToken.has(givenKey)) return refused(new Error('token already in use by a pending request'), failure);
      if (req.observe === 1) {
        const obs = this.observations.get(givenKey);
        if (obs !== undefined) this.dropObservation(obs);
      }
      const live = this.observations.get(givenKey);
      if (live !== undefined && kind === Kind.Observe) this.dropObservation(live); // re-registration
    }
    const ps = ctx.peers.get(peer.key);
    let x: OutRequest;
    try {
      x = new OutRequest(this, peer, ps, req, kind, req.timeoutMs !== undefined, listener);
    } catch (err) {
      ctx.peers.release(ps);
      return refused(err, failure);
    }
    if (failure !== undefined) x.failure = failure;
    if (given === undefined) this.giveFreshToken(x);
    else {
      x.token = given;
      x.tokenKey = givenKey;
    }
    if (kind === Kind.Observe) x.token = keepToken(x.token); // long-lived: don't pin the random pool
    x.origToken = x.token;
    const p = new Promise<unknown>((resolve, reject) => {
      x.resolve = resolve;
      x.reject = reject;
    });
    const payload = req.payload;
    const bs = req.blockSize ?? ctx.o.blockSize;
    if (payload !== undefined && payload.length > bs) {
      x.body = payload;
      x.b1szx = sizeToSzx(bs);
    }
    const now = x.started;
    if (x.hard) x.deadline = now + req.timeoutMs!;
    if (ps.active >= ctx.o.nstart) {
      if (ps.queue !== null && ps.queue.length >= ctx.o.maxQueuedPerPeer) {
        ctx.peers.release(ps);
        return refused(new CoapRequestError(`too many requests queued for ${peer.key}`, 'overloaded'), failure);
      }
      ps.refs++;
      this.byToken.set(x.tokenKey, x);
      (ps.queue ??= []).push(x);
      x.queued = true;
      this.queuedTotal++;
      if (x.hard) ctx.timers.schedule(x, x.deadline);
      return p;
    }
    ps.refs++;
    this.byToken.set(x.tokenKey, x);
    ps.active++;
    x.holdsSlot = true;
    this.sendNext(x, now);
    return p;
  }

  /** A random token no exchange or observation with that peer holds (nor one recently cancelled). */
  private giveFreshToken(x: OutRequest): void {
    const peerKey = x.peer.key;
    for (;;) {
      const t = randomToken();
      const key = peerKey + '|' + t.toString('hex');
      if (!this.byToken.has(key) && !this.observations.holds(key)) {
        x.token = t;
        x.tokenKey = key;
        return;
      }
    }
  }

  /** Sends the next message of an exchange (first request, next Block1 block or next Block2 request). */
  private sendNext(x: OutRequest, now: number): void {
    try {
      this.trySendNext(x, now);
    } catch (err) {
      // unencodable request (bad option name, token too long, ...): fail it instead of throwing
      if (x.done) return;
      this.finish(x);
      if (x.kind === Kind.NotifBlock) this.ctx.reportError(err);
      else x.rejectWith(err instanceof Error ? err : new Error(String(err)));
    }
  }

  private trySendNext(x: OutRequest, now: number): void {
    const ctx = this.ctx;
    const opts = REQUEST_OPTIONS;
    const peer = x.peer;
    let buf: Buffer;
    try {
      const payload = requestOptions(x, opts);
      if (x.midKey !== null) this.messages.drop(x.midKey);
      const mid = this.messages.allocMid(peer.key, x);
      this.messages.track(x);
      const type = x.con ? MessageType.CON : MessageType.NON;
      buf = encodeMessage(type, x.code, mid, x.token, opts.items, payload, opts.length);
    } finally {
      opts.clear(); // shared by every exchange: empty again (and holding no option value) whether or not it encoded
    }
    x.buf = buf;
    if (!x.hard) x.deadline = now + ctx.o.requestTimeoutMs; // re-armed by every step that makes progress
    x.sent = true;
    if (x.con) {
      x.acked = false;
      x.retransmits = 0;
      x.rto = ctx.initialRto();
      x.nextAt = now + x.rto;
    } else {
      x.acked = true;
      x.nextAt = Infinity;
    }
    ctx.st.requestsOut++;
    ctx.timers.schedule(x, x.nextAt < x.deadline ? x.nextAt : x.deadline);
    ctx.transport.send(buf, peer);
  }

  /** Continues an exchange that may have released its NSTART slot (after a separate response). */
  continueExchange(x: OutRequest, now: number): void {
    if (!x.holdsSlot) {
      const ps = x.ps;
      if (ps.active >= this.ctx.o.nstart) {
        (ps.queue ??= []).unshift(x);
        x.queued = true;
        this.queuedTotal++;
        this.ctx.timers.schedule(x, x.deadline);
        return;
      }
      ps.active++;
      x.holdsSlot = true;
    }
    this.sendNext(x, now);
  }

  /** A new token for the next step (each Block2 request has its own). */
  rekey(x: OutRequest): void {
    if (this.byToken.get(x.tokenKey) === x) this.byToken.delete(x.tokenKey);
    this.giveFreshToken(x);
    this.byToken.set(x.tokenKey, x);
  }

  private releaseSlot(x: OutRequest): void {
    if (!x.holdsSlot) return;
    x.holdsSlot = false;
    const ps = x.ps;
    ps.active--;
    const q = ps.queue;
    if (q === null || this.ctx.closed) return;
    while (ps.active < this.ctx.o.nstart && q.length > 0) {
      const next = q.shift()!;
      next.queued = false;
      this.queuedTotal--;
      if (next.done) continue;
      ps.active++;
      next.holdsSlot = true;
      this.ctx.timers.cancel(next);
      this.sendNext(next, performance.now());
    }
    if (q.length === 0) ps.queue = null;
  }

  /** Removes an exchange from every table; does not settle its promise. */
  finish(x: OutRequest): void {
    if (x.done) return;
    x.done = true;
    this.ctx.timers.cancel(x);
    if (x.midKey !== null) {
      this.messages.untrack(x);
      x.midKey = null;
    }
    if (this.byToken.get(x.tokenKey) === x) this.byToken.delete(x.tokenKey);
    const ps = x.ps;
    if (x.queued) {
      x.queued = false;
      this.queuedTotal--;
      const q = ps.queue;
      if (q !== null) {
        const i = q.indexOf(x);
        if (i >= 0) q.splice(i, 1);
        if (q.length === 0) ps.queue = null;
      }
    }
    this.releaseSlot(x);
    ps.refs--;
    this.ctx.peers.release(ps);
  }

  /** Ends an exchange with CoapRequestError `reason` (a notification's Block2 fetch: reported instead). */
  fail(x: OutRequest, reason: CoapRequestError['reason'], message: string): void {
    if (x.done) return;
    this.finish(x);
    const st = this.ctx.st;
    if (reason === 'timeout') st.timeouts++;
    else if (reason === 'reset') st.resets++;
    if (x.kind === Kind.NotifBlock) {
      // the notification is lost (a later one will bring the value again); make it visible
      if (x.obs !== null && x.obs.fetch === x) x.obs.fetch = null;
      if (reason !== 'closed')
        this.ctx.reportError(new CoapRequestError(`notification Block2 fetch: ${message}`, reason));
      return;
    }
    if (x.obs !== null && x.obs.active) this.passiveCancel(x.obs);
    x.rejectWith(new CoapRequestError(message, reason));
  }

  /** @internal timer callback */
  onRequestTimer(x: OutRequest, now: number): void {
    if (x.done) return;
    const ctx = this.ctx;
    if (x.queued) {
      if (now >= x.deadline - 0.5) this.fail(x, 'timeout', `no response from ${x.peer.key} in time (queued)`);
      else ctx.timers.schedule(x, x.deadline);
      return;
    }
    const due = !x.acked && now >= x.nextAt - 0.5;
    if (due && x.retransmits >= ctx.o.maxRetransmit) {
      this.unreachable(x, `no ACK from ${x.peer.key} after ${x.retransmits} retransmissions`);
      return;
    }
    if (now >= x.deadline - 0.5) {
      if (!x.acked && x.con) this.unreachable(x, `no ACK from ${x.peer.key} in time`);
      else this.fail(x, 'timeout', `no response from ${x.peer.key} in time`);
      return;
    }
    if (due) {
      x.retransmits++;
      ctx.st.retransmissions++;
      ctx.transport.send(x.buf!, x.peer);
      x.rto *= 2;
      x.nextAt = now + x.rto;
    }
    ctx.timers.schedule(x, !x.acked && x.nextAt < x.deadline ? x.nextAt : x.deadline);
  }

  /** A CON got no ACK at all: fail it, and (by default) the requests queued behind it. */
  private unreachable(x: OutRequest, message: string): void {
    const ps = x.ps;
    if (this.ctx.o.failQueuedOnTimeout && ps.queue !== null) {
      const q = ps.queue;
      ps.queue = null;
      for (const y of q) {
        y.queued = false;
        this.queuedTotal--;
        this.fail(y, 'timeout', `${x.peer.key} unreachable (an earlier request got no ACK)`);
      }
    }
    this.fail(x, 'timeout', message);
  }

  /** An empty ACK: the response will come separately; the interaction no longer counts for NSTART. */
  onEmptyAck(x: OutRequest): void {
    if (x.acked) return;
    x.acked = true;
    if (x.midKey !== null) {
      this.messages.drop(x.midKey);
      x.midKey = null;
    }
    this.releaseSlot(x);
    this.ctx.timers.schedule(x, x.deadline);
  }

  /** The peer answered the request with RST. */
  onReset(x: OutRequest, peer: Peer): void {
    this.fail(x, 'reset', `${peer.key} reset the request`);
  }

  // ---------------------------------------------------------------- what observations need of exchanges

  /** Ends an observation and the Block2 fetch of its last notification, if one runs. */
  dropObservation(obs: Observation): void {
    this.observations.remove(obs);
    const f = obs.fetch;
    if (f !== null) {
      obs.fetch = null;
      this.finish(f);
    }
  }

  /** Ends an observation without telling the peer: its next notification gets RST. */
  passiveCancel(obs: Observation): void {
    this.dropObservation(obs);
    this.observations.markCancelled(obs.tokenKey, performance.now() + this.ctx.o.requestTimeoutMs);
  }

  /**
   * RFC 7959 §2.6: fetches the rest of a notification whose first Block2 block came (`msg`) with `req` (plain GETs,
   * no Observe); the observation's listener gets the whole value unless a newer notification came meanwhile.
   */
  fetchNotificationRest(
    obs: Observation,
    req: OutgoingRequest,
    msg: ParsedPacket,
    b2: BlockOption,
    etag: Buffer | undefined,
    now: number,
  ): void {
    const payload = msg.payload;
    const ps = this.ctx.peers.get(obs.peer.key);
    const x = new OutRequest(this, obs.peer, ps, req, Kind.NotifBlock, false, undefined);
    this.giveFreshToken(x);
    x.origToken = x.token;
    x.phase = 1;
    x.first = msg;
    x.firstAt = now;
    x.chunks = [payload];
    x.b2off = payload.length;
    x.b2szx = b2.szx;
    x.etag = etag;
    x.obs = obs;
    x.gen = obs.gen;
    x.sent = true;
    obs.fetch = x;
    ps.refs++;
    this.byToken.set(x.tokenKey, x);
    this.continueExchange(x, now);
  }

  /** At close: every exchange ends, every pending promise rejects with CoapRequestError 'closed'. */
  close(): void {
    const pending = this.byToken.values(); // a new array already
    for (const ps of this.ctx.peers.states()) if (ps.queue !== null) for (const x of ps.queue) pending.push(x);
    for (const x of pending) {
      if (x.done) continue;
      this.finish(x);
      if (x.kind !== Kind.NotifBlock) x.rejectWith(new CoapRequestError('endpoint closed', 'closed'));
    }
  }

  /** After close: forget everything left. */
  clear(): void {
    this.byToken.clear();
    this.queuedTotal = 0;
  }
}

/** A request refused before it started, failed as its translator says. */
function refused(err: unknown, failure: RequestFailureTranslator | undefined): Promise<never> {
  const error = err instanceof Error ? err : new Error(String(err));
  return Promise.reject(translateFailure(failure, error));
}

/** The options of the request being encoded: one list for every exchange (encoding is synchronous). */
const REQUEST_OPTIONS = new OptionList();

/** Builds the options of the exchange's next message into `opts`; returns its payload. */
function requestOptions(x: OutRequest, opts: OptionList): Buffer | undefined {
  const r = x.req;
  let payload: Buffer | undefined;
  if (x.phase === 0) {
    if (r.observe !== undefined && x.kind !== Kind.NotifBlock) opts.add(OptionNumber.Observe, r.observe);
    const body = x.body;
    if (body !== null) {
      const size = szxToSize(x.b1szx);
      const end = Math.min(x.b1off + size, body.length);
      payload = body.subarray(x.b1off, end);
      x.b1more = end < body.length;
      opts.add(OptionNumber.Block1, blockValue(x.b1off / size, x.b1more, x.b1szx));
      if (x.b1off === 0) opts.add(OptionNumber.Size1, body.length);
    } else payload = r.payload;
  } else {
    const size = szxToSize(x.b2szx);
    opts.add(OptionNumber.Block2, blockValue(x.b2off / size, false, x.b2szx));
    if (r.method === 'FETCH') payload = r.payload;
  }
  const path = r.pathSegments;
  for (let i = 0; i < path.length; i++) opts.add(OptionNumber.UriPath, path[i]);
  const q = r.query;
  if (q !== undefined) for (let i = 0; i < q.length; i++) opts.add(OptionNumber.UriQuery, q[i]);
  if (r.contentFormat !== undefined && payload !== undefined && payload.length > 0)
    opts.add(OptionNumber.ContentFormat, r.contentFormat);
  if (r.accept !== undefined) opts.add(OptionNumber.Accept, r.accept);
  const extra = r.options;
  if (extra !== undefined)
    for (let i = 0; i < extra.length; i++) {
      const n = optionNumber(extra[i].name);
      if (
        n === OptionNumber.Block1 ||
        n === OptionNumber.Block2 ||
        ((x.phase === 1 || x.kind === Kind.NotifBlock) && n === OptionNumber.Observe)
      )
        continue;
      opts.add(n, extra[i].value);
    }
  return payload;
}
