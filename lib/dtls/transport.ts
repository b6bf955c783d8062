import { EventEmitter } from 'node:events';
import { randomBytes, type KeyObject, type X509Certificate } from 'node:crypto';
import { toPeer } from '../transport/peer';
import type { DatagramTransport, Peer, PeerAddress } from '../transport/types';
import { UdpTransport } from '../transport/udp';
import { DecodeError } from './bytes';
import { AlertDescription, AlertLevel, ContentType, HandshakeType } from './constants';
import { DtlsConnection, type ConnectionHost } from './connection';
import { CookieJar } from './cookie';
import { loadCertificates, loadP256PrivateKey, spkiOf } from './credentials';
import { HandshakeFailure } from './failure';
import { HANDSHAKE_HEADER_LENGTH, encodeHandshakeFragment, parseHandshakeFragments } from './handshake';
import { encodeHelloVerifyRequest, parseClientHello, type ClientHello } from './messages';
import { encodeRecord, parseRecords, type DtlsRecord } from './record';
import { ServerHandshake, type HandshakeCredentials } from './server-handshake';
import { SessionCache } from './session-cache';
import { CIPHER_SUITES, suiteByName, type CipherSuite } from './suites';

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
  /** IANA names; default: every suite we support for which credentials are configured. */
  cipherSuites?: string[];
  /** Handshakes in progress per source IP address (default 16). */
  maxHandshakesPerAddress?: number;
  /** Sessions (established plus in handshake) in total (default 100000). */
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
   * fatal alerts make a session unresumable.
   */
  sessionResumption?: boolean;
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
  /** Valid ClientHellos refused by maxHandshakesPerAddress / maxSessions. */
  handshakesRefused: number;
  retransmissions: number;
  /** Datagrams with no parsable record, or records for no known association. */
  droppedDatagrams: number;
  droppedReplays: number;
  droppedBadMac: number;
  droppedOther: number;
  /** send() calls dropped: no established session with the peer (or data over the 2^14-byte record limit). */
  sendsWithoutSession: number;
}

/** Largest datagram we send in a handshake flight: fits the IPv6 minimum MTU (1280) with headers to spare. */
export const HANDSHAKE_PMTU = 1200;

const DEFAULTS = {
  port: 5684,
  maxHandshakesPerAddress: 16,
  maxSessions: 100_000,
  sessionIdleTimeoutMs: 24 * 3600_000,
  handshakeTimeoutMs: 60_000,
};

/**
 * Length of the Connection IDs we hand out: 6 random bytes make a collision among even a million
 * sessions unlikely (and one is checked for anyway), and cost 6 bytes per record.
 */
export const CONNECTION_ID_LENGTH = 6;

/** The idle sweep runs this often at most (and at least four times per idle timeout). */
const MAX_SWEEP_INTERVAL_MS = 60_000;

function noop(): void {}

/** The events a DtlsTransport emits, with their arguments. */
export interface DtlsTransportEvents {
  /** A handshake completed; the peer carries its security identity. */
  session: [peer: Peer];
  sessionClosed: [peer: Peer, reason: string];
  handshakeFailed: [peer: Peer, reason: string];
  /** An authentic record with the session's Connection ID came from a new address: the session moved there. */
  peerMoved: [previous: Peer, current: Peer];
}

/**
 * A DTLS 1.2 server as a DatagramTransport: the CoAP endpoint above it sees only decrypted
 * application data, with the peer's authenticated identity in `peer.security`.
 *
 * Events (DtlsTransportEvents): `session` (peer) when a handshake completes; `sessionClosed`
 * (peer, reason); `handshakeFailed` (peer, reason); `peerMoved` (previous, current) with CIDs.
 */
export class DtlsTransport extends EventEmitter<DtlsTransportEvents> implements DatagramTransport {
  onError: (err: Error) => void;
  readonly stats: DtlsStats = {
    helloVerifyRequests: 0,
    handshakesStarted: 0,
    handshakesCompleted: 0,
    handshakesResumed: 0,
    handshakesFailed: 0,
    handshakesRefused: 0,
    retransmissions: 0,
    droppedDatagrams: 0,
    droppedReplays: 0,
    droppedBadMac: 0,
    droppedOther: 0,
    sendsWithoutSession: 0,
  };
  private readonly udp: UdpTransport;
  private readonly credentials: HandshakeCredentials;
  private readonly connections = new Map<string, DtlsConnection>();
  /** Sessions by the hex of the Connection ID we gave them. */
  private readonly connectionsById = new Map<string, DtlsConnection>();
  private readonly offerConnectionIds: boolean;
  private readonly sessionCache: SessionCache | undefined;
  private readonly handshakesPerAddress = new Map<string, number>();
  private readonly cookies = new CookieJar();
  private readonly host: ConnectionHost;
  private readonly maxHandshakesPerAddress: number;
  private readonly maxSessions: number;
  private readonly sessionIdleTimeoutMs: number;
  private listener: ((data: Buffer, peer: Peer) => void) | undefined;
  private established = 0;
  private sweepTimer: NodeJS.Timeout | undefined;
  private closing = false;

