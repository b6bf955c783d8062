/**
 * The CoAP layer's public types: codes, methods and options as the API spells them, incoming and outgoing
 * requests and responses, observation handles and listeners, request errors, and the endpoint's options.
 * Byte counts in this file's comments: garbage per request from `node build/bench/read-allocs.js --profile`, memory
 * per observation from `bench/heap-per-device.ts`.
 */
import { Lwm2mError } from '../errors';
import type { Peer, PeerAddress } from '../transport/types';

/** A CoAP code in dotted form, as everywhere in this project: '0.01', '2.05', '4.04'. */
export type CoapCode = string;

export type CoapMethod = 'GET' | 'POST' | 'PUT' | 'DELETE' | 'FETCH' | 'PATCH' | 'iPATCH';

export interface CoapOption {
  /** coap-packet option name ('Uri-Path', 'Observe', ...) or number for unregistered ones. */
  name: string | number;
  value: Buffer;
}

/** A request that arrived at our endpoint (from a device). Block1 is already reassembled. */
export interface IncomingRequest {
  peer: Peer;
  method: CoapMethod;
  code: CoapCode;
  confirmable: boolean;
  messageId: number;
  token: Buffer;
  /** Uri-Path segments, decoded as UTF-8. */
  pathSegments: string[];
  /** Uri-Query values, decoded as UTF-8, in order (e.g. ['ep=dev1', 'lt=300']). */
  query: string[];
  contentFormat?: number;
  accept?: number;
  observe?: number;
  payload: Buffer;
  options: CoapOption[];
}

export interface OutgoingResponse {
  code: CoapCode;
  payload?: Buffer;
  contentFormat?: number;
  /** Location-Path segments (e.g. ['rd', '5a3f'] for a Register). */
  locationPath?: string[];
  options?: CoapOption[];
  /**
   * Called after each Block2 block of this (large) payload is sent: bytes up to the end of that block, and the
   * payload's size. Follow-up blocks come from the endpoint's cache without the handler, so a handler that
   * wants to watch a download (a firmware package) needs it. Not called for a payload that fits one message.
   */
  onProgress?: (sentBytes: number, totalBytes: number) => void;
}

export type RequestHandler = (request: IncomingRequest) => OutgoingResponse | Promise<OutgoingResponse>;

/** A request we send to a device. */
export interface OutgoingRequest {
  method: CoapMethod;
  pathSegments: string[];
  query?: string[];
  contentFormat?: number;
  accept?: number;
  payload?: Buffer;
  /** 0 = register an observation, 1 = cancel one (active cancel). Use `observe()` for 0. */
  observe?: 0 | 1;
  /** Token to reuse (active cancel must use the observation's token). */
  token?: Buffer;
  /** Default true. */
  confirmable?: boolean;
  /** Extra options (e.g. Uri-Query already above). */
  options?: CoapOption[];
  /**
   * Hard overall limit for the whole exchange including every block. Without it there is none: the
   * exchange fails only when one step (ACK, response, next block) makes no progress for the endpoint's
   * `requestTimeoutMs`, re-armed by every block, so the limit scales with the number of blocks by
   * itself. `requestTimeoutFor(bytes, endpoint.options)` gives a hard limit scaled to a payload size.
   */
  timeoutMs?: number;
  /** Block size to use for Block1 (16..1024); defaults to the endpoint's. */
  blockSize?: number;
  /**
   * Block1 upload: called each time the peer has taken a block (2.31 Continue): bytes it has so far, and the
   * body's size. Not called for a body that fits one message (the response says it all).
   */
  onProgress?: (sentBytes: number, totalBytes: number) => void;
}

export interface IncomingResponse {
  peer: Peer;
  code: CoapCode;
  contentFormat?: number;
  observe?: number;
  /** Whole payload: Block2 already fetched and reassembled. */
  payload: Buffer;
  options: CoapOption[];
  token: Buffer;
  /** Round-trip time of the whole exchange in ms. */
  rttMs: number;
}

/** Failure of a request: timeout, reset, or cancelled. A response with 4.xx/5.xx is NOT an error. */
export class CoapRequestError extends Lwm2mError {
  override name = 'CoapRequestError';
  declare readonly code: CoapFailureReason;
  constructor(message: string, reason: CoapFailureReason) {
    super(message, reason);
  }

  /** Why the request failed: the base's `code`, under the name the CoAP layer's callers know. */
  get reason(): CoapFailureReason {
    return this.code;
  }
}

/**
 * Turns the failure of a request into the error its promise rejects with (a layer above the endpoint names the
 * failure in its own terms). Given to `CoapEndpoint.request`, it saves that layer a `.then` with a closure per
 * request (a promise, a reaction and a context: about 250 bytes each).
 */
export interface RequestFailureTranslator {
  failed(err: Error): Error;
}

/**
 * What `failure` makes of `err`. A translator runs inside the exchange layer (a timer, the close), not in a promise
 * handler: one that throws (a listener it calls, say) gives what it threw, so the request still settles.
 */
export function translateFailure(failure: RequestFailureTranslator | null | undefined, err: Error): Error {
  if (failure === null || failure === undefined) return err;
  try {
    return failure.failed(err);
  } catch (thrown) {
    return thrown instanceof Error ? thrown : new Error(String(thrown));
  }
}

