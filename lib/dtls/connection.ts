import type { Peer } from '../transport/types';
import { DecodeError } from './bytes';
import type { ConnectionKeys, RecordProtection } from './cipher';
import { AlertDescription, AlertLevel, ContentType, DTLS_1_2, HandshakeType } from './constants';
import { HandshakeFailure } from './failure';
import { RetransmitTimer, packDatagrams } from './flight';
import {
  HANDSHAKE_HEADER_LENGTH,
  HandshakeReassembler,
  fragmentMessage,
  parseHandshakeFragments,
  type HandshakeFragment,
  type HandshakeMessage,
} from './handshake';
import {
  MAX_PLAINTEXT_LENGTH,
  MAX_SEQUENCE,
  RECORD_HEADER_LENGTH,
  decodeInnerPlaintext,
  encodeInnerPlaintext,
  encodeRecord,
  type DtlsRecord,
} from './record';
import { ReplayWindow } from './replay';
import type { ConnectionIds, ResumableSession, ServerFlight, ServerHandshake } from './server-handshake';
import { WRITE_SEQUENCE_GAP, type SessionCredential, type StoredDtlsConnection } from './session-store';

/** What a connection needs from the transport that owns it. */
export interface ConnectionHost {
  /** Largest datagram we send during a handshake. */
  readonly pmtu: number;
  readonly handshakeTimeoutMs: number;
  sendDatagram(datagram: Buffer, peer: Peer): void;
  deliver(data: Buffer, peer: Peer): void;
  established(connection: DtlsConnection): void;
  /** The handshake failed (the connection is finished). */
  failed(connection: DtlsConnection, reason: string): void;
  /** An established session ended. */
  closed(connection: DtlsConnection, reason: string): void;
  /** The session's records now come from another address (its `peer` is already updated). */
  moved(connection: DtlsConnection, previous: Peer): void;
  /** An adopted connection is about to be used: whether its credentials still hold (undefined) or why not. */
  verifyAdopted(connection: DtlsConnection): Promise<string | undefined>;
  /** A record from `peer` was dropped (replayed, not authentic, no keys for its epoch, unexpected, backlog full). */
  dropped(why: 'replay' | 'bad-mac' | 'epoch' | 'unexpected' | 'busy', peer: Peer): void;
  retransmitted(): void;
}

/** One entry of a flight: re-encoded (fresh sequence number) each time the flight is sent. */
interface FlightRecord {
  type: number;
  epoch: number;
  payload: Buffer;
}

/** A connection kept by another transport, as this one takes it over: its saved state and its keys. */
export interface AdoptedConnection {
  stored: StoredDtlsConnection;
  keys: ConnectionKeys;
}

/**
 * Records that arrive while a handshake message is processed asynchronously (a key lookup) wait
 * here; so do records and sends of an adopted connection while its credentials are re-checked.
 */
const MAX_BACKLOG = 32;

interface ReceivedRecord {
  record: DtlsRecord;
  /** Where the datagram came from (differs from `peer` when a record with our CID arrives from a new address). */
  from: Peer;
}

/**
 * One peer's association, from the cookie-verified ClientHello to its end: epochs and sequence
 * numbers, record protection and anti-replay, handshake reassembly, our flights and their
 * retransmission, alerts, and application data once established.
 */