  constructor(options: DtlsServerOptions = {}) {
    super();
    this.onError = options.onError ?? noop;
    this.credentials = loadCredentials(options);
    this.maxHandshakesPerAddress = options.maxHandshakesPerAddress ?? DEFAULTS.maxHandshakesPerAddress;
    this.maxSessions = options.maxSessions ?? DEFAULTS.maxSessions;
    this.sessionIdleTimeoutMs = options.sessionIdleTimeoutMs ?? DEFAULTS.sessionIdleTimeoutMs;
    this.offerConnectionIds = options.connectionId ?? true;
    this.sessionCache =
      (options.sessionResumption ?? true) ? new SessionCache(this.maxSessions, this.sessionIdleTimeoutMs) : undefined;
    this.udp = new UdpTransport({
      address: options.address,
      port: options.port ?? DEFAULTS.port,
      recvBufferSize: options.recvBufferSize,
      onError: (err) => this.reportError(err),
    });
    this.udp.onDatagram(this.onCipherDatagram);
    this.host = this.createHost(options.handshakeTimeoutMs ?? DEFAULTS.handshakeTimeoutMs);
  }

  onDatagram(listener: (data: Buffer, peer: Peer) => void): void {
    this.listener = listener;
  }

  async start(): Promise<PeerAddress> {
    const bound = await this.udp.start();
    if (this.sweepTimer === undefined && !this.closing) {
      const interval = Math.min(MAX_SWEEP_INTERVAL_MS, Math.max(10, this.sessionIdleTimeoutMs / 4));
      this.sweepTimer = setInterval(() => this.sweepIdleSessions(), interval);
      this.sweepTimer.unref();
    }
    return bound;
  }

  localAddress(): PeerAddress | undefined {
    return this.udp.localAddress();
  }

  /** Encrypts `data` in the peer's session; without an established session it is dropped and counted. */
  send(data: Buffer, peer: PeerAddress): void {
    const connection = this.connections.get(toPeer(peer).key);
    if (connection === undefined || !connection.send(data)) this.stats.sendsWithoutSession++;
  }

  hasSession(peer: PeerAddress): boolean {
    return this.connections.get(toPeer(peer).key)?.state === 'established';
  }

  get sessionCount(): number {
    return this.established;
  }

  /** Handshakes past the cookie exchange and not finished yet. */
  get handshakeCount(): number {
    return this.connections.size - this.established;
  }

  /** Sends close_notify and forgets the session (it cannot be resumed either); false when there was none. */
  closeSession(peer: PeerAddress): boolean {
    const connection = this.connections.get(toPeer(peer).key);
    if (connection === undefined || connection.state !== 'established') return false;
    connection.invalidated = true;
    connection.close('closed locally', true);
    return true;
  }

  /** Sends close_notify to every session, drops all state and timers, closes the socket. */
  async close(): Promise<void> {
    this.closing = true;
    if (this.sweepTimer !== undefined) clearInterval(this.sweepTimer);
    this.sweepTimer = undefined;
    for (const connection of [...this.connections.values()]) {
      if (connection.state === 'established') connection.close('transport closed', true);
      else connection.fail(undefined, 'transport closed');
    }
    await this.udp.close();
  }

