import { randomBytes, randomInt } from 'node:crypto';
import type { DatagramTransport, Peer, PeerAddress } from '../transport/types';
import { flatString, toPeer } from '../transport/peer';
import {
  blockValue,
  codeFromByte,
  codeToByte,
  decodeBlock,
  decodeFormatOption,
  decodeUint,
  emptyMessage,
  encodeMessage,
  METHOD_BY_CODE,
  METHOD_CODES,
  MessageType,
  normaliseParsedOptions,
  OptionNumbers,
  optionNumber,
  parseMessage,
  sizeToSzx,
  szxToSize,
  type BlockOption,
  type EncOption,
  type ParsedPacket,
} from './codec';
import { AddressBuckets } from './address-buckets';
import { maxTransmitWait } from './timeouts';
import { TimerHeap, type TimerItem } from './timers';
import {
  CoapRequestError,
  type CoapEndpointOptions,
  type CoapOption,
  type IncomingRequest,
  type IncomingResponse,
  type NotificationListener,
  type ObservationHandle,
  type OutgoingRequest,
  type OutgoingResponse,
  type RequestHandler,
  type UnknownNotificationHandler,
} from './types';

const CON = MessageType.CON;
const NON = MessageType.NON;
const ACK = MessageType.ACK;
const RST = MessageType.RST;

const C_231 = (2 << 5) | 31; // 2.31 Continue
const C_400 = 4 << 5;
const C_402 = (4 << 5) | 2;
const C_405 = (4 << 5) | 5;
const C_408 = (4 << 5) | 8;
const C_413 = (4 << 5) | 13;
const C_500 = 5 << 5;
const C_503 = (5 << 5) | 3;
const C_505 = (5 << 5) | 5;

const O_OBSERVE = 6;
const O_URI_PATH = 11;
const O_CONTENT_FORMAT = 12;
const O_MAX_AGE = 14;
const O_URI_QUERY = 15;
const O_ACCEPT = 17;
const O_BLOCK2 = 23;
const O_BLOCK1 = 27;
const O_SIZE2 = 28;
const O_SIZE1 = 60;

/** 2^23: the Observe sequence window of RFC 7641 §3.4. */
const OBS_WINDOW = 1 << 23;
/** RFC 7641 §3.4: a notification more than 128 s after the last one is fresh whatever its number. */
const OBS_FRESH_MS = 128_000;
/** Bounds for small maps that only protect against misbehaving peers. */
const MAX_TRACKED_ADDRESSES = 65536;
const MAX_CANCELLED_TOKENS = 65536;
/** Observations we answered (as the observed party) whose request we remember for Block2 notifications. */
const MAX_SERVED_OBSERVATIONS = 65536;
/** NON notifications remembered to recognise an RST answering one (each for EXCHANGE_LIFETIME at most). */
const MAX_RECENT_NON_NOTIFICATIONS = 4096;

export type ResolvedCoapEndpointOptions = Required<CoapEndpointOptions>;

/** Defaults for everything except the derived values (see resolveOptions). */
export const DEFAULT_OPTIONS: Readonly<CoapEndpointOptions> = Object.freeze({
  ackTimeoutMs: 2000,
  ackRandomFactor: 1.5,
  maxRetransmit: 4,
  nstart: 1,
  maxQueuedPerPeer: 256,
  blockSize: 1024,
  exchangeLifetimeMs: 247_000,
  maxDedupEntries: 100_000,
  maxDedupEntriesPerPeer: 1000,
  maxConcurrentPerPeer: 8,
  maxRequestsPerSecondPerAddress: 1000,
  maxBlockTransfers: 200,
  maxBodySize: 1024 * 1024,
  maxBlockTransfersPerPeer: 4,
  maxResponseBodySize: 16 * 1024 * 1024,
  maxConcurrentTotal: 10_000,
  overloadMaxAgeS: 5,
  failQueuedOnTimeout: true,
});

export function resolveOptions(options: Partial<CoapEndpointOptions> = {}): ResolvedCoapEndpointOptions {
  const defined: Partial<CoapEndpointOptions> = {};
  for (const [k, v] of Object.entries(options)) if (v !== undefined) (defined as Record<string, unknown>)[k] = v;
  const o = { ...DEFAULT_OPTIONS, ...defined } as CoapEndpointOptions;
  const requestTimeoutMs = o.requestTimeoutMs ?? maxTransmitWait(o);
  if (!(o.blockSize >= 16 && o.blockSize <= 1024)) throw new RangeError('blockSize must be within 16..1024');
  if (!(o.nstart >= 1)) throw new RangeError('nstart must be >= 1');
  return {
    ...o,
    separateResponseAfterMs: o.separateResponseAfterMs ?? o.ackTimeoutMs / 2,
    requestTimeoutMs,
    maxBlockTransfersPerPeer: o.maxBlockTransfersPerPeer ?? 4,
    blockTransferTimeoutMs: o.blockTransferTimeoutMs ?? requestTimeoutMs,
    maxResponseBodySize: o.maxResponseBodySize ?? 16 * 1024 * 1024,
    maxConcurrentTotal: o.maxConcurrentTotal ?? 10_000,
    overloadMaxAgeS: o.overloadMaxAgeS ?? 5,
    failQueuedOnTimeout: o.failQueuedOnTimeout ?? true,
    sweepIntervalMs: o.sweepIntervalMs ?? Math.max(10, Math.min(1000, o.exchangeLifetimeMs / 4)),
  };
}

/** Counters (monotonic since start) and gauges (current sizes). */
export interface CoapEndpointStats {
  /** Requests received and handed on (duplicates, rate-limited and unparsable ones excluded). */
  requestsIn: number;
  /** Request messages sent (each block counts; retransmissions excluded). */
  requestsOut: number;
  /** Responses received to our requests (each block counts). */
  responsesIn: number;
  notificationsIn: number;
  /** Notifications we sent as the observed party (`notify()`; retransmissions excluded). */
  notificationsOut: number;
  /** RSTs received in answer to our notifications (the observer ended the observation). */
  notificationResets: number;
  /** Stale notifications dropped by the RFC 7641 §3.4 ordering rule. */
  staleNotifications: number;
  retransmissions: number;
  /** Duplicate CON/NON messages recognised (answered from the cache or ignored). */
  duplicates: number;
  /** Datagrams ignored: malformed, unmatched, rate-limited, NON over the concurrency limit. */
  dropped: number;
  /** Requests dropped by the per-address token bucket (also counted in dropped). */
  rateLimited: number;
  /** 5.03 sent because of the concurrency limits, or NON dropped for it. */
  overloaded: number;
  /** Outgoing requests failed with 'timeout' / 'reset'. */
  timeouts: number;
  resets: number;
  /** RSTs we sent (unknown tokens, cancelled observations, unparsable CON, pings). */
  resetsSent: number;
  // gauges
  /**
   * Outgoing requests in progress + incoming requests being handled + separate responses awaiting ACK
   * + CON notifications awaiting ACK.
   */
  activeExchanges: number;
  outgoingRequests: number;
  incomingInFlight: number;
  separateResponsesPending: number;
  /** CON notifications awaiting their ACK. */
  notificationsPending: number;
  queued: number;
  dedupEntries: number;
  blockTransfers: number;
  cachedBlockResponses: number;
  observations: number;
  peers: number;
  trackedAddresses: number;
}

type Counters = Omit<
  CoapEndpointStats,
  | 'activeExchanges'
  | 'outgoingRequests'
  | 'incomingInFlight'
  | 'separateResponsesPending'
  | 'notificationsPending'
  | 'queued'
  | 'dedupEntries'
  | 'blockTransfers'
  | 'cachedBlockResponses'
  | 'observations'
  | 'peers'
  | 'trackedAddresses'
>;

// ---------------------------------------------------------------- internal state

/** Per-peer state; exists only while the peer has something in progress or cached. */
class PeerState {
  /** NSTART slots in use. */
  active = 0;
  queue: OutRequest[] | null = null;
  /** OutRequests referencing this state (queued, outstanding or awaiting a separate response). */
  refs = 0;
  /** Incoming requests being handled. */
  inFlight = 0;
  dedupCount = 0;
  dHead: InEntry | null = null;
  dTail: InEntry | null = null;
  /** Block1 reassemblies + cached Block2 bodies. */
  blocks = 0;
  constructor(readonly key: string) {}
}

/**
 * Dedup entry for an incoming CON/NON message; lives for EXCHANGE_LIFETIME, so it is kept small:
 * after completion only `buf` (the encoded reply to resend) and the bookkeeping fields remain.
 */
class InEntry {
  /** Encoded reply resent for duplicates (piggybacked response, empty ACK, RST, NON response). */
  buf: Buffer | undefined = undefined;
  /** Handler running (then `ctx` is set). */
  pending = false;
  /** Empty ACK sent; the response goes out as a separate CON. */
  separate = false;
  con = false;
  mid = 0;
  pPrev: InEntry | null = null;
  pNext: InEntry | null = null;
  /** Links in the endpoint-wide FIFO (oldest first): O(1) eviction and an expiry sweep that stops early. */
  gPrev: InEntry | null = null;
  gNext: InEntry | null = null;
  ctx: InCtx | null = null;
  constructor(
    readonly key: string,
    readonly ps: PeerState,
    readonly expires: number,
  ) {}
}

/** An incoming request being processed (short-lived; the timer item for the separate-response delay). */
class InCtx implements TimerItem {
  timerAt = 0;
  timerIdx = -1;
  /** Block1 option value to echo in the final response, -1 none. */
  b1echo = -1;
  /** Block2 requested by the client: NUM and SZX (-1 = none). */
  b2num = 0;
  b2szx = -1;
  /** Block2 cache key, computed when needed. */
  b2key: string | null = null;
  reqCode = 0;
  reqPath: string[] | null = null;
  reqQuery: string[] | null = null;
  /** The request's Observe option (undefined: none). */
  reqObserve: number | undefined = undefined;
  constructor(
    readonly ep: CoapEndpoint,
    readonly entry: InEntry,
    readonly peer: Peer,
    readonly token: Buffer,
  ) {}
  onTimer(): void {
    this.ep._onSeparateTimer(this);
  }
}