export class DtlsConnection {
  state: 'handshaking' | 'established' | 'closed' = 'handshaking';
  /** The peer as delivered with application data (with its security identity once established). */
  peer: Peer;
  lastActivity = Date.now();
  private handshake: ServerHandshake | undefined;
  private readonly reassembler: HandshakeReassembler;
  private readProtection: RecordProtection | undefined;
  private writeProtection: RecordProtection | undefined;
  private writeEpoch = 0;
  /** Next record sequence number per epoch (0 and 1). */
  private readonly writeSequence: [number, number];
  private readonly replay: ReplayWindow;
  /** Our latest flight, kept to answer the client's retransmissions. */
  private flight: FlightRecord[] | undefined;
  private readonly retransmitTimer: RetransmitTimer;
  private handshakeTimer: NodeJS.Timeout | undefined;
  /** message_seq of the last message of the client's latest flight: its retransmission means ours was lost. */
  private clientFlightEndSeq: number;
  private busy = false;
  private readonly backlog: ReceivedRecord[] = [];
  private readonly clientRandom: Buffer;
  /** Negotiated Connection IDs (RFC 9146), if any. */
  readonly connectionIds: ConnectionIds | undefined;
  /** This association's session ID (issued or resumed; empty when not resumable), known once our flight is out. */
  sessionId: Buffer | undefined;
  /** Whether the handshake resumed a cached session. */
  resumed = false;
  /** Set on completion when the session can be resumed later. */
  resumption: ResumableSession | undefined;
  /** The session must not be resumed (ended by a fatal alert or closed on purpose). */
  invalidated = false;
  /** Taken over from another transport (close with keepSessions): no handshake here. */
  readonly adopted: boolean;
  /** Adopted, and its credentials not re-checked yet: the first record or send does it. */
  private unverified = false;
  /** Adopted, and ended because its credentials no longer hold. */
  refused = false;
  private verification: Promise<boolean> | undefined;
  /** Sends of an unverified adopted connection, sent once it is verified. */
  private readonly pendingSends: Buffer[] = [];
  /** The negotiated suite, the key block and what authenticated the client, once established. */
  private suiteId: number | undefined;
  private keyBlock: Buffer | undefined;
  private credential: SessionCredential | undefined;

  /**
   * A connection for a new handshake (`handshake`, and the ClientHello's record sequence number:
   * our epoch 0 numbering continues from it, see begin), or one adopted from another transport,
   * established from the start (`adopted`; the handshake arguments are then unused).
   */
  constructor(
    private readonly host: ConnectionHost,
    peer: Peer,
    handshake: ServerHandshake | undefined,
    helloRecordSequence: number,
    adopted?: AdoptedConnection,
  ) {
    this.peer = peer;
    this.retransmitTimer = new RetransmitTimer(() => this.resendFlight());
    if (adopted !== undefined) {
      const { stored, keys } = adopted;
      this.adopted = true;
      this.unverified = true;
      this.state = 'established';
      this.clientRandom = Buffer.alloc(0);
      this.connectionIds = stored.connectionIds;
      this.reassembler = new HandshakeReassembler(0);
      this.clientFlightEndSeq = -1;
      this.readProtection = keys.client;
      this.writeProtection = keys.server;
      this.writeEpoch = 1;
      // A margin past the saved high-water mark: no record number is used twice under these keys.
      this.writeSequence = [0, stored.nextWriteSequence + WRITE_SEQUENCE_GAP];
      this.replay = ReplayWindow.restore(stored.replayHighest, stored.replayBitmap);
      this.lastActivity = stored.lastActivity;
      this.sessionId = stored.sessionId;
      this.suiteId = stored.suiteId;
      this.keyBlock = stored.keyBlock;
      this.credential = stored.credential;
      this.peer.security = { mode: stored.identity.mode, identity: stored.identity.identity };
      return;
    }
    if (handshake === undefined) throw new Error('a new connection needs its handshake');
    this.adopted = false;
    this.replay = new ReplayWindow();
    this.handshake = handshake;
    this.clientRandom = Buffer.from(handshake.clientRandom); // a copy: the session must not pin the datagram
    this.connectionIds = handshake.connectionIds;
    this.reassembler = new HandshakeReassembler(handshake.clientHelloSeq + 1);
    this.clientFlightEndSeq = handshake.clientHelloSeq;
    // The stateless HelloVerifyRequest reused the first ClientHello's record number; starting
    // from the second ClientHello's keeps ours increasing for clients that check replay in epoch 0.
    this.writeSequence = [helloRecordSequence, 0];
  }

  /** What authenticated the client (once established). */
  get authenticatedBy(): SessionCredential | undefined {
    return this.credential;
  }

