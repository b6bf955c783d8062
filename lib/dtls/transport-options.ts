/**
 * The DTLS server's settings, counters and events (the types a DtlsTransport user deals with), and the
 * handshake credentials its settings make.
 */

import type { KeyObject, X509Certificate } from 'node:crypto';
import type { Peer } from '../transport/types';
import { loadCertificates, loadP256PrivateKey, spkiOf } from './credentials';
import type { DropReason, DropReport } from './drops';
import type { HandshakeCredentials } from './handshake-credentials';
import type { DtlsSessionStore } from './session-store';
import { CIPHER_SUITES, isCbc, suiteByName, type CipherSuite } from './suites';

export interface DtlsServerOptions {
  /** Bind address, default `'::'` (dual-stack, falling back to IPv4 like UdpTransport). */
  address?: string;
  /** Default 5684; 0 picks a free port. */
  port?: number;
  /** PSK lookup by the identity the client sent (UTF-8 text). undefined = unknown identity. May be async. */
  pskKey?: (identity: string, peer: Peer) => Buffer | undefined | Promise<Buffer | undefined>;
  /** Our X.509 certificate chain (PEM or DER, leaf first) and its P-256 private key. */
  certificate?: { chain: Array<string | Buffer>; privateKey: string | Buffer | KeyObject };
  /** CA certificates that client certificates must chain to (PEM or DER). */
  trustedCertificates?: Array<string | Buffer>;
  /** Our raw public key (RFC 7250): the P-256 private key; the public key is derived. */
  rawPublicKey?: { privateKey: string | Buffer | KeyObject };
  /** A client's raw public key (SPKI DER) -> the identity it stands for, or undefined = not trusted. May be async. */
  clientRawPublicKey?: (spki: Buffer, peer: Peer) => string | undefined | Promise<string | undefined>;
  /**
   * IANA names; default: every suite we support for which credentials are configured (the CBC ones
   * only with allowCbcSuites).
   */
  cipherSuites?: string[];
  /**
   * Offer the CBC suites (TLS_PSK_WITH_AES_128_CBC_SHA256, TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA256);
   * default false. Their record check follows RFC 5246 §6.2.3.2 but is not constant-time (Lucky13),
   * LwM2M mandates the CCM_8 suites, and Californium marks CBC as not recommended: enable only for
   * devices that offer nothing else. Naming a CBC suite in cipherSuites without this is an error.
   */
  allowCbcSuites?: boolean;
  /**
   * Half-open handshakes (past the cookie exchange, not finished) per source IP address (default 16).
   * One more from a full address evicts that address's oldest: a flood from an address cannot lock out an
   * honest client behind it, which needs its handshake to outlive only this many newer ones.
   */
  maxHandshakesPerAddress?: number;
  /**
   * Half-open handshakes in total (default 10000), apart from established sessions: one more when full
   * evicts the oldest of all. Each holds its flight and two timers, a few KB, for handshakeTimeoutMs at most.
   */
  maxHandshakes?: number;
  /** Established sessions in total (default 100000): a new handshake is refused while they are all in use. */
  maxSessions?: number;
  /**
   * A session with no authentic record for this long is forgotten (default 24 h: the default LwM2M
   * registration lifetime; a device silent for longer has lost its registration anyway, while a
   * shorter expiry would force sleepy queue-mode devices into a new handshake on every wake-up).
   */
  sessionIdleTimeoutMs?: number;
  /** A handshake that does not complete within this is dropped (default 60 s: covers five retransmissions). */
  handshakeTimeoutMs?: number;
  recvBufferSize?: number;
  /**
   * Offer a Connection ID (RFC 9146) to clients that ask for one (default true): their records then
   * find the session by CID, so a NAT rebinding (new address or port) moves it (event `peerMoved`).
   */
  connectionId?: boolean;
  /**
   * Let clients resume a session (RFC 5246 §7.3 abbreviated handshake: no key exchange, no
   * certificates) by its session ID, for sessionIdleTimeoutMs after it was established or last
   * resumed (default true). The credentials are re-checked before resuming (the PSK lookup must give
   * the same key, the raw key the same identity, the chain must still verify); closeSession() and
   * fatal alerts make a session unresumable. Resumable sessions live in the session store, so a
   * later transport with the same store resumes them too.
   */
  sessionResumption?: boolean;
  /**
   * Where resumable sessions, and the established connections a `close({ keepSessions: true })`
   * hands over, are kept (see DtlsSessionStore: it holds secret material). Default: a
   * MemoryDtlsSessionStore of this transport's own, i.e. nothing outlives the transport. Pass the
   * same store to the next transport on the same port to let it adopt the sessions.
   */
  sessionStore?: DtlsSessionStore;
  /**
   * What close() does when not told (`keepSessions` of DtlsCloseOptions); default false. Also
   * settable later (`transport.keepSessionsOnClose`), e.g. when it is known only at close time.
   */
  keepSessionsOnClose?: boolean;
  /** Socket errors and exceptions from event listeners; never thrown. */
  onError?: (err: Error) => void;
}

