import { EventEmitter } from 'node:events';
import { randomBytes } from 'node:crypto';
import { normaliseAddress, peerKey, toPeer } from '../transport/peer';
import type { DatagramTransport, Peer, PeerAddress, SecurityIdentity } from '../transport/types';
import { UdpTransport } from '../transport/udp';
import { DecodeError } from './bytes';
import { connectionKeys, keyBlockLength } from './cipher';
import { AlertDescription, AlertLevel, ContentType, HandshakeType } from './constants';
import { DtlsConnection, type ConnectionHost } from './connection';
import { CookieJar } from './cookie';
import { DropLog, type DropReason } from './drops';
import { HandshakeFailure } from './failure';
import { HalfOpenBudget } from './half-open';
import { HANDSHAKE_HEADER_LENGTH, encodeHandshakeFragment, parseHandshakeFragments } from './handshake';
import { encodeHelloVerifyRequest, parseClientHello, type ClientHello } from './messages';
import { MAX_SEQUENCE, encodeRecord, splitRecords, type DtlsRecord } from './record';
import {
  ServerHandshake,
  credentialProblem,
  type HandshakeCredentials,
  type ResumableSession,
} from './server-handshake';
import {
  loadCredentials,
  type DtlsCloseOptions,
  type DtlsServerOptions,
  type DtlsStats,
  type DtlsTransportEvents,
} from './transport-options';
import {
  MemoryDtlsSessionStore,
  WRITE_SEQUENCE_GAP,
  type DtlsSessionStore,
  type StoredDtlsConnection,
} from './session-store';

export type { DtlsCloseOptions, DtlsServerOptions, DtlsStats, DtlsTransportEvents } from './transport-options';

/** Largest datagram we send in a handshake flight: fits the IPv6 minimum MTU (1280) with headers to spare. */
export const HANDSHAKE_PMTU = 1200;

const DEFAULTS = {
  port: 5684,
  maxHandshakesPerAddress: 16,
  maxHandshakes: 10_000,
  maxSessions: 100_000,
  sessionIdleTimeoutMs: 24 * 3600_000,
  handshakeTimeoutMs: 60_000,
};

/**
 * Length of the Connection IDs we hand out: 6 random bytes make a collision among even a million
 * sessions unlikely (and one is checked for anyway), and cost 6 bytes per record.
 */
export const CONNECTION_ID_LENGTH = 6;

/** Datagrams kept while start() adopts kept sessions from an asynchronous store. */
const MAX_EARLY_DATAGRAMS = 1024;

/** The idle sweep runs this often at most (and at least four times per idle timeout). */
const MAX_SWEEP_INTERVAL_MS = 60_000;

function noop(): void {}

/**
 * A DTLS 1.2 server as a DatagramTransport: the CoAP endpoint above it sees only decrypted
 * application data, with the peer's authenticated identity in `peer.security`.
 *
 * Events (DtlsTransportEvents): `session` (peer) when a handshake completes; `sessionClosed`
 * (peer, reason); `handshakeFailed` (peer, reason); `peerMoved` (previous, current) with CIDs.
 */