  /**
   * The established connection's state for another transport to adopt (undefined when there is
   * none to hand over). Buffers are copies.
   */
  snapshot(localPort: number): StoredDtlsConnection | undefined {
    const { keyBlock, credential, suiteId } = this;
    const security = this.peer.security;
    if (this.state !== 'established' || keyBlock === undefined || credential === undefined) return undefined;
    if (suiteId === undefined || security === undefined || this.writeEpoch !== 1) return undefined;
    const replay = this.replay.save();
    const stored: StoredDtlsConnection = {
      version: 1,
      localPort,
      address: this.peer.address,
      port: this.peer.port,
      identity: { mode: security.mode, identity: security.identity },
      credential: copyCredential(credential),
      suiteId,
      keyBlock: Buffer.from(keyBlock),
      readEpoch: 1,
      writeEpoch: this.writeEpoch,
      nextWriteSequence: this.writeSequence[1],
      replayHighest: replay.highest,
      replayBitmap: replay.bitmap,
      lastActivity: this.lastActivity,
    };
    if (this.sessionId !== undefined && this.sessionId.length > 0) stored.sessionId = Buffer.from(this.sessionId);
    if (this.connectionIds !== undefined) {
      stored.connectionIds = { own: Buffer.from(this.connectionIds.own), peer: Buffer.from(this.connectionIds.peer) };
    }
    return stored;
  }

  /** Stops everything without a word to the peer or the host (the session was handed over). */
  abandon(): void {
    this.finish();
    this.pendingSends.length = 0;
  }

  /**
   * Starts the handshake timer, then sends our first flight and starts its retransmission timer
   * (the handshake may first look credentials up: records arriving meanwhile wait in the backlog).
   */
  begin(): void {
    this.handshakeTimer = setTimeout(() => this.fail(undefined, 'handshake timed out'), this.host.handshakeTimeoutMs);
    this.waitFor(this.sendFirstFlight());
  }

  private async sendFirstFlight(): Promise<void> {
    const handshake = this.handshake;
    if (handshake === undefined) return;
    try {
      const flight = await handshake.start();
      if (this.state !== 'handshaking') return;
      this.resumed = handshake.resumed;
      this.flight = this.flightRecordsFor(flight, handshake);
      this.sessionId = handshake.sessionIdSent;
      this.sendFlight();
      this.retransmitTimer.start();
    } catch (err) {
      this.failWith(err);
    }
  }

  /**
   * Whether this association was started by the ClientHello with this random: a retransmitted (or
   * late duplicate) ClientHello, which must neither restart the handshake nor end the session.
   */
  startedBy(clientRandom: Buffer): boolean {
    return this.clientRandom.equals(clientRandom);
  }

  receive(record: DtlsRecord, from: Peer): void {
    if (this.state === 'closed') return;
    if (this.busy) {
      if (this.backlog.length < MAX_BACKLOG) this.backlog.push({ record, from });
      else this.host.dropped('busy', from);
      return;
    }
    const pending = this.process(record, from);
    if (pending !== undefined) this.waitFor(pending);
  }

  /** Encrypts and sends application data; false when there is no established session or it is too large. */
  send(data: Buffer): boolean {
    // One byte for the inner content type when the record carries a CID.
    if (this.state !== 'established' || data.length + 1 > MAX_PLAINTEXT_LENGTH) return false;
    if (this.unverified) {
      if (this.pendingSends.length >= MAX_BACKLOG) return false;
      this.pendingSends.push(data);
      void this.verify();
      return true;
    }
    if (this.writeSequence[1] > MAX_SEQUENCE) {
      this.close('record sequence numbers exhausted', true);
      return false;
    }
    this.host.sendDatagram(this.encodeRecord(ContentType.applicationData, 1, data), this.peer);
    return true;
  }

  /** Ends an established session (with close_notify when asked) and reports it. */
  close(reason: string, notify: boolean): void {
    if (this.state !== 'established') return;
    if (notify) this.sendAlert(AlertLevel.warning, AlertDescription.closeNotify);
    this.finish();
    this.host.closed(this, reason);
  }

  /** Fails the handshake: sends the alert (if any), stops everything, reports. */
  fail(alert: number | undefined, reason: string): void {
    if (this.state !== 'handshaking') return;
    if (alert !== undefined) this.sendAlert(AlertLevel.fatal, alert);
    this.finish();
    this.host.failed(this, reason);
  }

  /** Stops timers and drops state without telling anyone (the caller reports). */
  private finish(): void {
    this.state = 'closed';
    this.retransmitTimer.stop();
    if (this.handshakeTimer !== undefined) clearTimeout(this.handshakeTimer);
    this.handshakeTimer = undefined;
    this.handshake = undefined;
    this.flight = undefined;
    this.backlog.length = 0;
  }