/** A separate CON response we retransmit until ACKed. */
class OutResponse implements TimerItem {
  timerAt = 0;
  timerIdx = -1;
  retransmits = 0;
  constructor(
    readonly ep: CoapEndpoint,
    readonly peer: Peer,
    readonly midKey: string,
    readonly buf: Buffer,
    public rto: number,
  ) {}
  onTimer(now: number): void {
    this.ep._onOutResponseTimer(this, now);
  }
}

/** A CON notification (we are the observed party) retransmitted until ACKed or RST. */
class OutNotification implements TimerItem {
  timerAt = 0;
  timerIdx = -1;
  retransmits = 0;
  constructor(
    readonly ep: CoapEndpoint,
    readonly peer: Peer,
    readonly token: Buffer,
    /** `peerKey|tokenhex` of the observation. */
    readonly tokenKey: string,
    readonly midKey: string,
    readonly buf: Buffer,
    public rto: number,
    readonly resolve: () => void,
    readonly reject: (err: Error) => void,
  ) {}
  onTimer(now: number): void {
    this.ep._onNotificationTimer(this, now);
  }
}

/** A NON notification we sent, remembered for a while so that an RST answering it can be reported. */
interface NonNotification {
  peer: Peer;
  token: Buffer;
  tokenKey: string;
  expires: number;
}

/** The request of an observation we answered (we are the observed party): where Block2 follow-ups come. */
interface ServedObservation {
  code: number;
  path: string[];
  query: string[];
  /** Block size the observer asked for in its registration (SZX), or ours. */
  szx: number;
}

const enum Kind {
  Request,
  Observe,
  NotifBlock,
}

/** One logical outgoing request (all its blocks and retransmissions). */
class OutRequest implements TimerItem {
  timerAt = 0;
  timerIdx = -1;
  mid = 0;
  midKey: string | null = null;
  token: Buffer;
  tokenKey: string;
  readonly origToken: Buffer;
  buf: Buffer | null = null;
  rto = 0;
  retransmits = 0;
  nextAt = Infinity;
  acked = true;
  deadline = Infinity;
  holdsSlot = false;
  queued = false;
  done = false;
  sent = false;
  readonly started = performance.now();
  readonly con: boolean;
  readonly code: number;
  /** Block1 upload: the whole body (null when it fits one message). */
  body: Buffer | null = null;
  b1off = 0;
  b1szx = -1;
  b1more = false;
  /** 0 = sending the request (all Block1 blocks), 1 = fetching Block2 blocks. */
  phase = 0;
  b2off = 0;
  b2szx = 0;
  chunks: Buffer[] | null = null;
  first: ParsedPacket | null = null;
  firstAt = 0;
  etag: Buffer | undefined = undefined;
  obs: Observation | null = null;
  gen = 0;
  resolve: (v: never) => void = noop;
  reject: (e: Error) => void = noop;
  constructor(
    readonly ep: CoapEndpoint,
    readonly peer: Peer,
    readonly ps: PeerState,
    readonly req: OutgoingRequest,
    readonly kind: Kind,
    token: Buffer,
    tokenKey: string,
    readonly hard: boolean,
    readonly listener: NotificationListener | undefined,
  ) {
    this.token = token;
    this.origToken = token;
    this.tokenKey = tokenKey;
    this.con = req.confirmable !== false;
    this.code = METHOD_CODES[req.method];
    if (this.code === undefined) throw new TypeError(`unknown CoAP method '${req.method}'`);
  }
  onTimer(now: number): void {
    this.ep._onRequestTimer(this, now);
  }
}

class Observation implements ObservationHandle {
  active = true;
  lastSeq = -1;
  lastTime = -Infinity;
  gen = 0;
  fetch: OutRequest | null = null;
  constructor(
    private readonly ep: CoapEndpoint,
    readonly token: Buffer,
    readonly peer: Peer,
    readonly tokenKey: string,
    readonly listener: NotificationListener,
    readonly request: OutgoingRequest | undefined,
  ) {}
  cancel(mode: 'active' | 'passive' = 'active'): Promise<IncomingResponse | void> {
    return this.ep._cancelObservation(this, mode);
  }
}

/** Body of a large response we serve block by block. */
interface B2Entry {
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

function noop(): void {}

let tokenPool = Buffer.alloc(0);
let tokenPoolOff = 0;
function randomToken(): Buffer {
  if (tokenPoolOff + 8 > tokenPool.length) {
    tokenPool = randomBytes(4096);
    tokenPoolOff = 0;
  }
  const t = tokenPool.subarray(tokenPoolOff, tokenPoolOff + 8);
  tokenPoolOff += 8;
  return t;
}

let keptTokens = Buffer.alloc(0);
let keptTokensOff = 0;
/**
 * A copy of a token kept for the life of an observation. `Buffer.from` would take it from Node's shared
 * 8 KB pool, where each kept token pins a whole slab otherwise used by short-lived buffers (about 170
 * bytes per observation at 100k); these slabs hold nothing but kept tokens.
 */
function keepToken(token: Buffer): Buffer {
  const n = token.length;
  if (n > 64) return Buffer.from(token); // not a CoAP token (at most 8 bytes): no slab for it
  if (keptTokensOff + n > keptTokens.length) {
    keptTokens = Buffer.allocUnsafeSlow(4096);
    keptTokensOff = 0;
  }
  const t = keptTokens.subarray(keptTokensOff, keptTokensOff + n);
  token.copy(t);
  keptTokensOff += n;
  return t;
}

const NOT_FOUND: OutgoingResponse = Object.freeze({ code: '4.04' });
const SERVER_ERROR: OutgoingResponse = Object.freeze({ code: '5.00' });

function isThenable(v: unknown): v is PromiseLike<OutgoingResponse> {
  return v !== null && typeof v === 'object' && typeof (v as PromiseLike<unknown>).then === 'function';
}

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

  private readonly o: ResolvedCoapEndpointOptions;
  private readonly timers: TimerHeap;
  private readonly ourSzx: number;
  private handler: RequestHandler | undefined;
  private unknownHandler: UnknownNotificationHandler | undefined;
  private closed = false;
  private closePromise: Promise<void> | undefined;
  private sweepTimer: NodeJS.Timeout | undefined;
  private nextMid: number;
  private lastMidKey = '';

  private readonly peers = new Map<string, PeerState>();
  /** `peerKey#mid` -> our CON/NON awaiting ACK/RST (requests), separate CON responses, CON notifications. */
  private readonly outByMid = new Map<string, OutRequest | OutResponse | OutNotification>();
  /** `peerKey|tokenhex` -> the CON notification of that observation awaiting its ACK. */
  private readonly notifByToken = new Map<string, OutNotification>();
  /** `peerKey#mid` -> NON notifications sent recently, in sending order. */
  private readonly nonNotifs = new Map<string, NonNotification>();
  /** `peerKey|tokenhex` -> observations we answered, in registration order. */
  private readonly served = new Map<string, ServedObservation>();
  /** `peerKey|tokenhex` -> our request awaiting its response. */
  private readonly outByToken = new Map<string, OutRequest>();
  private readonly observations = new Map<string, Observation>();
  /** Tokens of cancelled observations (`peerKey|tokenhex` -> expiry): their notifications get RST. */
  private readonly cancelled = new Map<string, number>();
  /** `peerKey#mid` -> dedup entry, in arrival order. */
  private readonly dedup = new Map<string, InEntry>();
  // A Map used as a FIFO leaves deleted slots at its front that `values().next()` walks over on every
  // eviction (O(n) once the cap is reached): the order lives in this list instead.
  private dedupHead: InEntry | null = null;
  private dedupTail: InEntry | null = null;
  private readonly b1 = new Map<string, B1Entry>();
  private readonly b2 = new Map<string, B2Entry>();
  private readonly buckets = new AddressBuckets(MAX_TRACKED_ADDRESSES);
  private inFlightTotal = 0;
  private separatePending = 0;
  private queuedTotal = 0;
  private readonly st: Counters = {
    requestsIn: 0,
    requestsOut: 0,
    responsesIn: 0,
    notificationsIn: 0,
    notificationsOut: 0,
    notificationResets: 0,
    staleNotifications: 0,
    retransmissions: 0,
    duplicates: 0,
    dropped: 0,
    rateLimited: 0,
    overloaded: 0,
    timeouts: 0,
    resets: 0,
    resetsSent: 0,
  };

  constructor(
    private readonly transport: DatagramTransport,
    options: Partial<CoapEndpointOptions> = {},
  ) {
    this.o = resolveOptions(options);
    this.ourSzx = sizeToSzx(this.o.blockSize);
    this.timers = new TimerHeap(Math.min(50, this.o.ackTimeoutMs / 40));
    this.timers.onError = (err) => this.reportError(err);
    this.nextMid = randomInt(65536);
    transport.onDatagram(this.onDatagram);
  }

  /** The effective options (defaults applied). */
  get options(): Readonly<ResolvedCoapEndpointOptions> {
    return this.o;
  }

  async start(): Promise<PeerAddress> {
    if (this.closed) throw new Error('endpoint closed');
    const addr = await this.transport.start();
    if (this.sweepTimer === undefined && !this.closed) {
      this.sweepTimer = setInterval(this.sweep, this.o.sweepIntervalMs);
      this.sweepTimer.unref();
    }
    return addr;
  }

  localAddress(): PeerAddress | undefined {
    return this.transport.localAddress();
  }

