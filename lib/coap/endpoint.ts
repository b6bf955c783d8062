/**
 * The CoAP endpoint (RFC 7252 + RFC 7959 block-wise + RFC 7641 Observe, both sides) over one DatagramTransport: the
 * facade that owns the layers, routes each datagram to the one it concerns, and keeps the public API. The layers:
 * message.ts (ids, dedup, ACK/RST), exchange.ts and response.ts (our requests), incoming.ts (requests we answer), block-client.ts
 * and block-server.ts (block-wise), observe-client.ts and observe-server.ts (Observe), limits.ts, peer.ts.
 */
import type { DatagramTransport, Peer, PeerAddress } from '../transport/types';
import { MessageType, parseMessage } from './codec';
import { BlockServer } from './block-server';
import { EndpointContext } from './context';
import { resolveOptions, type ResolvedCoapEndpointOptions } from './endpoint-options';
import { Exchanges } from './exchange';
import { IncomingRequests } from './incoming';
import { RequestLimits } from './limits';
import { ResponseHandler } from './response';
import { MessageLayer, OutResponse } from './message';
import { ObservationTable } from './observation-table';
import { Observer } from './observe-client';
import { Notifier, OutNotification } from './observe-server';
import { Kind, OutRequest, type Observation } from './peer';
import type { CoapEndpointStats } from './stats';
import type {
  CoapEndpointOptions,
  IncomingResponse,
  NotificationListener,
  ObservationHandle,
  OutgoingRequest,
  OutgoingResponse,
  RequestFailureTranslator,
  RequestHandler,
  UnknownNotificationHandler,
} from './types';

export { DEFAULT_OPTIONS, resolveOptions, type ResolvedCoapEndpointOptions } from './endpoint-options';
export type { CoapEndpointStats } from './stats';

function noop(): void {}

/**
 * A CoAP endpoint (RFC 7252 message layer + RFC 7959 block-wise + RFC 7641 observer) over one
 * DatagramTransport: it serves incoming requests and sends outgoing ones on the same socket.
 */
export class CoapEndpoint {
  /** Receives errors that have nowhere else to go (handler/listener exceptions, internal faults). */
  onError: (err: unknown) => void = noop;
  /**
   * The observer answered one of our notifications (`notify()`, CON or NON) with RST: it does not want
   * the observation any more (RFC 7641 §3.6, §4.2); forget it. For a CON notification the promise of
   * `notify()` also rejects with CoapRequestError 'reset' (after this hook ran).
   */
  onNotificationReset: (peer: Peer, token: Buffer) => void = noop;

  private readonly ctx: EndpointContext;
  private readonly messages: MessageLayer;
  private readonly limits: RequestLimits;
  private readonly observations: ObservationTable;
  private readonly exchanges: Exchanges;
  private readonly responses: ResponseHandler;
  private readonly observer: Observer;
  private readonly blocks: BlockServer;
  private readonly notifier: Notifier;
  private readonly incoming: IncomingRequests;
  private closePromise: Promise<void> | undefined;
  private sweepTimer: NodeJS.Timeout | undefined;

  constructor(
    private readonly transport: DatagramTransport,
    options: Partial<CoapEndpointOptions> = {},
  ) {
    const ctx = (this.ctx = new EndpointContext(resolveOptions(options), transport, this));
    this.messages = new MessageLayer(ctx);
    this.limits = new RequestLimits(ctx.o);
    this.observations = new ObservationTable(ctx, this);
    this.exchanges = new Exchanges(ctx, this.messages, this.observations);
    this.responses = new ResponseHandler(ctx, this.messages, this.exchanges, this.observations);
    this.observer = new Observer(ctx, this.messages, this.exchanges, this.observations);
    this.blocks = new BlockServer(ctx, this.limits);
    this.notifier = new Notifier(ctx, this.messages, this.blocks, this);
    this.incoming = new IncomingRequests(ctx, this.messages, this.limits, this.blocks, this.notifier);
    transport.onDatagram(this.onDatagram);
  }

  /** The effective options (defaults applied). */
  get options(): Readonly<ResolvedCoapEndpointOptions> {
    return this.ctx.o;
  }

  async start(): Promise<PeerAddress> {
    if (this.ctx.closed) throw new Error('endpoint closed');
    const addr = await this.transport.start();
    if (this.sweepTimer === undefined && !this.ctx.closed) {
      this.sweepTimer = setInterval(this.sweep, this.ctx.o.sweepIntervalMs);
      this.sweepTimer.unref();
    }
    return addr;
  }

  localAddress(): PeerAddress | undefined {
    return this.transport.localAddress();
  }

  setRequestHandler(handler: RequestHandler): void {
    this.incoming.handler = handler;
  }