  private waitFor(pending: Promise<void>): void {
    this.busy = true;
    pending.then(
      () => this.drainBacklog(),
      () => this.drainBacklog(),
    );
  }

  private drainBacklog(): void {
    this.busy = false;
    while (this.backlog.length > 0 && this.state !== 'closed') {
      const { record, from } = this.backlog.shift() as ReceivedRecord;
      const pending = this.process(record, from);
      if (pending !== undefined) {
        this.waitFor(pending);
        return;
      }
    }
  }

  /** Handles one record; returns a promise while handshake messages are being processed. */
  private process(record: DtlsRecord, from: Peer): Promise<void> | undefined {
    let plaintext: Buffer;
    let type = record.type;
    if (record.epoch === 0) {
      // Epoch 0 is unauthenticated: once established, only handshake retransmissions are looked at.
      if (type === ContentType.applicationData || type === ContentType.tls12Cid) return this.drop('unexpected');
      if (this.state === 'established' && type !== ContentType.handshake) return this.drop('unexpected');
      plaintext = record.fragment;
    } else if (record.epoch === 1 && this.readProtection !== undefined) {
      if (!this.replay.isFresh(record.sequence)) return this.drop('replay');
      const decrypted = this.readProtection.decrypt(record, record.fragment);
      if (decrypted === undefined) {
        // During the handshake this is the client's Finished under keys that do not match ours.
        if (this.state === 'handshaking' && this.handshake !== undefined) {
          this.fail(AlertDescription.decryptError, this.handshake.wrongKeyReason);
          return undefined;
        }
        return this.drop('bad-mac');
      }
      const newest = this.replay.isNewest(record.sequence);
      this.replay.markSeen(record.sequence);
      plaintext = decrypted;
      if (type === ContentType.tls12Cid) {
        const inner = decodeInnerPlaintext(decrypted);
        if (inner === undefined) return this.drop('unexpected');
        type = inner.type;
        plaintext = inner.content;
        // RFC 9146 §6: only an authentic record newer than all before it may move the peer.
        if (from.key !== this.peer.key && newest && this.state === 'established') this.moveTo(from);
      }
    } else {
      return this.drop('epoch');
    }
    this.lastActivity = Date.now();
    if (this.unverified && record.epoch === 1) return this.verifyThenDispatch(record.epoch, type, plaintext);
    return this.dispatch(record.epoch, type, plaintext);
  }

  /**
   * Re-checks an adopted connection's credentials (once; every caller shares the outcome): on
   * success the sends that waited go out, else the peer gets a fatal access_denied alert and the
   * session ends (sessionClosed says why).
   */
  private verify(): Promise<boolean> {
    this.verification ??= this.host.verifyAdopted(this).then(
      (problem) => this.verified(problem),
      (err: unknown) => this.verified(`credential check failed: ${String(err)}`),
    );
    return this.verification;
  }

  private verified(problem: string | undefined): boolean {
    if (this.state !== 'established') return false;
    if (problem !== undefined) {
      this.invalidated = true;
      this.refused = true;
      this.pendingSends.length = 0;
      this.sendAlert(AlertLevel.fatal, AlertDescription.accessDenied);
      this.close(`kept session refused: ${problem}`, false);
      return false;
    }
    this.unverified = false;
    for (const data of this.pendingSends.splice(0)) this.send(data);
    return true;
  }

  private async verifyThenDispatch(epoch: number, type: number, plaintext: Buffer): Promise<void> {
    if (await this.verify()) await this.dispatch(epoch, type, plaintext);
  }

  /** An authentic record's content, by its (inner) type. */
  private dispatch(epoch: number, type: number, plaintext: Buffer): Promise<void> | undefined {
    if (this.state === 'closed') return undefined;
    switch (type) {
      case ContentType.handshake:
        return this.onHandshakeRecord(epoch, plaintext);
      case ContentType.changeCipherSpec:
        this.onChangeCipherSpec(plaintext);
        return undefined;
      case ContentType.alert:
        this.onAlert(plaintext);
        return undefined;
      case ContentType.applicationData:
        if (this.state !== 'established') return this.drop('unexpected');
        this.flight = undefined; // the client has our Finished: nothing left to retransmit
        this.host.deliver(plaintext, this.peer);
        return undefined;
      default:
        return this.drop('unexpected');
    }
  }