  private createHost(handshakeTimeoutMs: number): ConnectionHost {
    return {
      pmtu: HANDSHAKE_PMTU,
      handshakeTimeoutMs,
      sendDatagram: (datagram, peer) => this.udp.send(datagram, peer),
      deliver: (data, peer) => {
        try {
          this.listener?.(data, peer);
        } catch (err) {
          this.reportError(err);
        }
      },
      established: (connection) => {
        this.releaseHandshakeSlot(connection);
        this.established++;
        this.stats.handshakesCompleted++;
        if (connection.resumed) this.stats.handshakesResumed++;
        if (connection.sessionId !== undefined && connection.resumption !== undefined) {
          this.sessionCache?.set(connection.sessionId, connection.resumption);
        }
        this.safeEmit(() => this.emit('session', connection.peer));
      },
      failed: (connection, reason) => {
        this.releaseHandshakeSlot(connection);
        // A failed resumption ends the session it tried to resume (RFC 5246 §7.2.2).
        if (connection.resumed && connection.sessionId !== undefined) this.sessionCache?.delete(connection.sessionId);
        this.forget(connection);
        this.stats.handshakesFailed++;
        this.safeEmit(() => this.emit('handshakeFailed', connection.peer, reason));
      },
      closed: (connection, reason) => {
        this.established--;
        if (connection.invalidated && connection.sessionId !== undefined)
          this.sessionCache?.delete(connection.sessionId);
        this.forget(connection);
        this.safeEmit(() => this.emit('sessionClosed', connection.peer, reason));
      },
      moved: (connection, previous) => {
        const occupant = this.connections.get(connection.peer.key);
        // Whatever had the new address before is stale: the NAT now maps it to this client.
        if (occupant !== undefined && occupant !== connection) {
          if (occupant.state === 'established') occupant.close('address taken over by a moved session', false);
          else occupant.fail(undefined, 'address taken over by a moved session');
        }
        if (this.connections.get(previous.key) === connection) this.connections.delete(previous.key);
        this.connections.set(connection.peer.key, connection);
        this.safeEmit(() => this.emit('peerMoved', previous, connection.peer));
      },
      dropped: (why) => {
        if (why === 'replay') this.stats.droppedReplays++;
        else if (why === 'bad-mac') this.stats.droppedBadMac++;
        else this.stats.droppedOther++;
      },
      retransmitted: () => {
        this.stats.retransmissions++;
      },
    };
  }

  private readonly onCipherDatagram = (datagram: Buffer, peer: Peer): void => {
    if (this.closing) return;
    try {
      this.handleDatagram(datagram, peer);
    } catch (err) {
      this.reportError(err);
    }
  };

  private handleDatagram(datagram: Buffer, peer: Peer): void {
    const records = parseRecords(datagram, CONNECTION_ID_LENGTH);
    if (records.length === 0) {
      this.stats.droppedDatagrams++;
      return;
    }
    for (const record of records) {
      // A record with our CID finds its session whatever address it comes from.
      const connection =
        record.cid !== undefined
          ? this.connectionsById.get(record.cid.toString('hex'))
          : this.connections.get(peer.key);
      if (isClientHelloRecord(record)) {
        this.onClientHello(record, peer, connection);
      } else if (connection !== undefined) {
        connection.receive(record, peer);
      } else {
        this.stats.droppedDatagrams++;
      }
    }
  }

  /**
   * A ClientHello in epoch 0. Without a valid cookie it is answered statelessly with a
   * HelloVerifyRequest. With one, a new handshake starts; an existing session with the same
   * address and port is dropped (RFC 6347 §4.2.8: the client lost its state and proved
   * reachability with the cookie). A repeat of the ClientHello that started the association goes to
   * it (during the handshake it makes us retransmit our flight; afterwards it is ignored).
   */
  private onClientHello(record: DtlsRecord, peer: Peer, existing: DtlsConnection | undefined): void {
    let hello: ClientHello;
    let messageSeq: number;
    let body: Buffer;
    try {
      const fragments = parseHandshakeFragments(record.fragment);
      const first = fragments[0];
      // A fragmented ClientHello cannot be handled without keeping state: not supported.
      if (first.fragmentOffset !== 0 || first.fragment.length !== first.length) throw new DecodeError('fragmented');
      messageSeq = first.messageSeq;
      body = first.fragment;
      hello = parseClientHello(body);
    } catch {
      this.stats.droppedDatagrams++;
      return;
    }
    if (existing !== undefined && existing.startedBy(hello.random)) {
      existing.receive(record, peer);
      return;
    }
    if (!this.cookies.verify(peer.address, peer.port, hello)) {
      this.sendHelloVerifyRequest(record, messageSeq, this.cookies.issue(peer.address, peer.port, hello), peer);
      return;
    }
    if (existing !== undefined) {
      if (existing.state === 'established') existing.close('client started a new handshake', false);
      else existing.fail(undefined, 'superseded by a new ClientHello');
    }
    const perAddress = this.handshakesPerAddress.get(peer.address) ?? 0;
    if (perAddress >= this.maxHandshakesPerAddress || this.connections.size >= this.maxSessions) {
      this.stats.handshakesRefused++;
      return;
    }
    const helloMessage = { msgType: HandshakeType.clientHello, messageSeq, body };
    let handshake: ServerHandshake;
    try {
      handshake = new ServerHandshake(this.credentials, peer, hello, helloMessage, {
        connectionId: this.offerConnectionIds ? this.newConnectionId() : undefined,
        resumable: hello.sessionId.length > 0 ? this.sessionCache?.get(hello.sessionId) : undefined,
        issueSessionId: this.sessionCache !== undefined,
      });
    } catch (err) {
      const failure =
        err instanceof HandshakeFailure
          ? err
          : new HandshakeFailure(AlertDescription.decodeError, `bad ClientHello: ${(err as Error).message}`);
      this.udp.send(
        encodeRecord(ContentType.alert, 0, record.sequence, Buffer.from([AlertLevel.fatal, failure.alert])),
        peer,
      );
      this.stats.handshakesFailed++;
      this.safeEmit(() =>
        this.emit('handshakeFailed', { address: peer.address, port: peer.port, key: peer.key }, failure.message),
      );
      return;
    }
    const connection = new DtlsConnection(
      this.host,
      { address: peer.address, port: peer.port, key: peer.key },
      handshake,
      record.sequence,
    );
    this.connections.set(peer.key, connection);
    if (connection.connectionIds !== undefined) {
      this.connectionsById.set(connection.connectionIds.own.toString('hex'), connection);
    }
    this.handshakesPerAddress.set(peer.address, perAddress + 1);
    this.stats.handshakesStarted++;
    connection.begin();
  }