/** Why a CoAP request ended without a response. */
export type CoapFailureReason = 'timeout' | 'reset' | 'cancelled' | 'closed' | 'overloaded' | 'block';

export interface ObservationHandle {
  readonly token: Buffer;
  readonly peer: PeerAddress;
  /** 'active': GET with Observe=1 (resolves with the response); 'passive': forget, RST the next notification. */
  cancel(mode?: 'active' | 'passive'): Promise<IncomingResponse | void>;
}

/** An object told of every notification of an observation (see NotificationListener). */
export interface NotificationSink {
  onNotification(notification: IncomingResponse): void;
}

/**
 * Told of every notification of an observation, in order (stale ones per RFC 7641 §3.4 dropped): a function, or an
 * object with `onNotification` (a server holding many observations keeps one object per observation that way,
 * rather than that object and a bound function: about 70 bytes less each).
 */
export type NotificationListener = ((notification: IncomingResponse) => void) | NotificationSink;

/** Hands a notification to its listener, whichever form it has. */
export function tellListener(listener: NotificationListener, notification: IncomingResponse): void {
  if (typeof listener === 'function') listener(notification);
  else listener.onNotification(notification);
}

/** Whether a value an unknown-notification handler returned is a listener. */
export function isNotificationListener(value: unknown): value is NotificationListener {
  return (
    typeof value === 'function' ||
    (typeof value === 'object' &&
      value !== null &&
      typeof (value as Partial<NotificationSink>).onNotification === 'function')
  );
}

/**
 * A notification whose token no live observation holds (e.g. after a restart). Return a listener to
 * accept it (ACK if CON, and the token is adopted as a live observation), or undefined to RST it.
 * The returned listener also receives this notification. (An adopted observation does not know its
 * request path: its `cancel('active')` falls back to passive; use `CoapEndpoint.restoreObservation`
 * when the path is known.)
 */
export type UnknownNotificationHandler = (notification: IncomingResponse) => NotificationListener | undefined;

export interface CoapEndpointOptions {
  /** RFC 7252 ACK_TIMEOUT in ms (default 2000). */
  ackTimeoutMs: number;
  /** RFC 7252 ACK_RANDOM_FACTOR (default 1.5). */
  ackRandomFactor: number;
  /** RFC 7252 MAX_RETRANSMIT (default 4). */
  maxRetransmit: number;
  /** Outstanding CON requests to one peer at once (RFC 7252 NSTART, default 1); more wait in a queue. */
  nstart: number;
  /** Requests waiting for NSTART per peer before new ones are refused (CoapRequestError 'overloaded'). */
  maxQueuedPerPeer: number;
  /** Block size we use (16..1024, default 1024 — the largest that fits an unfragmented UDP datagram for most paths). */
  blockSize: number;
  /** How long a response stays in the dedup cache (RFC 7252 EXCHANGE_LIFETIME, default 247000). */
  exchangeLifetimeMs: number;
  /** Upper bound of dedup entries in total; oldest evicted first. */
  maxDedupEntries: number;
  /** Upper bound of dedup entries one peer may hold. */
  maxDedupEntriesPerPeer: number;
  /** Incoming requests being handled for one peer at once; more get 5.03 (CON) or are dropped (NON). */
  maxConcurrentPerPeer: number;
  /** Incoming requests per second one source address may send (token bucket); excess dropped. 0 = no limit. */
  maxRequestsPerSecondPerAddress: number;
  /** Block1 reassemblies in progress in total, and their maximum body size. */
  maxBlockTransfers: number;
  maxBodySize: number;

  // ---- additions (all optional; defaults in lib/coap/endpoint-options.ts DEFAULT_OPTIONS) ----

  /** Send an empty ACK and a separate response when the handler takes longer than this (default ackTimeoutMs / 2). */
  separateResponseAfterMs?: number;
  /**
   * Default limit without progress for an outgoing exchange (waiting for a separate response, a NON
   * response, or the next block); each received block re-arms it. Default MAX_TRANSMIT_WAIT
   * (ackTimeoutMs * (2^(maxRetransmit+1) - 1) * ackRandomFactor = 93 s with the RFC defaults).
   * `OutgoingRequest.timeoutMs` replaces it with a hard overall limit.
   */
  requestTimeoutMs?: number;
  /** Block1 reassemblies and cached Block2 bodies one peer may hold (default 4). */
  maxBlockTransfersPerPeer?: number;
  /** Idle time after which a Block1 reassembly or a cached Block2 body is dropped (default requestTimeoutMs). */
  blockTransferTimeoutMs?: number;
  /** Largest Block2 body we reassemble from a peer's responses (default 16 MiB; beyond -> CoapRequestError 'block'). */
  maxResponseBodySize?: number;
  /** Incoming requests being handled at once over all peers (default 10000); more get 5.03 / are dropped. */
  maxConcurrentTotal?: number;
  /** Max-Age (s) on 5.03 Service Unavailable sent when overloaded (default 5). */
  overloadMaxAgeS?: number;
  /** When a CON gets no ACK at all, fail the requests queued behind it for that peer too (default true). */
  failQueuedOnTimeout?: boolean;
  /** Period of the housekeeping sweep (dedup expiry etc.; default min(1000, exchangeLifetimeMs / 4)). */
  sweepIntervalMs?: number;
}