  setRequestHandler(handler: RequestHandler): void {
    this.handler = handler;
  }

  setUnknownNotificationHandler(handler: UnknownNotificationHandler | undefined): void {
    this.unknownHandler = handler;
  }

  /** Fails every pending request with CoapRequestError 'closed', drops all state and timers, closes the transport. */
  close(): Promise<void> {
    if (this.closePromise !== undefined) return this.closePromise;
    this.closed = true;
    const pending = Array.from(this.outByToken.values());
    for (const ps of this.peers.values()) if (ps.queue !== null) for (const x of ps.queue) pending.push(x);
    for (const x of pending) {
      if (x.done) continue;
      this.finish(x);
      if (x.kind !== Kind.NotifBlock) x.reject(new CoapRequestError('endpoint closed', 'closed'));
    }
    for (const obs of this.observations.values()) obs.active = false;
    const notifs = Array.from(this.notifByToken.values());
    this.notifByToken.clear();
    for (const n of notifs) n.reject(new CoapRequestError('endpoint closed', 'closed'));
    this.nonNotifs.clear();
    this.served.clear();
    this.timers.clear();
    if (this.sweepTimer !== undefined) clearInterval(this.sweepTimer);
    this.sweepTimer = undefined;
    this.outByMid.clear();
    this.outByToken.clear();
    this.observations.clear();
    this.cancelled.clear();
    this.dedup.clear();
    this.dedupHead = this.dedupTail = null;
    this.b1.clear();
    this.b2.clear();
    this.buckets.clear();
    this.peers.clear();
    this.inFlightTotal = 0;
    this.separatePending = 0;
    this.queuedTotal = 0;
    this.closePromise = this.transport.close();
    return this.closePromise;
  }

  stats(): CoapEndpointStats {
    const outgoing = this.outByToken.size;
    return {
      ...this.st,
      activeExchanges: outgoing + this.inFlightTotal + this.separatePending + this.notifByToken.size,
      outgoingRequests: outgoing,
      incomingInFlight: this.inFlightTotal,
      separateResponsesPending: this.separatePending,
      notificationsPending: this.notifByToken.size,
      queued: this.queuedTotal,
      dedupEntries: this.dedup.size,
      blockTransfers: this.b1.size,
      cachedBlockResponses: this.b2.size,
      observations: this.observations.size,
      peers: this.peers.size,
      trackedAddresses: this.buckets.size,
    };
  }

  // ================================================================ outgoing API

  /** Sends a request and resolves with the (whole, reassembled) response. 4.xx/5.xx resolve too. */
  request(peer: PeerAddress, req: OutgoingRequest): Promise<IncomingResponse> {
    return this.startRequest(peer, req, Kind.Request, undefined) as Promise<IncomingResponse>;
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
    return this.startRequest(peer, registration, Kind.Observe, listener) as Promise<{
      response: IncomingResponse;
      observation?: ObservationHandle;
    }>;
  }

  /** The live observation holding `token` with `peer`, if any. */
  getObservation(peer: PeerAddress, token: Buffer): ObservationHandle | undefined {
    return this.observations.get(toPeer(peer).key + '|' + token.toString('hex'));
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
    const p = toPeer(peer);
    const key = p.key + '|' + token.toString('hex');
    this.observations.get(key)?.cancel('passive');
    this.cancelled.delete(key);
    const obs = new Observation(this, keepToken(token), p, flatString(key), listener, request);
    if (lastSequence !== undefined) {
      obs.lastSeq = lastSequence;
      obs.lastTime = performance.now();
    }
    if (!this.closed) this.observations.set(key, obs);
    else obs.active = false;
    return obs;
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
    peerIn: PeerAddress,
    token: Buffer,
    response: OutgoingResponse & { observe: number },
    options: { confirmable: boolean },
  ): Promise<void> {
    if (this.closed) return Promise.reject(new CoapRequestError('endpoint closed', 'closed'));
    const peer = toPeer(peerIn);
    const tokenKey = peer.key + '|' + token.toString('hex');
    const confirmable = options.confirmable;
    let buf: Buffer;
    try {
      buf = this.encodeNotification(peer, token, tokenKey, response, confirmable);
    } catch (err) {
      return Promise.reject(err instanceof Error ? err : new Error(String(err)));
    }
    const midKey = this.lastMidKey;
    this.st.notificationsOut++;
    if (!confirmable) {
      this.rememberNonNotification(midKey, peer, token, tokenKey);
      this.transport.send(buf, peer);
      return Promise.resolve();
    }
    return new Promise<void>((resolve, reject) => {
      const old = this.notifByToken.get(tokenKey);
      let rto: number;
      let retransmits = 0;
      if (old !== undefined) {
        this.dropNotification(old);
        rto = old.rto;
        retransmits = old.retransmits;
        old.reject(new CoapRequestError('superseded by a newer notification', 'cancelled'));
      } else rto = this.o.ackTimeoutMs * (1 + Math.random() * (this.o.ackRandomFactor - 1));
      const n = new OutNotification(this, peer, Buffer.from(token), tokenKey, midKey, buf, rto, resolve, reject);
      n.retransmits = retransmits;
      this.outByMid.set(midKey, n);
      this.notifByToken.set(tokenKey, n);
      this.timers.schedule(n, performance.now() + rto);
      this.transport.send(buf, peer);
    });
  }

  /** Encodes a notification (allocating its message id: `lastMidKey`); keeps a large body for Block2. */
  private encodeNotification(
    peer: Peer,
    token: Buffer,
    tokenKey: string,
    res: OutgoingResponse & { observe: number },
    confirmable: boolean,
  ): Buffer {
    if (res === null || typeof res !== 'object') throw new TypeError('notify() needs a response');
    const code = codeToByte(res.code);
    const cls = code >> 5;
    if (cls < 2 || cls > 5 || cls === 3) throw new TypeError(`invalid notification code ${res.code}`);
    const observe = res.observe;
    if (cls === 2 && !(Number.isInteger(observe) && observe >= 0))
      throw new RangeError('a notification needs an integer Observe sequence number >= 0');
    const opts: EncOption[] = [];
    if (res.contentFormat !== undefined) opts.push({ n: O_CONTENT_FORMAT, v: res.contentFormat });
    const lp = res.locationPath;
    if (lp !== undefined) for (let i = 0; i < lp.length; i++) opts.push({ n: 8, v: lp[i] });
    const ro = res.options;
    if (ro !== undefined)
      for (let i = 0; i < ro.length; i++) {
        const n = optionNumber(ro[i].name);
        if (n !== O_OBSERVE && n !== O_BLOCK2 && n !== O_SIZE2) opts.push({ n, v: ro[i].value });
      }
    const served = this.served.get(tokenKey);
    if (cls !== 2) this.served.delete(tokenKey); // the observation ends with this notification
    const seq = observe & 0xffffff;
    let payload = res.payload;
    const szx = served !== undefined ? served.szx : this.ourSzx;
    const size = szxToSize(szx);
    if (payload !== undefined && payload.length > size) {
      if (served !== undefined && cls === 2) this.keepNotificationBody(peer, served, code, opts.slice(), payload, seq);
      opts.push({ n: O_BLOCK2, v: blockValue(0, true, szx) }, { n: O_SIZE2, v: payload.length });
      payload = payload.subarray(0, size);
    }
    if (cls === 2) opts.push({ n: O_OBSERVE, v: seq });
    const mid = this.allocMid(peer.key);
    return encodeMessage(confirmable ? CON : NON, code, mid, token, opts, payload);
  }

  /** Keeps a notification's body for the observer's Block2 follow-ups (replacing an older one). */
  private keepNotificationBody(
    peer: Peer,
    served: ServedObservation,
    code: number,
    opts: EncOption[],
    body: Buffer,
    observe: number,
  ): void {
    const ps = this.peerState(peer.key);
    const key = uriKey(ps.key, served.code, served.path, served.query);
    const old = this.b2.get(key);
    if (old !== undefined) this.dropB2(key, old);
    if (ps.blocks >= this.o.maxBlockTransfersPerPeer) this.evictPeerBlock(ps);
    if (this.b1.size + this.b2.size >= this.o.maxBlockTransfers) this.evictOldestB2();
    if (this.b1.size + this.b2.size < this.o.maxBlockTransfers) {
      const expires = performance.now() + this.o.blockTransferTimeoutMs;
      this.b2.set(key, { body, code, opts, expires, ps, observe });
      ps.blocks++;
    }
    this.maybeFree(ps);
  }

  private rememberNonNotification(midKey: string, peer: Peer, token: Buffer, tokenKey: string): void {
    const m = this.nonNotifs;
    m.delete(midKey);
    if (m.size >= MAX_RECENT_NON_NOTIFICATIONS) {
      const oldest = m.keys().next().value;
      if (oldest !== undefined) m.delete(oldest);
    }
    m.set(midKey, {
      peer,
      token: Buffer.from(token),
      tokenKey,
      expires: performance.now() + this.o.exchangeLifetimeMs,
    });
  }

  private dropNotification(n: OutNotification): void {
    if (this.outByMid.get(n.midKey) === n) this.outByMid.delete(n.midKey);
    if (this.notifByToken.get(n.tokenKey) === n) this.notifByToken.delete(n.tokenKey);
    this.timers.cancel(n);
  }

  /** An RST answered a notification: the observer is gone (a pending CON one of it fails too). */
  private notificationReset(peer: Peer, token: Buffer, tokenKey: string): void {
    this.st.notificationResets++;
    this.served.delete(tokenKey);
    try {
      this.onNotificationReset(peer, token);
    } catch (err) {
      this.reportError(err);
    }
    const pending = this.notifByToken.get(tokenKey);
    if (pending !== undefined) {
      this.dropNotification(pending);
      pending.reject(new CoapRequestError(`${peer.key} reset the observation`, 'reset'));
    }
  }