  setUnknownNotificationHandler(handler: UnknownNotificationHandler | undefined): void {
    this.observer.unknownHandler = handler;
  }

  /** Fails every pending request with CoapRequestError 'closed', drops all state and timers, closes the transport. */
  close(): Promise<void> {
    if (this.closePromise !== undefined) return this.closePromise;
    const ctx = this.ctx;
    ctx.closed = true;
    this.exchanges.close();
    this.observations.deactivateAll();
    this.notifier.close();
    ctx.timers.clear();
    if (this.sweepTimer !== undefined) clearInterval(this.sweepTimer);
    this.sweepTimer = undefined;
    this.messages.close();
    this.exchanges.clear();
    this.observations.close();
    this.blocks.close();
    this.limits.close();
    ctx.peers.close();
    this.closePromise = this.transport.close();
    return this.closePromise;
  }

  stats(): CoapEndpointStats {
    const outgoing = this.exchanges.outgoing;
    const inFlight = this.limits.inFlightTotal;
    const separate = this.messages.separatePending;
    const notifications = this.notifier.pending;
    return {
      ...this.ctx.st,
      activeExchanges: outgoing + inFlight + separate + notifications,
      outgoingRequests: outgoing,
      incomingInFlight: inFlight,
      separateResponsesPending: separate,
      notificationsPending: notifications,
      queued: this.exchanges.queuedTotal,
      dedupEntries: this.messages.dedupEntries,
      blockTransfers: this.blocks.reassemblies,
      cachedBlockResponses: this.blocks.cachedBodies,
      observations: this.observations.size,
      peers: this.ctx.peers.size,
      trackedAddresses: this.limits.trackedAddresses,
    };
  }

  // ================================================================ outgoing API

  /**
   * Sends a request and resolves with the (whole, reassembled) response. 4.xx/5.xx resolve too. A failure
   * rejects with CoapRequestError, or with what `failure` makes of it.
   */
  request(peer: PeerAddress, req: OutgoingRequest, failure?: RequestFailureTranslator): Promise<IncomingResponse> {
    return this.exchanges.start(peer, req, Kind.Request, undefined, failure) as Promise<IncomingResponse>;
  }

  /**
   * GET with Observe=0. Resolves with the registration response, plus an observation when that
   * response is 2.xx and carries Observe; later notifications go to `listener` (not the first response).
   */
  observe(
    peer: PeerAddress,
    req: OutgoingRequest,
    listener: NotificationListener,
  ): Promise<{ response: IncomingResponse; observation?: ObservationHandle }> {
    // a request that already says Observe=0 (the LwM2M server's) is kept as is: one copy less per observation
    const registration: OutgoingRequest = req.observe === 0 ? req : { ...req, observe: 0 };
    return this.exchanges.start(peer, registration, Kind.Observe, listener) as Promise<{
      response: IncomingResponse;
      observation?: ObservationHandle;
    }>;
  }

  /** The live observation holding `token` with `peer`, if any. */
  getObservation(peer: PeerAddress, token: Buffer): ObservationHandle | undefined {
    return this.observer.get(peer, token);
  }

  /**
   * Re-creates an observation known from elsewhere (e.g. persisted before a restart) so that its
   * notifications are accepted. `request` (the original GET) enables Block2 notifications and active cancel.
   */
  restoreObservation(
    peer: PeerAddress,
    token: Buffer,
    request: OutgoingRequest | undefined,
    listener: NotificationListener,
    lastSequence?: number,
  ): ObservationHandle {
    return this.observer.restore(peer, token, request, listener, lastSequence);
  }

  /** @internal */
  _cancelObservation(obs: Observation, mode: 'active' | 'passive'): Promise<IncomingResponse | void> {
    return this.observer.cancel(obs, mode);
  }

  // ================================================================ observed party (RFC 7641 §4)

  /**
   * Sends a notification of an observation we answered (RFC 7641 §4.2): `response` with the
   * observation's `token` and an Observe option carrying `response.observe` (taken modulo 2^24; a
   * 4.xx/5.xx notification, which ends the observation, carries none).
   *
   * - CON: retransmitted with the endpoint's timing (ackTimeoutMs, ackRandomFactor, maxRetransmit);
   *   resolves when ACKed; rejects with CoapRequestError 'reset' when the observer answers RST (after
   *   `onNotificationReset` ran), 'timeout' when the last retransmission got no ACK (RFC 7641 §4.5:
   *   forget the observer), 'cancelled' when a newer CON notification of the same observation
   *   replaces it before its ACK (the newer one takes over its retransmission counter and timeout,
   *   RFC 7641 §4.5.2), 'closed' when the endpoint closes.
   * - NON: resolves once sent; an RST answering it within EXCHANGE_LIFETIME reaches `onNotificationReset`.
   * - A payload larger than the block size (ours, or the smaller one the observer asked for in its
   *   registration) goes out as its first Block2 block with Size2; the rest is served to the observer's
   *   follow-up requests (RFC 7959 §2.6) from the body kept here, when this endpoint answered the
   *   registration (otherwise follow-ups reach the request handler, which answers them statelessly).
   *
   * Message ids come from the endpoint's own allocator, so they never collide with its other messages.
   */
  notify(
    peer: PeerAddress,
    token: Buffer,
    response: OutgoingResponse & { observe: number },
    options: { confirmable: boolean },
  ): Promise<void> {
    return this.notifier.notify(peer, token, response, options.confirmable);
  }

