/**
 * The DTLS server transport (DtlsTransport): the socket, its lifecycle (start, adopting kept
 * connections, close), the public API, and routing each record to its association or, for a
 * ClientHello, through the cookie exchange and the handshake budget to a new one.
 */

import { EventEmitter } from 'node:events';
import { toPeer } from '../transport/peer';
import type { DatagramTransport, Peer, PeerAddress, SecurityIdentity } from '../transport/types';
import { UdpTransport } from '../transport/udp';
import {
  fatalAlertRecord,
  helloVerifyRequestRecord,
  isClientHelloRecord,
  parseClientHelloRecord,
  type ClientHelloRecord,
} from './client-hello';
import { AlertDescription, HandshakeType } from './constants';
import { DtlsConnection, type ConnectionHost } from './connection';
import { DropLog, type DropReason } from './drops';
import { HandshakeFailure } from './failure';
import { HandshakeAdmission } from './handshake-admission';
import { credentialProblem, type HandshakeCredentials } from './handshake-credentials';
import { adoptable, closeAll } from './kept-connections';
import { CONNECTION_ID_LENGTH, PeerTable } from './peer-table';
import { splitRecords, type DtlsRecord } from './record';
import { ServerHandshake } from './server-handshake';
import type { StoredDtlsConnection } from './session-data';
import { MemoryDtlsSessionStore } from './session-store';
import { StoreCalls } from './store-calls';
import {
  emptyStats,
  loadCredentials,
  type DtlsCloseOptions,
  type DtlsServerOptions,
  type DtlsStats,
  type DtlsTransportEvents,
} from './transport-options';