  private moveTo(from: Peer): void {
    const previous = this.peer;
    this.peer = { address: from.address, port: from.port, key: from.key };
    if (previous.security !== undefined) this.peer.security = previous.security;
    this.host.moved(this, previous);
  }

  private drop(why: 'replay' | 'bad-mac' | 'epoch' | 'unexpected'): undefined {
    this.host.dropped(why, this.peer);
    return undefined;
  }

  private onHandshakeRecord(epoch: number, plaintext: Buffer): Promise<void> | undefined {
    let fragments: HandshakeFragment[];
    try {
      fragments = parseHandshakeFragments(plaintext);
    } catch {
      if (this.state === 'handshaking') this.fail(AlertDescription.decodeError, 'malformed handshake record');
      return undefined;
    }
    const ready: HandshakeMessage[] = [];
    for (const fragment of fragments) {
      if (this.state === 'established') {
        if (epoch === 1 && fragment.msgType === HandshakeType.clientHello) {
          this.sendAlert(AlertLevel.warning, AlertDescription.noRenegotiation);
        } else if (fragment.messageSeq === this.clientFlightEndSeq && fragment.fragmentOffset === 0) {
          this.resendFlight();
        }
        continue;
      }
      if (fragment.messageSeq < this.reassembler.nextSeq) {
        if (fragment.messageSeq === this.clientFlightEndSeq && fragment.fragmentOffset === 0) this.resendFlight();
        continue;
      }
      // Any part of the client's next flight means ours arrived.
      this.retransmitTimer.stop();
      ready.push(...this.reassembler.add(fragment));
    }
    return ready.length > 0 ? this.processMessages(ready) : undefined;
  }

  private async processMessages(messages: HandshakeMessage[]): Promise<void> {
    for (const message of messages) {
      const handshake = this.handshake;
      if (this.state !== 'handshaking' || handshake === undefined) return;
      try {
        const outcome = await handshake.receive(message);
        if (outcome !== undefined) this.complete(handshake, outcome.flight);
      } catch (err) {
        this.failWith(err);
      }
    }
  }

  private failWith(err: unknown): void {
    if (err instanceof HandshakeFailure) this.fail(err.alert, err.message);
    else if (err instanceof DecodeError) this.fail(AlertDescription.decodeError, err.message);
    else this.fail(AlertDescription.internalError, `internal error: ${String(err)}`);
  }

  private onChangeCipherSpec(plaintext: Buffer): void {
    const handshake = this.handshake;
    if (this.state !== 'handshaking' || handshake === undefined) return; // a retransmitted flight
    if (plaintext.length !== 1 || plaintext[0] !== 1) {
      this.fail(AlertDescription.decodeError, 'malformed ChangeCipherSpec');
      return;
    }
    // Before the key exchange is processed (its record was lost) it is dropped: the client resends its flight.
    if (this.readProtection === undefined && handshake.readyForChangeCipherSpec && handshake.keys !== undefined) {
      this.readProtection = handshake.keys.client;
    }
  }

  private onAlert(plaintext: Buffer): void {
    if (plaintext.length !== 2) return;
    const [level, description] = plaintext;
    if (description === AlertDescription.closeNotify) {
      if (this.state === 'established') this.close('closed by peer (close_notify)', true);
      else this.fail(undefined, 'client closed the connection during the handshake');
    } else if (level === AlertLevel.fatal) {
      const reason = `fatal alert ${description} from client`;
      this.invalidated = true; // RFC 5246 §7.2.2: a session ended by a fatal alert is not resumed
      if (this.state === 'established') this.close(reason, false);
      else this.fail(undefined, reason);
    }
  }

