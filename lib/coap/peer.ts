/**
 * Per-peer state and the records of the exchanges a peer owns. A `PeerState` exists while its peer has anything in
 * progress or remembered (NSTART slots and queued requests, requests being handled, dedup entries, block
 * transfers) and is dropped by `PeerTable.release` once it is idle. The records (an incoming message's dedup
 * entry, an outgoing request, an observation) refer to each other, so they live here together; the layers that
 * act on them (message.ts, exchange.ts, observe-client.ts, ...) hold no per-peer state of their own.
 */
import type { Peer } from '../transport/types';
import { METHOD_CODES, type ParsedPacket } from './codec';
import type { TimerItem } from './timers';
import {
  translateFailure,
  type IncomingResponse,
  type NotificationListener,
  type ObservationHandle,
  type OutgoingRequest,
  type RequestFailureTranslator,
} from './types';

/** One peer's state; exists only while the peer has something in progress or cached. */
export class PeerState {
  /** NSTART slots in use. */
  active = 0;
  /** Outgoing requests waiting for an NSTART slot, in order. */
  queue: OutRequest[] | null = null;
  /** OutRequests referencing this state (queued, outstanding or awaiting a separate response). */
  refs = 0;
  /** Incoming requests being handled. */
  inFlight = 0;
  /** The peer's dedup entries, oldest first (a list, for the per-peer cap). */
  dedupCount = 0;
  dHead: InEntry | null = null;
  dTail: InEntry | null = null;
  /** Block1 reassemblies + cached Block2 bodies. */
  blocks = 0;
  constructor(readonly key: string) {}

  /** Nothing in progress or remembered: the state can go. */
  isIdle(): boolean {
    return (
      this.active === 0 &&
      this.refs === 0 &&
      this.inFlight === 0 &&
      this.dedupCount === 0 &&
      this.blocks === 0 &&
      this.queue === null
    );
  }
}

/** The endpoint's peers by key: created on first use, dropped once idle (`release`), all dropped at close. */
export class PeerTable {
  // A Map, not a StringTable: with tens of thousands of peers a Map's lookups cost less, and a peer's state mostly
  // lives as long as its dedup entries (promoted anyway).
  private readonly peers = new Map<string, PeerState>();
  private open = true;

  get size(): number {
    return this.peers.size;
  }

  /** The peer's state, created if it has none (a closed endpoint keeps none). */
  get(key: string): PeerState {
    let ps = this.peers.get(key);
    if (ps === undefined) {
      ps = new PeerState(key);
      if (this.open) this.peers.set(key, ps);
    }
    return ps;
  }

  states(): IterableIterator<PeerState> {
    return this.peers.values();
  }

  /** The peer's state if it has one. */
  find(key: string): PeerState | undefined {
    return this.peers.get(key);
  }

  /** Drops the peer's state if it is idle. */
  release(ps: PeerState): void {
    if (ps.isIdle() && this.peers.get(ps.key) === ps) this.peers.delete(ps.key);
  }

  close(): void {
    this.open = false;
    this.peers.clear();
  }
}

/**
 * Dedup entry for an incoming CON/NON message; lives for EXCHANGE_LIFETIME, so it is kept small:
 * after completion only `buf` (the encoded reply to resend) and the bookkeeping fields remain.
 */
export class InEntry {
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
  /** The request being handled (its separate-response timer). */
  ctx: TimerItem | null = null;
  constructor(
    readonly key: string,
    readonly ps: PeerState,
    readonly expires: number,
  ) {}
}

export const enum Kind {
  Request,
  Observe,
  NotifBlock,
}

/** Whoever runs the timers of outgoing requests (the exchange layer). */
export interface RequestTimerOwner {
  onRequestTimer(x: OutRequest, now: number): void;
}

/** Whoever cancels observations (the endpoint). */
export interface ObservationOwner {
  _cancelObservation(obs: Observation, mode: 'active' | 'passive'): Promise<IncomingResponse | void>;
}

function noop(): void {}

const NO_TOKEN = Buffer.alloc(0);

/** One logical outgoing request (all its blocks and retransmissions). */
export class OutRequest implements TimerItem {
  timerAt = 0;
  timerIdx = -1;
  midKey: string | null = null;
  /** The token of the current step (a new one for each Block2 request) and its `peerKey|tokenhex`. */
  token: Buffer = NO_TOKEN;
  tokenKey = '';
  /** The request's first token: the one its response and observation carry. */
  origToken: Buffer = NO_TOKEN;
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
  /** Makes the error a failure rejects with (see RequestFailureTranslator); null: the CoapRequestError itself. */
  failure: RequestFailureTranslator | null = null;
  constructor(
    private readonly owner: RequestTimerOwner,
    readonly peer: Peer,
    readonly ps: PeerState,
    readonly req: OutgoingRequest,
    readonly kind: Kind,
    readonly hard: boolean,
    readonly listener: NotificationListener | undefined,
  ) {
    this.con = req.confirmable !== false;
    this.code = METHOD_CODES[req.method];
    if (this.code === undefined) throw new TypeError(`unknown CoAP method '${req.method}'`);
  }
  onTimer(now: number): void {
    this.owner.onRequestTimer(this, now);
  }
  /** Rejects the request's promise with `err`, or with what its failure translator makes of it. */
  rejectWith(err: Error): void {
    this.reject(translateFailure(this.failure, err));
  }
}

/** An observation we hold as the observer (RFC 7641 §3). */
export class Observation implements ObservationHandle {
  active = true;
  lastSeq = -1;
  lastTime = -Infinity;
  gen = 0;
  /** The Block2 fetch of the rest of a large notification, while it runs. */
  fetch: OutRequest | null = null;
  constructor(
    private readonly owner: ObservationOwner,
    readonly peer: Peer,
    /** `peerKey|tokenhex`: the table's key, and where the token is read from. */
    readonly tokenKey: string,
    readonly listener: NotificationListener,
    readonly request: OutgoingRequest | undefined,
  ) {}

  /**
   * The token, read back from `tokenKey`: not kept as a Buffer of its own, which would cost every observation about
   * 100 bytes (bench/heap-per-device.ts). Only a cancel and the observation's owner at its start ask; a notification
   * carries its own.
   */
  get token(): Buffer {
    return Buffer.from(this.tokenKey.slice(this.tokenKey.lastIndexOf('|') + 1), 'hex');
  }
  cancel(mode: 'active' | 'passive' = 'active'): Promise<IncomingResponse | void> {
    return this.owner._cancelObservation(this, mode);
  }
}