export class DtlsTransport extends EventEmitter<DtlsTransportEvents> implements DatagramTransport {
  onError: (err: Error) => void;
  private readonly drops = new DropLog((drop) => this.safeEmit(() => this.emit('recordsDropped', drop)));
  readonly stats: DtlsStats = {
    dropped: this.drops.counts,
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
  /** What close() without options does (see DtlsCloseOptions.keepSessions). */
  keepSessionsOnClose: boolean;
  private readonly udp: UdpTransport;
  private readonly credentials: HandshakeCredentials;
  private readonly connections = new Map<string, DtlsConnection>();
  /** Sessions by the hex of the Connection ID we gave them. */
  private readonly connectionsById = new Map<string, DtlsConnection>();
  private readonly offerConnectionIds: boolean;
  private readonly store: DtlsSessionStore;
  private readonly sessionResumption: boolean;
  private readonly halfOpen: HalfOpenBudget<DtlsConnection>;
  private readonly cookies = new CookieJar();
  private readonly host: ConnectionHost;
  private readonly maxSessions: number;
  private readonly sessionIdleTimeoutMs: number;
  private listener: ((data: Buffer, peer: Peer) => void) | undefined;
  private established = 0;
  private sweepTimer: NodeJS.Timeout | undefined;
  private closing = false;
  private closed: Promise<void> | undefined;
  private starting: Promise<PeerAddress> | undefined;
  /** Bound, and the kept sessions adopted: from then on close({ keepSessions }) saves what it has. */
  private running = false;
  /** Datagrams that arrive while start() adopts kept sessions (an asynchronous store) wait here. */
  private earlyDatagrams: Array<[Buffer, Peer]> | undefined;

  constructor(options: DtlsServerOptions = {}) {
    super();
    this.onError = options.onError ?? noop;
    this.credentials = loadCredentials(options);
    this.halfOpen = new HalfOpenBudget(
      options.maxHandshakesPerAddress ?? DEFAULTS.maxHandshakesPerAddress,
      options.maxHandshakes ?? DEFAULTS.maxHandshakes,
    );
    this.maxSessions = options.maxSessions ?? DEFAULTS.maxSessions;
    this.sessionIdleTimeoutMs = options.sessionIdleTimeoutMs ?? DEFAULTS.sessionIdleTimeoutMs;
    this.offerConnectionIds = options.connectionId ?? true;
    this.sessionResumption = options.sessionResumption ?? true;
    this.store = options.sessionStore ?? new MemoryDtlsSessionStore({ maxResumableSessions: this.maxSessions });
    this.keepSessionsOnClose = options.keepSessionsOnClose ?? false;
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

  /**
   * Binds, then adopts the established sessions a previous transport left in the session store
   * (close with keepSessions): those still fresh, for this port, with a suite still enabled. They
   * are established at once (hasSession() is true, no `session` event); their credentials are
   * re-checked at first use (a record from the device, or a send).
   */
  start(): Promise<PeerAddress> {
    this.starting ??= this.doStart();
    return this.starting;
  }

  private async doStart(): Promise<PeerAddress> {
    this.earlyDatagrams = [];
    let bound: PeerAddress;
    try {
      bound = await this.udp.start();
    } catch (err) {
      this.earlyDatagrams = undefined;
      this.starting = undefined;
      throw err;
    }
    if (!this.closing) {
      let kept: StoredDtlsConnection[] = [];
      try {
        kept = await this.store.takeConnections();
      } catch (err) {
        this.reportError(err);
      }
      if (!this.closing) this.adoptAll(kept, bound.port);
    }
    const early = this.earlyDatagrams;
    this.earlyDatagrams = undefined;
    if (this.closing) return bound;
    this.running = true;
    const interval = Math.min(MAX_SWEEP_INTERVAL_MS, Math.max(10, this.sessionIdleTimeoutMs / 4));
    this.sweepTimer = setInterval(() => this.sweepIdleSessions(), interval);
    this.sweepTimer.unref();
    for (const [datagram, peer] of early) this.onCipherDatagram(datagram, peer);
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

  /** The identity the established session at this address proved, if there is one. */
  sessionSecurity(peer: PeerAddress): SecurityIdentity | undefined {
    const connection = this.connections.get(toPeer(peer).key);
    return connection?.state === 'established' ? connection.peer.security : undefined;
  }

  /** Ends (close_notify, not resumable) every session whose identity `matches`: credentials revoked. */
  closeSessionsOf(matches: (security: SecurityIdentity) => boolean): number {
    let closed = 0;
    for (const connection of [...this.connections.values()]) {
      const security = connection.peer.security;
      if (connection.state !== 'established' || security === undefined || !matches(security)) continue;
      connection.invalidated = true;
      connection.close('credentials revoked', true);
      closed++;
    }
    return closed;
  }

  /** Dropped records by reason, the reasons with none left out (see DtlsStats.dropped). */
  droppedRecords(): Partial<Record<DropReason, number>> {
    return this.drops.nonZero();
  }

  get sessionCount(): number {
    return this.established;
  }

  /** Handshakes past the cookie exchange and not finished yet. */
  get handshakeCount(): number {
    return this.halfOpen.size;
  }

  /** Sends close_notify and forgets the session (it cannot be resumed either); false when there was none. */
  closeSession(peer: PeerAddress): boolean {
    const connection = this.connections.get(toPeer(peer).key);
    if (connection === undefined || connection.state !== 'established') return false;
    connection.invalidated = true;
    connection.close('closed locally', true);
    return true;
  }

  /**
   * Closes the socket, drops all state and timers. By default sends close_notify to every session;
   * with `keepSessions` (see DtlsCloseOptions) saves them in the session store instead, for the
   * next transport to adopt. Calling it again returns the first call's promise.
   */
  close(options: DtlsCloseOptions = {}): Promise<void> {
    this.closed ??= this.doClose(options.keepSessions ?? this.keepSessionsOnClose);
    return this.closed;
  }

  private async doClose(keepSessions: boolean): Promise<void> {
    // Closing while start() is still adopting: let it finish, so that what it took is saved again.
    if (this.starting !== undefined) await this.starting.catch(() => undefined);
    // A transport that never got running has nothing of its own to save, and must not overwrite
    // (or, by start() finishing later, take) what an earlier transport saved.
    const save = keepSessions && this.running;
    this.closing = true;
    if (this.sweepTimer !== undefined) clearInterval(this.sweepTimer);
    this.sweepTimer = undefined;
    const localPort = this.udp.localAddress()?.port;
    const kept: StoredDtlsConnection[] = [];
    for (const connection of [...this.connections.values()]) {
      if (connection.state !== 'established') {
        connection.fail(undefined, 'transport closed');
        continue;
      }
      const snapshot = save && localPort !== undefined ? connection.snapshot(localPort) : undefined;
      if (snapshot === undefined) {
        connection.close('transport closed', true);
        continue;
      }
      kept.push(snapshot);
      connection.abandon();
      this.forget(connection);
      this.established--;
    }
    const saved = save ? this.settle(() => this.store.saveConnections(kept)) : undefined;
    await Promise.all([saved, this.udp.close()]);
  }

  /**
   * Takes over connections a previous transport saved: each becomes an established connection
   * (same keys, CIDs, replay window; our record numbers continue WRITE_SEQUENCE_GAP further on).
   */
  private adoptAll(kept: StoredDtlsConnection[], localPort: number): void {
    const now = Date.now();
    // The most recently active first: of two for the same address or CID, that one wins.
    const candidates = Array.isArray(kept) ? [...kept].sort((a, b) => b.lastActivity - a.lastActivity) : [];
    for (const stored of candidates) {
      let connection: DtlsConnection | undefined;
      try {
        connection = this.adopt(stored, localPort, now);
      } catch (err) {
        this.reportError(err);
      }
      if (connection === undefined) {
        this.stats.keptSessionsDiscarded++;
        continue;
      }
      this.connections.set(connection.peer.key, connection);
      if (connection.connectionIds !== undefined) {
        this.connectionsById.set(connection.connectionIds.own.toString('hex'), connection);
      }
      this.established++;
      this.stats.sessionsAdopted++;
    }
  }

  /** One saved connection as a connection of ours, or undefined when it must not be adopted. */
  private adopt(stored: StoredDtlsConnection, localPort: number, now: number): DtlsConnection | undefined {
    if (stored === null || typeof stored !== 'object' || stored.version !== 1) return undefined;
    if (stored.localPort !== localPort || stored.readEpoch !== 1 || stored.writeEpoch !== 1) return undefined;
    if (!(stored.lastActivity + this.sessionIdleTimeoutMs > now)) return undefined;
    const suite = this.credentials.suites.find((candidate) => candidate.id === stored.suiteId);
    if (suite === undefined || !Buffer.isBuffer(stored.keyBlock)) return undefined;
    if (stored.keyBlock.length !== keyBlockLength(suite.cipher)) return undefined;
    if (!Number.isSafeInteger(stored.nextWriteSequence) || stored.nextWriteSequence < 0) return undefined;
    if (stored.nextWriteSequence + WRITE_SEQUENCE_GAP > MAX_SEQUENCE) return undefined;
    const { identity, credential } = stored;
    if (typeof identity?.identity !== 'string' || credential?.kind !== identity.mode) return undefined;
    if ((suite.keyExchange === 'psk') !== (identity.mode === 'psk')) return undefined;
    const cids = stored.connectionIds;
    if (cids !== undefined) {
      if (!Buffer.isBuffer(cids.own) || !Buffer.isBuffer(cids.peer) || cids.own.length !== CONNECTION_ID_LENGTH) {
        return undefined;
      }
      if (this.connectionsById.has(cids.own.toString('hex'))) return undefined;
    }
    const address = normaliseAddress(stored.address);
    const peer: Peer = { address, port: stored.port, key: peerKey(address, stored.port) };
    if (this.connections.has(peer.key) || this.established >= this.maxSessions) return undefined;
    const keys = connectionKeys(suite.cipher, stored.keyBlock);
    return new DtlsConnection(this.host, peer, undefined, 0, { stored, keys });
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
        this.halfOpen.release(connection);
        this.established++;
        this.stats.handshakesCompleted++;
        if (connection.resumed) this.stats.handshakesResumed++;
        const { sessionId, resumption } = connection;
        if (this.sessionResumption && sessionId !== undefined && resumption !== undefined) {
          const expiresAt = Date.now() + this.sessionIdleTimeoutMs;
          void this.settle(() => this.store.setResumable(sessionId, resumption, expiresAt));
        }
        this.safeEmit(() => this.emit('session', connection.peer));
      },
      failed: (connection, reason) => {
        this.halfOpen.release(connection);
        // A failed resumption ends the session it tried to resume (RFC 5246 §7.2.2).
        if (connection.resumed) this.endResumable(connection.sessionId);
        this.forget(connection);
        this.stats.handshakesFailed++;
        this.safeEmit(() => this.emit('handshakeFailed', connection.peer, reason));
      },
      closed: (connection, reason) => {
        this.established--;
        if (connection.invalidated) this.endResumable(connection.sessionId);
        if (connection.refused) this.stats.adoptedSessionsRefused++;
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
      dropped: (why, peer) => {
        if (why === 'replay') this.stats.droppedReplays++;
        else if (why === 'bad-mac') this.stats.droppedBadMac++;
        else this.stats.droppedOther++;
        this.drops.add(why, peer);
      },
      retransmitted: () => {
        this.stats.retransmissions++;
      },
      verifyAdopted: (connection) => {
        const security = connection.peer.security;
        const credential = connection.authenticatedBy;
        if (security === undefined || credential === undefined) return Promise.resolve('no credentials kept');
        return credentialProblem(this.credentials, security, credential, connection.peer);
      },
    };
  }

  private readonly onCipherDatagram = (datagram: Buffer, peer: Peer): void => {
    if (this.closing) return;
    if (this.earlyDatagrams !== undefined) {
      if (this.earlyDatagrams.length < MAX_EARLY_DATAGRAMS) this.earlyDatagrams.push([datagram, peer]);
      else this.drop('starting', peer, true);
      return;
    }
    try {
      this.handleDatagram(datagram, peer);
    } catch (err) {
      this.reportError(err);
    }
  };

  private handleDatagram(datagram: Buffer, peer: Peer): void {
    const { records, problem } = splitRecords(datagram, CONNECTION_ID_LENGTH);
    if (problem !== undefined) this.drop(problem, peer, records.length === 0);
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
        this.drop('no-session', peer, true);
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
      this.drop('bad-client-hello', peer, true);
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
    // Only established sessions can refuse a handshake; half-open ones make room (below).
    if (this.established >= this.maxSessions) {
      this.stats.handshakesRefused++;
      this.drops.add('handshake-refused', peer);
      return;
    }
    const helloMessage = { msgType: HandshakeType.clientHello, messageSeq, body };
    let handshake: ServerHandshake;
    try {
      handshake = new ServerHandshake(this.credentials, peer, hello, helloMessage, {
        connectionId: this.offerConnectionIds ? this.newConnectionId() : undefined,
        resumable:
          this.sessionResumption && hello.sessionId.length > 0 ? this.lookupResumable(hello.sessionId) : undefined,
        issueSessionId: this.sessionResumption,
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
    this.makeRoomForHandshake(peer.address);
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
    this.halfOpen.add(connection, peer.address);
    this.stats.handshakesStarted++;
    connection.begin();
  }

  /** Counts a drop by reason (and, for the older counter, as a dropped datagram). */
  private drop(reason: DropReason, peer: PeerAddress, wholeDatagram: boolean): void {
    if (wholeDatagram) this.stats.droppedDatagrams++;
    this.drops.add(reason, peer);
  }

  private sendHelloVerifyRequest(record: DtlsRecord, messageSeq: number, cookie: Buffer, peer: Peer): void {
    const body = encodeHelloVerifyRequest(cookie);
    const message = encodeHandshakeFragment(HandshakeType.helloVerifyRequest, body.length, messageSeq, 0, body);
    // RFC 6347 §4.2.1: the HelloVerifyRequest reuses the ClientHello's record sequence number.
    this.udp.send(encodeRecord(ContentType.handshake, 0, record.sequence, message), peer);
    this.stats.helloVerifyRequests++;
  }

  /** Evicts the oldest half-open handshakes of this address (or of all) until one more fits. */
  private makeRoomForHandshake(address: string): void {
    for (
      let victim = this.halfOpen.victimFor(address);
      victim !== undefined;
      victim = this.halfOpen.victimFor(address)
    ) {
      this.stats.handshakesEvicted++;
      victim.fail(undefined, 'evicted by newer handshakes (too many in progress from its address, or in all)');
      this.halfOpen.release(victim); // fail() released it already, unless it was no longer handshaking
    }
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

  /** The store's resumable session for this ID; a store that fails counts as having none. */
  private lookupResumable(id: Buffer): ResumableSession | Promise<ResumableSession | undefined> | undefined {
    try {
      const found = this.store.getResumable(Buffer.from(id));
      if (!isThenable<ResumableSession | undefined>(found)) return found;
      return Promise.resolve(found).catch((err: unknown) => {
        this.reportError(err);
        return undefined;
      });
    } catch (err) {
      this.reportError(err);
      return undefined;
    }
  }

  /** The session can no longer be resumed. */
  private endResumable(sessionId: Buffer | undefined): void {
    if (this.sessionResumption && sessionId !== undefined && sessionId.length > 0) {
      void this.settle(() => this.store.deleteResumable(sessionId));
    }
  }

  /** Runs a store call: errors, thrown or rejected, are reported, never passed on. */
  private settle(call: () => void | Promise<void>): Promise<void> | undefined {
    try {
      const result = call();
      if (!isThenable<void>(result)) return undefined;
      return Promise.resolve(result).catch((err: unknown) => this.reportError(err));
    } catch (err) {
      this.reportError(err);
      return undefined;
    }
  }

  private sweepIdleSessions(): void {
    const store = this.store;
    if (store.sweep !== undefined) void this.settle(() => store.sweep?.(Date.now()));
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

function isThenable<T>(value: unknown): value is PromiseLike<T> {
  return typeof (value as { then?: unknown } | undefined)?.then === 'function';
}

function isClientHelloRecord(record: DtlsRecord): boolean {
  return (
    record.epoch === 0 &&
    record.type === ContentType.handshake &&
    record.fragment.length >= HANDSHAKE_HEADER_LENGTH &&
    record.fragment[0] === HandshakeType.clientHello
  );
}