  /** The client's Finished verified: sends our last flight (if the handshake has one) and goes live. */
  private complete(handshake: ServerHandshake, flight: ServerFlight | undefined): void {
    if (handshake.keys === undefined) {
      this.fail(AlertDescription.internalError, 'handshake finished without keys');
      return;
    }
    // Without a last flight of ours (a resumption), the client's Finished shows ours arrived.
    this.flight = flight !== undefined ? this.flightRecordsFor(flight, handshake) : undefined;
    this.sendFlight();
    this.retransmitTimer.stop();
    if (this.handshakeTimer !== undefined) clearTimeout(this.handshakeTimer);
    this.handshakeTimer = undefined;
    this.clientFlightEndSeq = this.reassembler.nextSeq - 1;
    this.peer = { address: this.peer.address, port: this.peer.port, key: this.peer.key };
    const security = handshake.securityIdentity;
    if (security !== undefined) this.peer.security = security;
    this.resumption = handshake.resumption()?.session;
    this.suiteId = handshake.suite.id;
    this.keyBlock = handshake.keyBlock;
    this.credential = handshake.authenticatedBy;
    this.handshake = undefined;
    this.state = 'established';
    this.host.established(this);
  }

  /** A flight as records: the clear part, then ChangeCipherSpec and the part under the new keys. */
  private flightRecordsFor(flight: ServerFlight, handshake: ServerHandshake): FlightRecord[] {
    const records = this.flightRecords(flight.plain, 0);
    if (flight.encrypted.length > 0) {
      this.writeProtection = handshake.keys?.server;
      this.writeEpoch = 1;
      records.push({ type: ContentType.changeCipherSpec, epoch: 0, payload: Buffer.from([1]) });
      records.push(...this.flightRecords(flight.encrypted, 1));
    }
    return records;
  }

  /** Handshake messages as flight records, fragmented to fit the PMTU under the epoch's protection. */
  private flightRecords(messages: HandshakeMessage[], epoch: number): FlightRecord[] {
    const cidOverhead = this.connectionIds !== undefined ? this.connectionIds.peer.length + 1 : 0;
    const overhead = epoch === 0 ? 0 : (this.writeProtection?.overhead ?? 0) + cidOverhead;
    const maxBody = this.host.pmtu - RECORD_HEADER_LENGTH - HANDSHAKE_HEADER_LENGTH - overhead;
    return messages.flatMap((message) =>
      fragmentMessage(message, maxBody).map((payload) => ({ type: ContentType.handshake, epoch, payload })),
    );
  }

  private sendFlight(): void {
    const flight = this.flight;
    if (flight === undefined) return;
    const records = flight.map((entry) => this.encodeRecord(entry.type, entry.epoch, entry.payload));
    for (const datagram of packDatagrams(records, this.host.pmtu)) this.host.sendDatagram(datagram, this.peer);
  }

  private resendFlight(): void {
    if (this.flight === undefined) return;
    this.host.retransmitted();
    this.sendFlight();
  }

  private sendAlert(level: number, description: number): void {
    this.host.sendDatagram(
      this.encodeRecord(ContentType.alert, this.writeEpoch, Buffer.from([level, description])),
      this.peer,
    );
  }

  private encodeRecord(type: number, epoch: number, payload: Buffer): Buffer {
    const sequence = this.writeSequence[epoch]++;
    if (epoch === 0) return encodeRecord(type, 0, sequence, payload);
    const protection = this.writeProtection;
    if (protection === undefined) throw new Error('no keys for epoch 1');
    const cid = this.connectionIds?.peer;
    if (cid !== undefined && cid.length > 0) {
      const context = { type: ContentType.tls12Cid, version: DTLS_1_2, epoch, sequence, cid };
      const fragment = protection.encrypt(context, encodeInnerPlaintext(type, payload));
      return encodeRecord(ContentType.tls12Cid, epoch, sequence, fragment, cid);
    }
    const fragment = protection.encrypt({ type, version: DTLS_1_2, epoch, sequence }, payload);
    return encodeRecord(type, epoch, sequence, fragment);
  }
}

function copyCredential(credential: SessionCredential): SessionCredential {
  switch (credential.kind) {
    case 'psk':
      return { kind: 'psk', salt: Buffer.from(credential.salt), fingerprint: Buffer.from(credential.fingerprint) };
    case 'rpk':
      return { kind: 'rpk', spki: Buffer.from(credential.spki) };
    case 'x509':
      return { kind: 'x509', chain: credential.chain.map((der) => Buffer.from(der)) };
  }
}