  // ================================================================ incoming datagrams

  private readonly onDatagram = (data: Buffer, peer: Peer): void => {
    const ctx = this.ctx;
    if (ctx.closed) return;
    const len = data.length;
    if (len < 4 || (data[0] & 0xc0) !== 0x40) {
      ctx.st.dropped++;
      return;
    }
    const type = (data[0] >> 4) & 3;
    const code = data[1];
    const mid = (data[2] << 8) | data[3];
    if (code === 0) {
      this.onEmpty(data, peer, type, mid);
      return;
    }
    const cls = code >> 5;
    if (cls === 0) this.incoming.onRequest(data, peer, type, code, mid);
    else if (cls === 2 || cls === 4 || cls === 5) this.onResponse(data, peer, type, code, mid);
    else {
      // reserved classes 1, 3, 6, 7
      if (type === MessageType.CON) this.messages.sendRst(mid, peer);
      ctx.st.dropped++;
    }
  };

  /** An empty message: the ACK or RST of one of ours, or a CoAP ping. */
  private onEmpty(data: Buffer, peer: Peer, type: number, mid: number): void {
    if (data.length !== 4 || (data[0] & 15) !== 0) {
      // "empty" with token/options/payload: format error
      if (type === MessageType.CON) this.messages.sendRst(mid, peer);
      this.ctx.st.dropped++;
      return;
    }
    if (type === MessageType.ACK || type === MessageType.RST) {
      const key = peer.key + '#' + mid;
      const x = this.messages.awaiting(key);
      if (x === undefined) {
        if (type === MessageType.RST) this.notifier.onUnmatchedReset(key);
        return; // late or duplicate ACK/RST
      }
      if (x instanceof OutRequest) {
        if (type === MessageType.ACK) {
          if (x.con) this.exchanges.onEmptyAck(x);
        } else this.exchanges.onReset(x, peer);
      } else if (x instanceof OutNotification) {
        if (type === MessageType.ACK) this.notifier.onAck(x);
        else this.notifier.onReset(x, peer);
      } else if (x instanceof OutResponse) this.messages.finishOutResponse(x);
      return;
    }
    if (type === MessageType.CON) this.messages.sendRst(mid, peer); // CoAP ping
  }

  /** A response: to one of our requests (by message id when piggybacked, else by token), or a notification. */
  private onResponse(data: Buffer, peer: Peer, type: number, code: number, mid: number): void {
    const now = performance.now();
    if (type === MessageType.ACK) {
      const x = this.messages.awaiting(peer.key + '#' + mid);
      if (x === undefined || !(x instanceof OutRequest)) return; // late duplicate
      const msg = parseMessage(data, x.token);
      if (msg === undefined || (msg.token !== x.token && !msg.token.equals(x.token))) {
        this.ctx.st.dropped++;
        return;
      }
      this.responses.handle(x, msg, code, peer, now);
      return;
    }
    if (type === MessageType.RST) {
      this.ctx.st.dropped++;
      return;
    }
    const con = type === MessageType.CON;
    const dkey = peer.key + '#' + mid;
    const dup = this.messages.duplicateOf(dkey);
    if (dup !== undefined) {
      this.ctx.st.duplicates++;
      if (dup.buf !== undefined) this.transport.send(dup.buf, peer);
      return;
    }
    const msg = parseMessage(data);
    if (msg === undefined) {
      if (con) this.messages.sendRst(mid, peer);
      this.ctx.st.dropped++;
      return;
    }
    const tkey = peer.key + '|' + msg.token.toString('hex');
    const x = this.exchanges.find(tkey);
    if (x !== undefined && !x.queued && !x.done) {
      if (con) this.messages.ackAndRemember(dkey, peer, mid, now);
      this.responses.handle(x, msg, code, peer, now);
      return;
    }
    this.observer.receive(msg, tkey, dkey, code, peer, mid, con, now);
  }

  private readonly sweep = (): void => {
    if (this.ctx.closed) return;
    const now = performance.now();
    this.messages.sweep(now);
    this.blocks.sweep(now);
    this.observations.sweep(now);
    this.notifier.sweep(now);
    this.limits.sweep(now);
  };
}