  private sendHelloVerifyRequest(record: DtlsRecord, messageSeq: number, cookie: Buffer, peer: Peer): void {
    const body = encodeHelloVerifyRequest(cookie);
    const message = encodeHandshakeFragment(HandshakeType.helloVerifyRequest, body.length, messageSeq, 0, body);
    // RFC 6347 §4.2.1: the HelloVerifyRequest reuses the ClientHello's record sequence number.
    this.udp.send(encodeRecord(ContentType.handshake, 0, record.sequence, message), peer);
    this.stats.helloVerifyRequests++;
  }

  private releaseHandshakeSlot(connection: DtlsConnection): void {
    if (!connection.countedAsHandshake) return;
    connection.countedAsHandshake = false;
    const address = connection.peer.address;
    const count = (this.handshakesPerAddress.get(address) ?? 1) - 1;
    if (count > 0) this.handshakesPerAddress.set(address, count);
    else this.handshakesPerAddress.delete(address);
  }

  private forget(connection: DtlsConnection): void {
    if (this.connections.get(connection.peer.key) === connection) this.connections.delete(connection.peer.key);
    if (connection.connectionIds !== undefined) {
      const id = connection.connectionIds.own.toString('hex');
      if (this.connectionsById.get(id) === connection) this.connectionsById.delete(id);
    }
  }

  /** A Connection ID no current session has. */
  private newConnectionId(): Buffer {
    for (;;) {
      const id = randomBytes(CONNECTION_ID_LENGTH);
      if (!this.connectionsById.has(id.toString('hex'))) return id;
    }
  }

  private sweepIdleSessions(): void {
    this.sessionCache?.sweep();
    const cutoff = Date.now() - this.sessionIdleTimeoutMs;
    for (const connection of [...this.connections.values()]) {
      if (connection.state === 'established' && connection.lastActivity < cutoff)
        connection.close('idle timeout', false);
    }
  }

  /** Runs an emit: a listener that throws is reported, never propagated into the receive path. */
  private safeEmit(emit: () => boolean): void {
    try {
      emit();
    } catch (err) {
      this.reportError(err);
    }
  }

  private reportError(err: unknown): void {
    try {
      this.onError(err instanceof Error ? err : new Error(String(err)));
    } catch {
      // an error handler that throws must not take the socket down
    }
  }
}

function isClientHelloRecord(record: DtlsRecord): boolean {
  return (
    record.epoch === 0 &&
    record.type === ContentType.handshake &&
    record.fragment.length >= HANDSHAKE_HEADER_LENGTH &&
    record.fragment[0] === HandshakeType.clientHello
  );
}

/** Loads and checks the configured credentials; throws on a misconfiguration (at construction, not per handshake). */
function loadCredentials(options: DtlsServerOptions): HandshakeCredentials {
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
  let suites: CipherSuite[];
  if (options.cipherSuites !== undefined) {
    suites = options.cipherSuites.map((name) => {
      const suite = suiteByName(name);
      if (suite === undefined) throw new Error(`unsupported cipher suite ${name}`);
      return suite;
    });
  } else {
    suites = CIPHER_SUITES.filter((suite) => (suite.keyExchange === 'psk' ? canPsk : canEcdhe));
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