/** Counters since start. */
export interface DtlsStats {
  helloVerifyRequests: number;
  handshakesStarted: number;
  handshakesCompleted: number;
  /** Of the completed handshakes, those that resumed a session. */
  handshakesResumed: number;
  handshakesFailed: number;
  /** Valid ClientHellos refused: maxSessions established sessions in use. */
  handshakesRefused: number;
  /** Half-open handshakes evicted by newer ones (maxHandshakesPerAddress / maxHandshakes); also in handshakesFailed. */
  handshakesEvicted: number;
  retransmissions: number;
  /** Dropped records (or the rest of a datagram) by reason; each reason is reported by `recordsDropped`. */
  dropped: Record<DropReason, number>;
  /** Datagrams with no parsable record, or records for no known association. */
  droppedDatagrams: number;
  droppedReplays: number;
  droppedBadMac: number;
  droppedOther: number;
  /** send() calls dropped: no established session with the peer (or data over the 2^14-byte record limit). */
  sendsWithoutSession: number;
  /** Established connections taken over from the session store at start() (kept by a previous transport). */
  sessionsAdopted: number;
  /** Connections in the store not adopted: expired, for another port, suite no longer enabled, malformed, duplicates. */
  keptSessionsDiscarded: number;
  /** Adopted connections ended at first use because their credentials no longer hold (PSK changed or removed...). */
  adoptedSessionsRefused: number;
}

/** Counters at zero, with `dropped` the drop log's counts by reason. */
export function emptyStats(dropped: Record<DropReason, number>): DtlsStats {
  return {
    dropped,
    helloVerifyRequests: 0,
    handshakesStarted: 0,
    handshakesCompleted: 0,
    handshakesResumed: 0,
    handshakesFailed: 0,
    handshakesRefused: 0,
    handshakesEvicted: 0,
    retransmissions: 0,
    droppedDatagrams: 0,
    droppedReplays: 0,
    droppedBadMac: 0,
    droppedOther: 0,
    sendsWithoutSession: 0,
    sessionsAdopted: 0,
    keptSessionsDiscarded: 0,
    adoptedSessionsRefused: 0,
  };
}

/** Options of DtlsTransport.close(). */
export interface DtlsCloseOptions {
  /**
   * Close the socket without sending close_notify and save the established sessions in the
   * session store, for the next DtlsTransport started with the same store (and port) to adopt:
   * the devices' next records then go on decrypting there, with no new handshake. The sessions
   * are not reported closed (no `sessionClosed`). Handshakes in progress are dropped either way.
   * Default: the transport's keepSessionsOnClose (false unless configured): close_notify to every
   * session and nothing kept.
   */
  keepSessions?: boolean;
}

/** The events a DtlsTransport emits, with their arguments. */
export interface DtlsTransportEvents {
  /**
   * A handshake completed; the peer carries its security identity. Not emitted for sessions
   * adopted from the session store at start() (they were reported by the transport that
   * established them; hasSession() is true for them at once).
   */
  session: [peer: Peer];
  /**
   * An established session ended (close_notify, idle timeout, closeSession, a new handshake...).
   * An adopted session whose credentials no longer hold ends at its first use with a reason
   * starting `kept session refused: `.
   */
  sessionClosed: [peer: Peer, reason: string];
  handshakeFailed: [peer: Peer, reason: string];
  /** An authentic record with the session's Connection ID came from a new address: the session moved there. */
  peerMoved: [previous: Peer, current: Peer];
  /** Records were dropped: for the first drop of a reason, then at most once a minute per reason, with counts. */
  recordsDropped: [drop: DropReport];
}

/** Loads and checks the configured credentials; throws on a misconfiguration (at construction, not per handshake). */
export function loadCredentials(options: DtlsServerOptions): HandshakeCredentials {
  const certificate =
    options.certificate !== undefined
      ? {
          chain: loadCertificates(options.certificate.chain).map((certificate: X509Certificate) => certificate.raw),
          privateKey: loadP256PrivateKey(options.certificate.privateKey),
        }
      : undefined;
  if (certificate !== undefined && certificate.chain.length === 0) throw new Error('certificate.chain is empty');
  const rawKey = options.rawPublicKey !== undefined ? loadP256PrivateKey(options.rawPublicKey.privateKey) : undefined;
  const rawPublicKey = rawKey !== undefined ? { spki: spkiOf(rawKey), privateKey: rawKey } : undefined;
  const trustedCertificates = loadCertificates(options.trustedCertificates ?? []);
  const canPsk = options.pskKey !== undefined;
  const canEcdhe =
    (certificate !== undefined || rawPublicKey !== undefined) &&
    (trustedCertificates.length > 0 || options.clientRawPublicKey !== undefined);
  const allowCbc = options.allowCbcSuites === true;
  let suites: CipherSuite[];
  if (options.cipherSuites !== undefined) {
    suites = options.cipherSuites.map((name) => {
      const suite = suiteByName(name);
      if (suite === undefined) throw new Error(`unsupported cipher suite ${name}`);
      if (isCbc(suite) && !allowCbc) throw new Error(`${name} is a CBC suite: set allowCbcSuites to offer it`);
      return suite;
    });
  } else {
    suites = CIPHER_SUITES.filter((suite) => (suite.keyExchange === 'psk' ? canPsk : canEcdhe));
    if (!allowCbc) suites = suites.filter((suite) => !isCbc(suite));
  }
  suites = suites.filter((suite) => (suite.keyExchange === 'psk' ? canPsk : canEcdhe));
  if (suites.length === 0) {
    throw new Error('DTLS: no usable cipher suite (configure pskKey, or a certificate/raw key with client trust)');
  }
  return {
    suites,
    pskKey: options.pskKey,
    certificate,
    rawPublicKey,
    trustedCertificates,
    clientRawPublicKey: options.clientRawPublicKey,
  };
}