  /** @internal timer callback */
  _onNotificationTimer(n: OutNotification, now: number): void {
    if (this.outByMid.get(n.midKey) !== n) return;
    if (n.retransmits >= this.o.maxRetransmit) {
      this.dropNotification(n);
      this.served.delete(n.tokenKey); // RFC 7641 §4.5: the observer is no longer interested / reachable
      n.reject(
        new CoapRequestError(
          `no ACK from ${n.peer.key} for a notification after ${n.retransmits} retransmissions`,
          'timeout',
        ),
      );
      return;
    }
    n.retransmits++;
    this.st.retransmissions++;
    n.rto *= 2;
    this.timers.schedule(n, now + n.rto);
    this.transport.send(n.buf, n.peer);
  }

  /** Remembers (or forgets) the request of an observation we answer, for Block2 notifications. */
  private trackServedObservation(peerKey: string, token: Buffer, c: InCtx, code: number, res: OutgoingResponse): void {
    const key = peerKey + '|' + token.toString('hex');
    this.served.delete(key);
    if (c.reqObserve !== 0 || code >> 5 !== 2) return;
    const ro = res.options;
    let observed = false;
    if (ro !== undefined)
      for (let i = 0; i < ro.length && !observed; i++) observed = optionNumber(ro[i].name) === O_OBSERVE;
    if (!observed) return;
    if (this.served.size >= MAX_SERVED_OBSERVATIONS) {
      const oldest = this.served.keys().next().value;
      if (oldest !== undefined) this.served.delete(oldest);
    }
    this.served.set(key, {
      code: c.reqCode,
      path: c.reqPath ?? [],
      query: c.reqQuery ?? [],
      szx: c.b2szx >= 0 && c.b2szx < this.ourSzx ? c.b2szx : this.ourSzx,
    });
  }

  private startRequest(
    peerIn: PeerAddress,
    req: OutgoingRequest,
    kind: Kind,
    listener: NotificationListener | undefined,
  ): Promise<unknown> {
    if (this.closed) return Promise.reject(new CoapRequestError('endpoint closed', 'closed'));
    const peer = toPeer(peerIn);
    let token: Buffer;
    let tokenKey: string;
    if (req.token !== undefined) {
      token = req.token;
      tokenKey = peer.key + '|' + token.toString('hex');
      if (this.outByToken.has(tokenKey)) return Promise.reject(new Error('token already in use by a pending request'));
      if (req.observe === 1) {
        const obs = this.observations.get(tokenKey);
        if (obs !== undefined) this.removeObservation(obs);
      }
      const live = this.observations.get(tokenKey);
      if (live !== undefined && kind === Kind.Observe) this.removeObservation(live); // re-registration
    } else {
      token = this.newToken(peer.key);
      tokenKey = this.lastTokenKey;
    }
    if (kind === Kind.Observe) token = keepToken(token); // long-lived: don't pin the random pool
    const ps = this.peerState(peer.key);
    let x: OutRequest;
    try {
      x = new OutRequest(this, peer, ps, req, kind, token, tokenKey, req.timeoutMs !== undefined, listener);
    } catch (err) {
      this.maybeFree(ps);
      return Promise.reject(err);
    }
    const p = new Promise<unknown>((resolve, reject) => {
      x.resolve = resolve;
      x.reject = reject;
    });
    const payload = req.payload;
    const bs = req.blockSize ?? this.o.blockSize;
    if (payload !== undefined && payload.length > bs) {
      x.body = payload;
      x.b1szx = sizeToSzx(bs);
    }
    const now = x.started;
    if (x.hard) x.deadline = now + req.timeoutMs!;
    if (ps.active >= this.o.nstart) {
      if (ps.queue !== null && ps.queue.length >= this.o.maxQueuedPerPeer) {
        this.maybeFree(ps);
        return Promise.reject(new CoapRequestError(`too many requests queued for ${peer.key}`, 'overloaded'));
      }
      ps.refs++;
      this.outByToken.set(tokenKey, x);
      (ps.queue ??= []).push(x);
      x.queued = true;
      this.queuedTotal++;
      if (x.hard) this.timers.schedule(x, x.deadline);
      return p;
    }
    ps.refs++;
    this.outByToken.set(tokenKey, x);
    ps.active++;
    x.holdsSlot = true;
    this.sendNext(x, now);
    return p;
  }

  private lastTokenKey = '';

  private newToken(peerKey: string): Buffer {
    for (;;) {
      const t = randomToken();
      const key = peerKey + '|' + t.toString('hex');
      if (!this.outByToken.has(key) && !this.observations.has(key) && !this.cancelled.has(key)) {
        this.lastTokenKey = key;
        return t;
      }
    }
  }

  private allocMid(peerKey: string): number {
    for (let i = 0; i < 65536; i++) {
      const mid = (this.nextMid = (this.nextMid + 1) & 0xffff);
      const key = peerKey + '#' + mid;
      if (!this.outByMid.has(key)) {
        this.lastMidKey = key;
        return mid;
      }
    }
    throw new Error('no free message id');
  }

  /** Sends the next message of an exchange (first request, next Block1 block or next Block2 request). */
  private sendNext(x: OutRequest, now: number): void {
    try {
      this.trySendNext(x, now);
    } catch (err) {
      // unencodable request (bad option name, token too long, ...): fail it instead of throwing
      if (x.done) return;
      this.finish(x);
      if (x.kind === Kind.NotifBlock) this.reportError(err);
      else x.reject(err instanceof Error ? err : new Error(String(err)));
    }
  }

  private trySendNext(x: OutRequest, now: number): void {
    const r = x.req;
    const opts: EncOption[] = [];
    let payload: Buffer | undefined;
    if (x.phase === 0) {
      if (r.observe !== undefined && x.kind !== Kind.NotifBlock) opts.push({ n: O_OBSERVE, v: r.observe });
      const body = x.body;
      if (body !== null) {
        const size = szxToSize(x.b1szx);
        const end = Math.min(x.b1off + size, body.length);
        payload = body.subarray(x.b1off, end);
        x.b1more = end < body.length;
        opts.push({ n: O_BLOCK1, v: blockValue(x.b1off / size, x.b1more, x.b1szx) });
        if (x.b1off === 0) opts.push({ n: O_SIZE1, v: body.length });
      } else payload = r.payload;
    } else {
      const size = szxToSize(x.b2szx);
      opts.push({ n: O_BLOCK2, v: blockValue(x.b2off / size, false, x.b2szx) });
      if (r.method === 'FETCH') payload = r.payload;
    }
    const path = r.pathSegments;
    for (let i = 0; i < path.length; i++) opts.push({ n: O_URI_PATH, v: path[i] });
    const q = r.query;
    if (q !== undefined) for (let i = 0; i < q.length; i++) opts.push({ n: O_URI_QUERY, v: q[i] });
    if (r.contentFormat !== undefined && payload !== undefined && payload.length > 0)
      opts.push({ n: O_CONTENT_FORMAT, v: r.contentFormat });
    if (r.accept !== undefined) opts.push({ n: O_ACCEPT, v: r.accept });
    const extra = r.options;
    if (extra !== undefined)
      for (let i = 0; i < extra.length; i++) {
        const n = optionNumber(extra[i].name);
        if (n === O_BLOCK1 || n === O_BLOCK2 || ((x.phase === 1 || x.kind === Kind.NotifBlock) && n === O_OBSERVE))
          continue;
        opts.push({ n, v: extra[i].value });
      }
    if (x.midKey !== null) this.outByMid.delete(x.midKey);
    const peer = x.peer;
    const mid = this.allocMid(peer.key);
    x.mid = mid;
    x.midKey = this.lastMidKey;
    this.outByMid.set(x.midKey, x);
    const buf = encodeMessage(x.con ? CON : NON, x.code, mid, x.token, opts, payload);
    x.buf = buf;
    if (!x.hard) x.deadline = now + this.o.requestTimeoutMs; // re-armed by every step that makes progress
    x.sent = true;
    if (x.con) {
      x.acked = false;
      x.retransmits = 0;
      x.rto = this.o.ackTimeoutMs * (1 + Math.random() * (this.o.ackRandomFactor - 1));
      x.nextAt = now + x.rto;
    } else {
      x.acked = true;
      x.nextAt = Infinity;
    }
    this.st.requestsOut++;
    this.timers.schedule(x, x.nextAt < x.deadline ? x.nextAt : x.deadline);
    this.transport.send(buf, peer);
  }

  /** Continues an exchange that may have released its NSTART slot (after a separate response). */
  private continueExchange(x: OutRequest, now: number): void {
    if (!x.holdsSlot) {
      const ps = x.ps;
      if (ps.active >= this.o.nstart) {
        (ps.queue ??= []).unshift(x);
        x.queued = true;
        this.queuedTotal++;
        this.timers.schedule(x, x.deadline);
        return;
      }
      ps.active++;
      x.holdsSlot = true;
    }
    this.sendNext(x, now);
  }

  private rekey(x: OutRequest): void {
    if (this.outByToken.get(x.tokenKey) === x) this.outByToken.delete(x.tokenKey);
    x.token = this.newToken(x.peer.key);
    x.tokenKey = this.lastTokenKey;
    this.outByToken.set(x.tokenKey, x);
  }

  private releaseSlot(x: OutRequest): void {
    if (!x.holdsSlot) return;
    x.holdsSlot = false;
    const ps = x.ps;
    ps.active--;
    const q = ps.queue;
    if (q === null || this.closed) return;
    while (ps.active < this.o.nstart && q.length > 0) {
      const next = q.shift()!;
      next.queued = false;
      this.queuedTotal--;
      if (next.done) continue;
      ps.active++;
      next.holdsSlot = true;
      this.timers.cancel(next);
      this.sendNext(next, performance.now());
    }
    if (q.length === 0) ps.queue = null;
  }