export { CONNECTION_ID_LENGTH } from './peer-table';
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
  readonly stats: DtlsStats = emptyStats(this.drops.counts);
  /** What close() without options does (see DtlsCloseOptions.keepSessions). */
  keepSessionsOnClose: boolean;
  private readonly udp: UdpTransport;
  private readonly credentials: HandshakeCredentials;
  private readonly peers = new PeerTable();
  private readonly offerConnectionIds: boolean;
  private readonly store: StoreCalls;
  private readonly admission: HandshakeAdmission;
  private readonly host: ConnectionHost;
  private readonly maxSessions: number;
  private readonly sessionIdleTimeoutMs: number;
  private listener: ((data: Buffer, peer: Peer) => void) | undefined;
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
    this.admission = new HandshakeAdmission(
      options.maxHandshakesPerAddress ?? DEFAULTS.maxHandshakesPerAddress,
      options.maxHandshakes ?? DEFAULTS.maxHandshakes,
    );
    this.maxSessions = options.maxSessions ?? DEFAULTS.maxSessions;
    this.sessionIdleTimeoutMs = options.sessionIdleTimeoutMs ?? DEFAULTS.sessionIdleTimeoutMs;
    this.offerConnectionIds = options.connectionId ?? true;
    this.store = new StoreCalls(
      options.sessionStore ?? new MemoryDtlsSessionStore({ maxResumableSessions: this.maxSessions }),
      options.sessionResumption ?? true,
      this.sessionIdleTimeoutMs,
      (err) => this.reportError(err),
    );
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
      const kept = await this.store.takeConnections();
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
    const connection = this.peers.get(toPeer(peer).key);
    if (connection === undefined || !connection.send(data)) this.stats.sendsWithoutSession++;
  }

  hasSession(peer: PeerAddress): boolean {
    return this.peers.get(toPeer(peer).key)?.state === 'established';
  }

  /** The identity the established session at this address proved, if there is one. */
  sessionSecurity(peer: PeerAddress): SecurityIdentity | undefined {
    const connection = this.peers.get(toPeer(peer).key);
    return connection?.state === 'established' ? connection.peer.security : undefined;
  }

  /** Ends (close_notify, not resumable) every session whose identity `matches`: credentials revoked. */
  closeSessionsOf(matches: (security: SecurityIdentity) => boolean): number {
    let closed = 0;
    for (const connection of this.peers.all()) {
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
    return this.peers.sessionCount;
  }

  /** Handshakes past the cookie exchange and not finished yet. */
  get handshakeCount(): number {
    return this.admission.size;
  }

  /** Sends close_notify and forgets the session (it cannot be resumed either); false when there was none. */
  closeSession(peer: PeerAddress): boolean {
    const connection = this.peers.get(toPeer(peer).key);
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
    const kept = closeAll(this.peers, save ? this.udp.localAddress()?.port : undefined);
    const saved = save ? this.store.saveConnections(kept) : undefined;
    await Promise.all([saved, this.udp.close()]);
  }

  /**
   * Takes over connections a previous transport saved: each becomes an established connection
   * (same keys, CIDs, replay window; our record numbers continue WRITE_SEQUENCE_GAP further on).
   */
  private adoptAll(kept: StoredDtlsConnection[], localPort: number): void {
    const context = {
      localPort,
      now: Date.now(),
      sessionIdleTimeoutMs: this.sessionIdleTimeoutMs,
      suites: this.credentials.suites,
      hasId: (id: Buffer) => this.peers.hasId(id),
      addressTakenOrFull: (key: string) => this.peers.get(key) !== undefined || this.sessionsFull,
    };
    // The most recently active first: of two for the same address or CID, that one wins.
    const candidates = Array.isArray(kept) ? [...kept].sort((a, b) => b.lastActivity - a.lastActivity) : [];
    for (const stored of candidates) {
      let connection: DtlsConnection | undefined;
      try {
        const adopted = adoptable(stored, context);
        if (adopted !== undefined) connection = new DtlsConnection(this.host, adopted.peer, undefined, 0, adopted);
      } catch (err) {
        this.reportError(err);
      }
      if (connection === undefined) {
        this.stats.keptSessionsDiscarded++;
        continue;
      }
      this.peers.addEstablished(connection);
      this.stats.sessionsAdopted++;
    }
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
        this.admission.release(connection);
        this.peers.nowEstablished();
        this.stats.handshakesCompleted++;
        if (connection.resumed) this.stats.handshakesResumed++;
        this.store.keepResumable(connection.sessionId, connection.resumption);
        this.safeEmit(() => this.emit('session', connection.peer));
      },
      failed: (connection, reason) => {
        this.admission.release(connection);
        // A failed resumption ends the session it tried to resume (RFC 5246 §7.2.2).
        if (connection.resumed) this.store.endResumable(connection.sessionId);
        this.peers.forget(connection);
        this.stats.handshakesFailed++;
        this.safeEmit(() => this.emit('handshakeFailed', connection.peer, reason));
      },
      closed: (connection, reason) => {
        if (connection.invalidated) this.store.endResumable(connection.sessionId);
        if (connection.refused) this.stats.adoptedSessionsRefused++;
        this.peers.endSession(connection);
        this.safeEmit(() => this.emit('sessionClosed', connection.peer, reason));
      },
      moved: (connection, previous) => {
        this.peers.moved(connection, previous);
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
      const connection = this.peers.route(record.cid, peer);
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
    const parsed = parseClientHelloRecord(record);
    if (parsed === undefined) {
      this.drop('bad-client-hello', peer, true);
      return;
    }
    const { hello, messageSeq } = parsed;
    if (existing !== undefined && existing.startedBy(hello.random)) {
      existing.receive(record, peer);
      return;
    }
    if (!this.admission.hasCookie(peer, hello)) {
      const cookie = this.admission.cookieFor(peer, hello);
      this.udp.send(helloVerifyRequestRecord(record.sequence, messageSeq, cookie), peer);
      this.stats.helloVerifyRequests++;
      return;
    }
    if (existing !== undefined) {
      if (existing.state === 'established') existing.close('client started a new handshake', false);
      else existing.fail(undefined, 'superseded by a new ClientHello');
    }
    // Only established sessions can refuse a handshake; half-open ones make room (below).
    if (this.sessionsFull) {
      this.stats.handshakesRefused++;
      this.drops.add('handshake-refused', peer);
      return;
    }
    const handshake = this.newHandshake(parsed, record, peer);
    if (handshake === undefined) return;
    this.admission.makeRoom(peer.address, () => this.stats.handshakesEvicted++);
    const connection = new DtlsConnection(
      this.host,
      { address: peer.address, port: peer.port, key: peer.key },
      handshake,
      record.sequence,
    );
    this.peers.add(connection);
    this.admission.add(connection, peer.address);
    this.stats.handshakesStarted++;
    connection.begin();
  }

  /** The handshake a cookie-verified ClientHello starts; undefined (answered with an alert) when it cannot. */
  private newHandshake(parsed: ClientHelloRecord, record: DtlsRecord, peer: Peer): ServerHandshake | undefined {
    const { hello, messageSeq, body } = parsed;
    const helloMessage = { msgType: HandshakeType.clientHello, messageSeq, body };
    try {
      return new ServerHandshake(this.credentials, peer, hello, helloMessage, {
        connectionId: this.offerConnectionIds ? this.peers.newConnectionId() : undefined,
        resumable: this.store.lookupResumable(hello.sessionId),
        issueSessionId: this.store.sessionResumption,
      });
    } catch (err) {
      const failure =
        err instanceof HandshakeFailure
          ? err
          : new HandshakeFailure(AlertDescription.decodeError, `bad ClientHello: ${(err as Error).message}`);
      this.udp.send(fatalAlertRecord(record.sequence, failure.alert), peer);
      this.stats.handshakesFailed++;
      this.safeEmit(() =>
        this.emit('handshakeFailed', { address: peer.address, port: peer.port, key: peer.key }, failure.message),
      );
      return undefined;
    }
  }

  /** Counts a drop by reason (and, for the older counter, as a dropped datagram). */
  private drop(reason: DropReason, peer: PeerAddress, wholeDatagram: boolean): void {
    if (wholeDatagram) this.stats.droppedDatagrams++;
    this.drops.add(reason, peer);
  }

  /** No handshake can start: maxSessions established sessions in use. */
  private get sessionsFull(): boolean {
    return this.peers.sessionCount >= this.maxSessions;
  }

  private sweepIdleSessions(): void {
    this.store.sweep(Date.now());
    this.peers.closeIdle(Date.now() - this.sessionIdleTimeoutMs);
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