  /** Removes an exchange from every table; does not settle its promise. */
  private finish(x: OutRequest): void {
    if (x.done) return;
    x.done = true;
    this.timers.cancel(x);
    if (x.midKey !== null) {
      if (this.outByMid.get(x.midKey) === x) this.outByMid.delete(x.midKey);
      x.midKey = null;
    }
    if (this.outByToken.get(x.tokenKey) === x) this.outByToken.delete(x.tokenKey);
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
    this.maybeFree(ps);
  }

  private fail(x: OutRequest, reason: CoapRequestError['reason'], message: string): void {
    if (x.done) return;
    this.finish(x);
    if (reason === 'timeout') this.st.timeouts++;
    else if (reason === 'reset') this.st.resets++;
    if (x.kind === Kind.NotifBlock) {
      // the notification is lost (a later one will bring the value again); make it visible
      if (x.obs !== null && x.obs.fetch === x) x.obs.fetch = null;
      if (reason !== 'closed') this.reportError(new CoapRequestError(`notification Block2 fetch: ${message}`, reason));
      return;
    }
    if (x.obs !== null && x.obs.active) this.passiveCancel(x.obs);
    x.reject(new CoapRequestError(message, reason));
  }

  /** @internal timer callback */
  _onRequestTimer(x: OutRequest, now: number): void {
    if (x.done) return;
    if (x.queued) {
      if (now >= x.deadline - 0.5) this.fail(x, 'timeout', `no response from ${x.peer.key} in time (queued)`);
      else this.timers.schedule(x, x.deadline);
      return;
    }
    const due = !x.acked && now >= x.nextAt - 0.5;
    if (due && x.retransmits >= this.o.maxRetransmit) {
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
      this.st.retransmissions++;
      this.transport.send(x.buf!, x.peer);
      x.rto *= 2;
      x.nextAt = now + x.rto;
    }
    this.timers.schedule(x, !x.acked && x.nextAt < x.deadline ? x.nextAt : x.deadline);
  }

  /** A CON got no ACK at all: fail it, and (by default) the requests queued behind it. */
  private unreachable(x: OutRequest, message: string): void {
    const ps = x.ps;
    if (this.o.failQueuedOnTimeout && ps.queue !== null) {
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
  private onEmptyAck(x: OutRequest): void {
    if (x.acked) return;
    x.acked = true;
    if (x.midKey !== null) {
      this.outByMid.delete(x.midKey);
      x.midKey = null;
    }
    this.releaseSlot(x);
    this.timers.schedule(x, x.deadline);
  }

  /** A response to one of our requests (piggybacked or separate). */
  private handleResponse(x: OutRequest, msg: ParsedPacket, code: number, peer: Peer, now: number): void {
    this.st.responsesIn++;
    if (x.midKey !== null) {
      this.outByMid.delete(x.midKey);
      x.midKey = null;
    }
    x.acked = true;
    const options = msg.options;
    let b1: BlockOption | undefined;
    let b2: BlockOption | undefined;
    let badBlock = false;
    let observe: number | undefined;
    let etag: Buffer | undefined;
    for (let i = 0; i < options.length; i++) {
      const o = options[i];
      switch (o.name) {
        case 'Block1':
          b1 = decodeBlock(o.value);
          break;
        case 'Block2':
          b2 = decodeBlock(o.value);
          if (b2 === undefined) badBlock = true;
          break;
        case 'Observe':
          observe = decodeUint(o.value);
          break;
        case 'ETag':
          etag = o.value;
          break;
      }
    }
    const cls = code >> 5;
    // ---- Block1 upload in progress
    if (x.phase === 0 && x.body !== null) {
      if (x.b1more && code === C_231) {
        let szx = x.b1szx;
        const next = x.b1off + szxToSize(szx);
        if (b1 !== undefined && b1.szx < szx) szx = b1.szx;
        x.b1szx = szx;
        x.b1off = next;
        if (x.req.onProgress !== undefined) this.progressOf(x.req.onProgress, next, x.body.length);
        // same token for every Block1 block: servers such as node-coap key the reassembly by token
        this.continueExchange(x, now);
        return;
      }
      if (code === C_413 && x.b1off === 0 && b1 !== undefined && b1.szx < x.b1szx) {
        x.b1szx = b1.szx; // the server wants smaller blocks: start over
        this.continueExchange(x, now);
        return;
      }
    }
    let payload = msg.payload;
    // ---- Block2 download
    if (badBlock && cls === 2) {
      this.fail(x, 'block', 'malformed Block2 option in response');
      return;
    }
    if (b2 !== undefined && cls === 2) {
      if (x.chunks === null) {
        if (b2.num !== 0) {
          this.fail(x, 'block', `unexpected Block2 NUM ${b2.num} in first response`);
          return;
        }
        if (b2.more) {
          if (payload.length !== b2.size) {
            this.fail(x, 'block', 'Block2 block shorter than its size');
            return;
          }
          x.chunks = [payload];
          x.first = msg;
          x.firstAt = now;
          x.etag = etag;
          x.b2off = payload.length;
          x.b2szx = b2.szx;
          if (x.kind === Kind.Observe && observe !== undefined) this.createObservation(x, observe, now);
        }
      } else {
        if (b2.num * b2.size !== x.b2off) {
          this.fail(x, 'block', `unexpected Block2 NUM ${b2.num}`);
          return;
        }
        if (x.etag !== undefined && (etag === undefined || !etag.equals(x.etag))) {
          this.fail(x, 'block', 'representation changed during Block2 transfer (ETag)');
          return;
        }
        x.chunks.push(payload);
        x.b2off += payload.length;
        if (x.b2off > this.o.maxResponseBodySize) {
          this.fail(x, 'block', `response body exceeds ${this.o.maxResponseBodySize} bytes`);
          return;
        }
        if (b2.more && payload.length !== b2.size) {
          this.fail(x, 'block', 'Block2 block shorter than its size');
          return;
        }
        x.b2szx = b2.szx;
        if (!b2.more) payload = Buffer.concat(x.chunks, x.b2off);
      }
      if (b2.more) {
        x.phase = 1;
        this.rekey(x);
        this.continueExchange(x, now);
        return;
      }
    }
    this.complete(x, msg, code, payload, peer, now);
  }

  private createObservation(x: OutRequest, seq: number, now: number): Observation {
    let obs = x.obs;
    if (obs === null) {
      const req = x.req;
      obs = new Observation(
        this,
        x.origToken,
        x.peer,
        flatString(x.peer.key + '|' + x.origToken.toString('hex')), // kept while observed: no rope
        x.listener!,
        req,
      );
      x.obs = obs;
      this.cancelled.delete(obs.tokenKey);
      this.observations.set(obs.tokenKey, obs);
    }
    obs.lastSeq = seq;
    obs.lastTime = now;
    return obs;
  }

  private complete(x: OutRequest, last: ParsedPacket, code: number, payload: Buffer, peer: Peer, now: number): void {
    const first = x.first ?? last;
    const resp = this.toResponse(first, code, payload, peer, x.origToken, now - x.started, x.first !== null);
    this.finish(x);
    if (x.kind === Kind.Request) {
      (x.resolve as (v: IncomingResponse) => void)(resp);
    } else if (x.kind === Kind.Observe) {
      let obs: Observation | undefined;
      if (code >> 5 !== 2) {
        if (x.obs !== null) this.passiveCancel(x.obs);
      } else if (x.obs !== null) {
        if (x.obs.active) obs = x.obs; // created at the first block; may have seen newer notifications since
      } else if (resp.observe !== undefined) obs = this.createObservation(x, resp.observe, now);
      (x.resolve as (v: { response: IncomingResponse; observation?: ObservationHandle }) => void)(
        obs !== undefined ? { response: resp, observation: obs } : { response: resp },
      );
    } else {
      const obs = x.obs!;
      if (obs.fetch === x) obs.fetch = null;
      if (obs.active && obs.gen === x.gen) this.deliver(obs, resp);
    }
  }

  private toResponse(
    msg: ParsedPacket,
    code: number,
    payload: Buffer,
    peer: Peer,
    token: Buffer,
    rttMs: number,
    stripBlock2: boolean,
  ): IncomingResponse {
    let options = normaliseParsedOptions(msg.options);
    let contentFormat: number | undefined;
    let observe: number | undefined;
    for (let i = 0; i < options.length; i++) {
      const n = options[i].name;
      if (n === 'Content-Format')
        contentFormat = decodeFormatOption(options[i].value); // over 2 bytes: ignored
      else if (n === 'Observe') observe = decodeUint(options[i].value);
    }
    if (stripBlock2) options = options.filter((o) => o.name !== 'Block2' && o.name !== 'Size2');
    return { peer, code: codeFromByte(code), contentFormat, observe, payload, options, token, rttMs };
  }

  // ================================================================ observations

  private deliver(obs: Observation, resp: IncomingResponse): void {
    try {
      obs.listener(resp);
    } catch (err) {
      this.reportError(err);
    }
  }

  private removeObservation(obs: Observation): void {
    obs.active = false;
    if (this.observations.get(obs.tokenKey) === obs) this.observations.delete(obs.tokenKey);
    const f = obs.fetch;
    if (f !== null) {
      obs.fetch = null;
      this.finish(f);
    }
  }

  private passiveCancel(obs: Observation): void {
    this.removeObservation(obs);
    if (this.cancelled.size >= MAX_CANCELLED_TOKENS) {
      const oldest = this.cancelled.keys().next().value;
      if (oldest !== undefined) this.cancelled.delete(oldest);
    }
    this.cancelled.delete(obs.tokenKey);
    this.cancelled.set(obs.tokenKey, performance.now() + this.o.requestTimeoutMs);
  }

  /** @internal */
  _cancelObservation(obs: Observation, mode: 'active' | 'passive'): Promise<IncomingResponse | void> {
    if (!obs.active) return Promise.resolve();
    this.passiveCancel(obs);
    if (mode === 'passive' || obs.request === undefined || this.closed) return Promise.resolve();
    const r = obs.request;
    // A FETCH observation (Observe-Composite) is cancelled with the same FETCH and its body.
    const isFetch = r.method === 'FETCH';
    return this.request(obs.peer, {
      method: isFetch ? 'FETCH' : 'GET',
      pathSegments: r.pathSegments,
      query: r.query,
      accept: r.accept,
      contentFormat: isFetch ? r.contentFormat : undefined,
      payload: isFetch ? r.payload : undefined,
      options: r.options,
      confirmable: r.confirmable,
      observe: 1,
      token: obs.token,
    });
  }

  private onNotification(obs: Observation, msg: ParsedPacket, code: number, peer: Peer, now: number): void {
    this.st.notificationsIn++;
    const options = msg.options;
    let observe: number | undefined;
    let b2: BlockOption | undefined;
    let etag: Buffer | undefined;
    for (let i = 0; i < options.length; i++) {
      const o = options[i];
      if (o.name === 'Observe') observe = decodeUint(o.value);
      else if (o.name === 'Block2') b2 = decodeBlock(o.value);
      else if (o.name === 'ETag') etag = o.value;
    }
    if (code >> 5 !== 2 || observe === undefined) {
      // the observation ends with this notification
      this.removeObservation(obs);
      this.deliver(obs, this.toResponse(msg, code, msg.payload, peer, obs.token, 0, false));
      return;
    }
    if (obs.lastTime !== -Infinity) {
      const v1 = obs.lastSeq;
      const fresh =
        (v1 < observe && observe - v1 < OBS_WINDOW) ||
        (v1 > observe && v1 - observe > OBS_WINDOW) ||
        now > obs.lastTime + OBS_FRESH_MS;
      if (!fresh) {
        this.st.staleNotifications++;
        return;
      }
    }
    obs.lastSeq = observe;
    obs.lastTime = now;
    obs.gen++;
    if (obs.fetch !== null) {
      const f = obs.fetch;
      obs.fetch = null;
      this.finish(f); // superseded by this newer notification
    }
    const payload = msg.payload;
    if (b2 !== undefined && b2.more && b2.num === 0 && payload.length === b2.size && obs.request !== undefined) {
      // RFC 7959 §2.6: fetch the rest of the value with plain GETs (no Observe), then deliver it whole
      const r = obs.request;
      const req: OutgoingRequest = {
        method: 'GET',
        pathSegments: r.pathSegments,
        query: r.query,
        accept: r.accept,
        options: r.options,
        confirmable: r.confirmable,
      };
      const ps = this.peerState(obs.peer.key);
      const token = this.newToken(obs.peer.key);
      const x = new OutRequest(this, obs.peer, ps, req, Kind.NotifBlock, token, this.lastTokenKey, false, undefined);
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
      this.outByToken.set(x.tokenKey, x);
      this.continueExchange(x, now);
      return;
    }
    this.deliver(obs, this.toResponse(msg, code, payload, peer, obs.token, 0, false));
  }

  // ================================================================ incoming datagrams

  private readonly onDatagram = (data: Buffer, peer: Peer): void => {
    if (this.closed) return;
    const len = data.length;
    if (len < 4 || (data[0] & 0xc0) !== 0x40) {
      this.st.dropped++;
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
    if (cls === 0) this.onRequest(data, peer, type, code, mid);
    else if (cls === 2 || cls === 4 || cls === 5) this.onResponse(data, peer, type, code, mid);
    else {
      // reserved classes 1, 3, 6, 7
      if (type === CON) this.sendRst(mid, peer);
      this.st.dropped++;
    }
  };

  private sendRst(mid: number, peer: PeerAddress): void {
    this.st.resetsSent++;
    this.transport.send(emptyMessage(RST, mid), peer);
  }

  private onEmpty(data: Buffer, peer: Peer, type: number, mid: number): void {
    if (data.length !== 4 || (data[0] & 15) !== 0) {
      // "empty" with token/options/payload: format error
      if (type === CON) this.sendRst(mid, peer);
      this.st.dropped++;
      return;
    }
    if (type === ACK || type === RST) {
      const key = peer.key + '#' + mid;
      const x = this.outByMid.get(key);
      if (x === undefined) {
        if (type === RST) {
          const n = this.nonNotifs.get(key);
          if (n !== undefined) {
            this.nonNotifs.delete(key);
            this.notificationReset(n.peer, n.token, n.tokenKey);
          }
        }
        return; // late or duplicate ACK/RST
      }
      if (x instanceof OutRequest) {
        if (type === ACK) {
          if (x.con) this.onEmptyAck(x);
        } else this.fail(x, 'reset', `${peer.key} reset the request`);
      } else if (x instanceof OutNotification) {
        this.dropNotification(x);
        if (type === ACK) x.resolve();
        else {
          this.notificationReset(x.peer, x.token, x.tokenKey);
          x.reject(new CoapRequestError(`${peer.key} reset the notification`, 'reset'));
        }
      } else this.finishOutResponse(x);
      return;
    }
    if (type === CON) this.sendRst(mid, peer); // CoAP ping
  }

  // ---------------------------------------------------------------- responses to our requests / notifications

  private onResponse(data: Buffer, peer: Peer, type: number, code: number, mid: number): void {
    const now = performance.now();
    if (type === ACK) {
      const x = this.outByMid.get(peer.key + '#' + mid);
      if (x === undefined || !(x instanceof OutRequest)) return; // late duplicate
      const msg = parseMessage(data);
      if (msg === undefined || !msg.token.equals(x.token)) {
        this.st.dropped++;
        return;
      }
      this.handleResponse(x, msg, code, peer, now);
      return;
    }
    if (type === RST) {
      this.st.dropped++;
      return;
    }
    const con = type === CON;
    const dkey = peer.key + '#' + mid;
    const dup = this.dedup.get(dkey);
    if (dup !== undefined) {
      this.st.duplicates++;
      if (dup.buf !== undefined) this.transport.send(dup.buf, peer);
      return;
    }
    const msg = parseMessage(data);
    if (msg === undefined) {
      if (con) this.sendRst(mid, peer);
      this.st.dropped++;
      return;
    }
    const tkey = peer.key + '|' + msg.token.toString('hex');
    const x = this.outByToken.get(tkey);
    if (x !== undefined && !x.queued && !x.done) {
      if (con) this.ackAndRemember(dkey, peer, mid, now);
      this.handleResponse(x, msg, code, peer, now);
      return;
    }
    const obs = this.observations.get(tkey);
    if (obs !== undefined) {
      if (con) {
        const final = code >> 5 !== 2 || !hasOption(msg, 'Observe');
        if (final) this.ackAndRemember(dkey, peer, mid, now);
        else this.transport.send(emptyMessage(ACK, mid), peer); // duplicates are caught by the sequence rule
      }
      this.onNotification(obs, msg, code, peer, now);
      return;
    }
    if (!this.cancelled.has(tkey) && this.unknownHandler !== undefined && hasOption(msg, 'Observe')) {
      const resp = this.toResponse(msg, code, msg.payload, peer, msg.token, 0, false);
      let listener: NotificationListener | undefined;
      try {
        listener = this.unknownHandler(resp);
      } catch (err) {
        this.reportError(err);
      }
      if (typeof listener === 'function') {
        if (con) this.transport.send(emptyMessage(ACK, mid), peer);
        const adopted = new Observation(this, keepToken(msg.token), peer, flatString(tkey), listener, undefined);
        const seq = resp.observe!;
        if (code >> 5 === 2) {
          adopted.lastSeq = seq;
          adopted.lastTime = now;
          this.observations.set(tkey, adopted);
        } else adopted.active = false;
        this.deliver(adopted, resp);
        return;
      }
    }
    // unknown token (late response, cancelled or unwanted observation): reject
    this.st.dropped++;
    this.sendRst(mid, peer);
  }

  private ackAndRemember(dkey: string, peer: Peer, mid: number, now: number): void {
    const e = this.addDedup(dkey, this.peerState(peer.key), now);
    e.buf = emptyMessage(ACK, mid);
    this.transport.send(e.buf, peer);
  }

  // ---------------------------------------------------------------- incoming requests

  private onRequest(data: Buffer, peer: Peer, type: number, code: number, mid: number): void {
    if (type > NON) {
      this.st.dropped++; // a request in an ACK or RST: format error, silently ignored
      return;
    }
    const now = performance.now();
    // The rate limit counts new exchanges: the next block of a block-wise transfer in progress (Block1
    // into a reassembly, Block2 from a cached body) takes no token, so that a fast link does not stall
    // a large transfer for an ACK_TIMEOUT whenever the bucket runs dry. For a peer with such a transfer
    // the decision waits until the request is parsed (processRequest: `admit`).
    let deferred = false;
    if (this.o.maxRequestsPerSecondPerAddress > 0) {
      const ps0 = this.peers.get(peer.key);
      if (ps0 !== undefined && ps0.blocks > 0) deferred = true;
      else if (!this.takeToken(peer.address, now)) {
        this.st.rateLimited++;
        this.st.dropped++;
        return;
      }
    }
    const dkey = peer.key + '#' + mid;
    const dup = this.dedup.get(dkey);
    if (dup !== undefined) {
      this.onDuplicateRequest(dup, peer);
      return;
    }
    const con = type === CON;
    const msg = parseMessage(data);
    if (msg === undefined) {
      if (con) this.sendRst(mid, peer);
      this.st.dropped++;
      return;
    }
    this.st.requestsIn++;
    const ps = this.peerState(peer.key);
    const e = this.addDedup(dkey, ps, now);
    e.con = con;
    e.mid = mid;
    this.processRequest(e, peer, ps, msg, code, con, mid, now, deferred);
    this.maybeFree(ps);
  }

  private onDuplicateRequest(e: InEntry, peer: Peer): void {
    this.st.duplicates++;
    if (e.buf !== undefined) {
      this.transport.send(e.buf, peer);
      return;
    }
    if (e.pending && e.con && !e.separate) {
      // the client is retransmitting while the handler still works: ACK now, respond separately
      if (e.ctx !== null) this.timers.cancel(e.ctx);
      this.goSeparate(e, peer);
    }
  }

  private goSeparate(e: InEntry, peer: Peer): void {
    e.separate = true;
    e.buf = emptyMessage(ACK, e.mid);
    this.transport.send(e.buf, peer);
  }

  /** @internal timer callback: the handler is slow, switch to a separate response. */
  _onSeparateTimer(c: InCtx): void {
    const e = c.entry;
    if (e.pending && e.con && !e.separate && !this.closed) this.goSeparate(e, c.peer);
  }

  private processRequest(
    e: InEntry,
    peer: Peer,
    ps: PeerState,
    msg: ParsedPacket,
    code: number,
    con: boolean,
    mid: number,
    now: number,
    deferred: boolean,
  ): void {
    const options = msg.options;
    const path: string[] = [];
    const query: string[] = [];
    let contentFormat: number | undefined;
    let accept: number | undefined;
    let observe: number | undefined;
    let b1v: Buffer | undefined;
    let b2v: Buffer | undefined;
    let size1: number | undefined;
    let requestTag: Buffer | undefined;
    let badCritical = 0;
    let proxy = false;
    for (let i = 0; i < options.length; i++) {
      const o = options[i];
      switch (o.name) {
        case 'Uri-Path':
          path.push(o.value.toString());
          break;
        case 'Uri-Query':
          query.push(o.value.toString());
          break;
        case 'Content-Format':
          // elective: a value over 2 bytes is an unrecognised option (RFC 7252 §5.4.3), ignored
          contentFormat = decodeFormatOption(o.value);
          break;
        case 'Accept':
          // critical: a value over 2 bytes is an unrecognised critical option, refused with 4.02
          accept = decodeFormatOption(o.value);
          if (accept === undefined && badCritical === 0) badCritical = O_ACCEPT;
          break;
        case 'Observe':
          observe = decodeUint(o.value);
          break;
        case 'Block1':
          b1v = o.value;
          break;
        case 'Block2':
          b2v = o.value;
          break;
        case 'Size1':
          size1 = decodeUint(o.value);
          break;
        case 'Proxy-Uri':
        case 'Proxy-Scheme':
          proxy = true;
          break;
        case 'If-Match':
        case 'Uri-Host':
        case 'If-None-Match':
        case 'Uri-Port':
          break; // critical, understood (left to the handler)
        default: {
          let n: number;
          const name = o.name;
          if (typeof name === 'number') n = name;
          else {
            const known = OptionNumbers[name];
            if (known !== undefined) n = known;
            else {
              n = Number(name);
              (o as CoapOption).name = n;
            }
          }
          if (n === 292)
            requestTag = o.value; // Request-Tag (RFC 9175), unnamed in coap-packet
          else if ((n & 1) === 1 && badCritical === 0) badCritical = n; // OSCORE, Q-Block, unknown critical
        }
      }
    }
    const token = msg.token;
    if (deferred && b1v === undefined && b2v === undefined && !this.admit(e, peer, now)) return;
    const c = new InCtx(this, e, peer, token);
    const method = METHOD_BY_CODE[code];
    if (method === undefined) return this.replyNow(e, peer, token, C_405, undefined, undefined);
    if (badCritical !== 0) {
      const why =
        badCritical === O_ACCEPT ? 'Accept longer than 2 bytes' : `unsupported critical option ${badCritical}`;
      return this.replyNow(e, peer, token, C_402, undefined, Buffer.from(why));
    }
    if (proxy) return this.replyNow(e, peer, token, C_505, undefined, undefined);

    // ---- Block2 follow-up served from the cache
    if (b2v !== undefined) {
      const blk = decodeBlock(b2v);
      if (blk === undefined) return this.replyNow(e, peer, token, C_402, undefined, Buffer.from('bad Block2'));
      const szx = blk.szx < this.ourSzx ? blk.szx : this.ourSzx;
      c.b2key = uriKey(ps.key, code, path, query);
      if (blk.num > 0) {
        const cached = this.b2.get(c.b2key);
        if (cached !== undefined)
          return this.serveBlock(e, peer, token, cached, c.b2key, blk.num * blk.size, szx, now, observe !== undefined);
      }
      if (deferred && b1v === undefined && !this.admit(e, peer, now)) return;
      c.b2num = blk.num;
      c.b2szx = blk.num === 0 ? szx : blk.szx;
    }

    let payload = msg.payload;
    // ---- Block1 reassembly
    if (b1v !== undefined) {
      const blk = decodeBlock(b1v);
      if (blk === undefined) return this.replyNow(e, peer, token, C_400, undefined, Buffer.from('bad Block1'));
      const key = uriKey(ps.key, code, path, query) + requestTagKey(requestTag);
      const off = blk.num * blk.size;
      let t = this.b1.get(key);
      if (deferred && (blk.num === 0 || t === undefined || off !== t.size) && !this.admit(e, peer, now)) return;
      if (blk.num === 0) {
        if (size1 !== undefined && size1 > this.o.maxBodySize) return this.tooLarge(e, peer, token, key);
        if (t === undefined) {
          if (blk.more) {
            if (ps.blocks >= this.o.maxBlockTransfersPerPeer) this.evictPeerBlock(ps);
            if (this.b1.size + this.b2.size >= this.o.maxBlockTransfers) this.evictOldestB2();
            if (this.b1.size + this.b2.size >= this.o.maxBlockTransfers) return this.overloaded(e, peer, token);
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
        return this.replyNow(e, peer, token, C_408, undefined, undefined);
      } else if (off < t.size) {
        // a block we already have (re-sent with a new MID): acknowledge again, nothing to append
        if (blk.more)
          return this.replyNow(
            e,
            peer,
            token,
            C_231,
            [{ n: O_BLOCK1, v: blockValue(blk.num, true, blk.szx) }],
            undefined,
          );
        this.dropB1(key, t);
        return this.replyNow(e, peer, token, C_408, undefined, undefined);
      }
      if (blk.more && payload.length !== blk.size) {
        if (t !== undefined) this.dropB1(key, t);
        return this.replyNow(e, peer, token, C_400, undefined, Buffer.from('Block1 block size mismatch'));
      }
      if (t !== undefined) {
        if (t.size + payload.length > this.o.maxBodySize) return this.tooLarge(e, peer, token, key);
        if (blk.more) {
          t.chunks.push(payload);
          t.size += payload.length;
          t.expires = now + this.o.blockTransferTimeoutMs;
          const szx = blk.szx < this.ourSzx ? blk.szx : this.ourSzx;
          return this.replyNow(e, peer, token, C_231, [{ n: O_BLOCK1, v: blockValue(blk.num, true, szx) }], undefined);
        }
        // last block: only now check the concurrency limit, so that a 5.03 lets the client retry this block
        if (this.overLimit(ps)) return this.overloaded(e, peer, token);
        t.chunks.push(payload);
        payload = Buffer.concat(t.chunks, t.size + payload.length);
        this.dropB1(key, t);
      }
      c.b1echo = blockValue(blk.num, false, blk.szx);
    }

    if (this.overLimit(ps)) return this.overloaded(e, peer, token);

    // ---- hand the request to the handler
    const req: IncomingRequest = {
      peer,
      method,
      code: codeFromByte(code),
      confirmable: con,
      messageId: mid,
      token,
      pathSegments: path,
      query,
      contentFormat,
      accept,
      observe,
      payload,
      options: options as CoapOption[],
    };
    e.pending = true;
    e.ctx = c;
    c.reqCode = code;
    c.reqPath = path;
    c.reqQuery = query;
    c.reqObserve = observe;
    ps.inFlight++;
    this.inFlightTotal++;
    const h = this.handler;
    let r: OutgoingResponse | Promise<OutgoingResponse>;
    if (h === undefined) r = NOT_FOUND;
    else {
      try {
        r = h(req);
      } catch (err) {
        this.reportError(err);
        r = SERVER_ERROR;
      }
    }
    if (isThenable(r)) {
      if (con) this.timers.schedule(c, now + this.o.separateResponseAfterMs);
      r.then(
        (res) => this.finishIncoming(c, res),
        (err) => {
          this.reportError(err);
          this.finishIncoming(c, SERVER_ERROR);
        },
      );
    } else this.finishIncoming(c, r);
  }

  /** The deferred rate-limit decision (see onRequest) for a request that continues no block-wise transfer. */
  private admit(e: InEntry, peer: Peer, now: number): boolean {
    if (this.takeToken(peer.address, now)) return true;
    this.st.requestsIn--;
    this.st.rateLimited++;
    this.st.dropped++;
    this.dropDedup(e, false);
    return false;
  }

  private overLimit(ps: PeerState): boolean {
    return ps.inFlight >= this.o.maxConcurrentPerPeer || this.inFlightTotal >= this.o.maxConcurrentTotal;
  }

  private overloaded(e: InEntry, peer: Peer, token: Buffer): void {
    this.st.overloaded++;
    if (!e.con) {
      this.st.dropped++;
      return;
    }
    this.replyNow(e, peer, token, C_503, [{ n: O_MAX_AGE, v: this.o.overloadMaxAgeS }], undefined);
  }

  private tooLarge(e: InEntry, peer: Peer, token: Buffer, key: string): void {
    const t = this.b1.get(key);
    if (t !== undefined) this.dropB1(key, t);
    this.replyNow(e, peer, token, C_413, [{ n: O_SIZE1, v: this.o.maxBodySize }], undefined);
  }

  private dropB1(key: string, t: B1Entry): void {
    if (this.b1.get(key) !== t) return;
    this.b1.delete(key);
    t.ps.blocks--;
    this.maybeFree(t.ps);
  }

  private dropB2(key: string, c: B2Entry): void {
    if (this.b2.get(key) !== c) return;
    this.b2.delete(key);
    c.ps.blocks--;
    this.maybeFree(c.ps);
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

  /** The handler's response (or a failure) for a pending incoming exchange. */
  private finishIncoming(c: InCtx, res: OutgoingResponse): void {
    const e = c.entry;
    if (!e.pending) return;
    e.pending = false;
    e.ctx = null;
    this.timers.cancel(c);
    const ps = e.ps;
    ps.inFlight--;
    this.inFlightTotal--;
    if (this.closed) return;
    try {
      this.sendHandlerResponse(c, res);
    } catch (err) {
      this.reportError(err);
      this.emitResponse(e, c.peer, c.token, C_500, undefined, undefined);
    }
    this.maybeFree(ps);
  }

  private sendHandlerResponse(c: InCtx, res: OutgoingResponse): void {
    const e = c.entry;
    const peer = c.peer;
    const token = c.token;
    if (res === null || typeof res !== 'object') throw new TypeError('request handler returned no response');
    const code = codeToByte(res.code);
    const cls = code >> 5;
    if (cls < 2 || cls > 5 || cls === 3) throw new TypeError(`invalid response code ${res.code}`);
    if (c.reqObserve !== undefined) this.trackServedObservation(e.ps.key, token, c, code, res);
    const opts: EncOption[] = [];
    if (res.contentFormat !== undefined) opts.push({ n: O_CONTENT_FORMAT, v: res.contentFormat });
    const lp = res.locationPath;
    if (lp !== undefined) for (let i = 0; i < lp.length; i++) opts.push({ n: 8, v: lp[i] });
    const ro = res.options;
    if (ro !== undefined)
      for (let i = 0; i < ro.length; i++) opts.push({ n: optionNumber(ro[i].name), v: ro[i].value });
    if (c.b1echo >= 0) opts.push({ n: O_BLOCK1, v: c.b1echo });
    const payload = res.payload;
    const szx = c.b2szx >= 0 ? c.b2szx : this.ourSzx;
    if (payload !== undefined && (payload.length > szxToSize(szx) || c.b2num > 0)) {
      // ---- serve with Block2; keep the body for the follow-up requests
      const key = c.b2key ?? uriKey(e.ps.key, c.reqCode, c.reqPath ?? [], c.reqQuery ?? []);
      const old = this.b2.get(key);
      if (old !== undefined) this.dropB2(key, old);
      const entry: B2Entry = { body: payload, code, opts, expires: 0, ps: e.ps };
      if (res.onProgress !== undefined) entry.onProgress = res.onProgress;
      if (payload.length > szxToSize(szx)) {
        if (e.ps.blocks >= this.o.maxBlockTransfersPerPeer) this.evictPeerBlock(e.ps);
        if (this.b1.size + this.b2.size >= this.o.maxBlockTransfers) this.evictOldestB2();
        if (this.b1.size + this.b2.size < this.o.maxBlockTransfers) {
          this.b2.set(key, entry);
          e.ps.blocks++;
        }
      }
      this.serveBlock(e, peer, token, entry, key, c.b2num * szxToSize(szx), szx, performance.now());
      return;
    }
    this.emitResponse(e, peer, token, code, opts, payload);
  }

  private serveBlock(
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
      return this.emitResponse(e, peer, token, C_402, undefined, Buffer.from('Block2 beyond the end'));
    }
    const end = Math.min(off + size, body.length);
    const more = end < body.length;
    const opts = c.opts.slice();
    opts.push({ n: O_BLOCK2, v: blockValue(off / size, more, szx) });
    if (off === 0) opts.push({ n: O_SIZE2, v: body.length });
    if (withObserve && c.observe !== undefined) opts.push({ n: O_OBSERVE, v: c.observe });
    if (more) c.expires = now + this.o.blockTransferTimeoutMs;
    else this.dropB2(key, c);
    this.emitResponse(e, peer, token, c.code, opts, body.subarray(off, end));
    if (c.onProgress !== undefined) this.progressOf(c.onProgress, end, body.length);
  }

  /** A reply that needs no handler (errors, 2.31, cached blocks). */
  private replyNow(
    e: InEntry,
    peer: Peer,
    token: Buffer,
    code: number,
    opts: EncOption[] | undefined,
    payload: Buffer | undefined,
  ): void {
    this.emitResponse(e, peer, token, code, opts, payload);
  }

  private emitResponse(
    e: InEntry,
    peer: Peer,
    token: Buffer,
    code: number,
    opts: EncOption[] | undefined,
    payload: Buffer | undefined,
  ): void {
    if (e.separate) {
      const mid = this.allocMid(peer.key);
      const buf = encodeMessage(CON, code, mid, token, opts, payload);
      const rto = this.o.ackTimeoutMs * (1 + Math.random() * (this.o.ackRandomFactor - 1));
      const r = new OutResponse(this, peer, this.lastMidKey, buf, rto);
      this.outByMid.set(r.midKey, r);
      this.separatePending++;
      this.timers.schedule(r, performance.now() + rto);
      this.transport.send(buf, peer);
      return;
    }
    let buf: Buffer;
    if (e.con) buf = encodeMessage(ACK, code, e.mid, token, opts, payload);
    else buf = encodeMessage(NON, code, this.allocMid(peer.key), token, opts, payload);
    e.buf = buf;
    this.transport.send(buf, peer);
  }

  /** @internal timer callback */
  _onOutResponseTimer(r: OutResponse, now: number): void {
    if (this.outByMid.get(r.midKey) !== r) return;
    if (r.retransmits >= this.o.maxRetransmit) {
      this.finishOutResponse(r);
      return;
    }
    r.retransmits++;
    this.st.retransmissions++;
    r.rto *= 2;
    this.timers.schedule(r, now + r.rto);
    this.transport.send(r.buf, r.peer);
  }

  private finishOutResponse(r: OutResponse): void {
    if (this.outByMid.get(r.midKey) !== r) return;
    this.outByMid.delete(r.midKey);
    this.timers.cancel(r);
    this.separatePending--;
  }

  // ================================================================ bookkeeping

  private peerState(key: string): PeerState {
    let ps = this.peers.get(key);
    if (ps === undefined) {
      ps = new PeerState(key);
      if (!this.closed) this.peers.set(key, ps);
    }
    return ps;
  }

  private maybeFree(ps: PeerState): void {
    if (
      ps.active === 0 &&
      ps.refs === 0 &&
      ps.inFlight === 0 &&
      ps.dedupCount === 0 &&
      ps.blocks === 0 &&
      ps.queue === null &&
      this.peers.get(ps.key) === ps
    )
      this.peers.delete(ps.key);
  }

  private addDedup(key: string, ps: PeerState, now: number): InEntry {
    if (ps.dedupCount >= this.o.maxDedupEntriesPerPeer && ps.dHead !== null) this.dropDedup(ps.dHead, false);
    const previous = this.dedup.get(key);
    if (previous !== undefined) this.dropDedup(previous, false);
    if (this.dedup.size >= this.o.maxDedupEntries) {
      const oldest = this.dedupHead;
      if (oldest !== null) this.dropDedup(oldest, oldest.ps !== ps);
    }
    const e = new InEntry(key, ps, now + this.o.exchangeLifetimeMs);
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

  private dropDedup(e: InEntry, free: boolean): void {
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
    if (free) this.maybeFree(ps);
  }

  private takeToken(address: string, now: number): boolean {
    const rate = this.o.maxRequestsPerSecondPerAddress;
    return this.buckets.take(address, rate, rate, now) === 0;
  }

  private readonly sweep = (): void => {
    if (this.closed) return;
    const now = performance.now();
    for (let e = this.dedupHead; e !== null;) {
      const next: InEntry | null = e.gNext;
      if (e.expires > now) break;
      if (!e.pending) this.dropDedup(e, true);
      e = next;
    }
    for (const [k, t] of this.b1) if (t.expires <= now) this.dropB1(k, t);
    for (const [k, c] of this.b2) if (c.expires <= now) this.dropB2(k, c);
    for (const [k, exp] of this.cancelled) if (exp <= now) this.cancelled.delete(k);
    for (const [k, n] of this.nonNotifs) {
      if (n.expires > now) break;
      this.nonNotifs.delete(k);
    }
    const rate = this.o.maxRequestsPerSecondPerAddress;
    if (rate > 0) this.buckets.forgetFull(rate, rate, now);
  };

  /** A caller's progress callback: what it throws must not break the exchange, so it is reported instead. */
  private progressOf(callback: (sent: number, total: number) => void, sent: number, total: number): void {
    try {
      callback(sent < total ? sent : total, total);
    } catch (err) {
      this.reportError(err);
    }
  }

  private reportError(err: unknown): void {
    try {
      this.onError(err);
    } catch {
      // ignore
    }
  }
}

function hasOption(msg: ParsedPacket, name: string): boolean {
  const o = msg.options;
  for (let i = 0; i < o.length; i++) if (o[i].name === name) return true;
  return false;
}

function uriKey(peerKey: string, code: number, path: string[], query: string[]): string {
  return peerKey + '|' + code + '|' + path.join('/') + '?' + query.join('&');
}

function requestTagKey(tag: Buffer | undefined): string {
  return tag === undefined ? '' : '|' + tag.toString('hex');
}
