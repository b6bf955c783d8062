/**
 * One peer's DTLS association, from the cookie-verified ClientHello to its end: driving the handshake
 * (reassembly, our flights), alerts, the adopted connection's credential re-check, and application data.
 */

import type { Peer } from '../transport/types';
import { DecodeError } from './bytes';
import type { ConnectionKeys } from './cipher';
import { ClientFlight } from './client-flight';
import { restoredRecordLayer, snapshotOf, type EstablishedSession } from './connection-handover';
import { AlertDescription, AlertLevel, ContentType, HandshakeType } from './constants';
import { CredentialRecheck } from './credential-recheck';
import { HandshakeFailure } from './failure';
import { FlightSender } from './flight-sender';
import { parseHandshakeFragments, type HandshakeFragment, type HandshakeMessage } from './handshake';
import { MAX_PLAINTEXT_LENGTH, decodeInnerPlaintext, type DtlsRecord } from './record';
import { RecordBacklog } from './record-backlog';
import { RecordLayer } from './record-layer';
import type { ConnectionIds, ResumableSession, ServerFlight, ServerHandshake } from './server-handshake';
import type { SessionCredential, StoredDtlsConnection } from './session-data';

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

/** A connection kept by another transport, as this one takes it over: its saved state and its keys. */
export interface AdoptedConnection {
  stored: StoredDtlsConnection;
  keys: ConnectionKeys;
}

/**
 * One peer's association, from the cookie-verified ClientHello to its end: its state, each record by
 * epoch and content type (protection and anti-replay: RecordLayer; order: RecordBacklog), the
 * handshake it drives (ClientFlight in, ServerHandshake, FlightSender out), alerts, and application
 * data once established.
 */
export class DtlsConnection {
  state: 'handshaking' | 'established' | 'closed' = 'handshaking';
  /** The peer as delivered with application data (with its security identity once established). */
  peer: Peer;
  lastActivity = Date.now();
  private handshake: ServerHandshake | undefined;
  private readonly clientFlight: ClientFlight;
  private readonly records: RecordLayer;
  private readonly flights: FlightSender;
  private handshakeTimer: NodeJS.Timeout | undefined;
  private readonly backlog: RecordBacklog;
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
  private recheck: CredentialRecheck | undefined;
  /** Adopted, and ended because its credentials no longer hold. */
  refused = false;
  /** The negotiated suite, the key block and what authenticated the client, once established. */
  private session: EstablishedSession | undefined;

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
    this.backlog = new RecordBacklog(
      (record, from) => this.process(record, from),
      () => this.state !== 'closed',
      (from) => this.host.dropped('busy', from),
    );
    if (adopted !== undefined) {
      const { stored, keys } = adopted;
      this.adopted = true;
      this.recheck = new CredentialRecheck(
        () => this.host.verifyAdopted(this),
        (problem, heldSends) => this.verified(problem, heldSends),
      );
      this.state = 'established';
      this.clientRandom = Buffer.alloc(0);
      this.connectionIds = stored.connectionIds;
      this.clientFlight = new ClientFlight(-1);
      this.records = restoredRecordLayer(stored, keys);
      this.flights = this.createFlightSender();
      this.lastActivity = stored.lastActivity;
      this.sessionId = stored.sessionId;
      this.session = { suiteId: stored.suiteId, keyBlock: stored.keyBlock, credential: stored.credential };
      this.peer.security = { mode: stored.identity.mode, identity: stored.identity.identity };
      return;
    }
    if (handshake === undefined) throw new Error('a new connection needs its handshake');
    this.adopted = false;
    this.handshake = handshake;
    this.clientRandom = Buffer.from(handshake.clientRandom); // a copy: the session must not pin the datagram
    this.connectionIds = handshake.connectionIds;
    this.clientFlight = new ClientFlight(handshake.clientHelloSeq);
    this.records = RecordLayer.forHandshake(handshake.connectionIds?.peer, helloRecordSequence);
    this.flights = this.createFlightSender();
  }

  private createFlightSender(): FlightSender {
    return new FlightSender(
      this.records,
      this.host.pmtu,
      (datagram) => this.host.sendDatagram(datagram, this.peer),
      () => this.host.retransmitted(),
    );
  }

  /** What authenticated the client (once established). */
  get authenticatedBy(): SessionCredential | undefined {
    return this.session?.credential;
  }

  /**
   * The established connection's state for another transport to adopt (undefined when there is
   * none to hand over). Buffers are copies.
   */
  snapshot(localPort: number): StoredDtlsConnection | undefined {
    if (this.state !== 'established') return undefined;
    const { peer, lastActivity, sessionId, connectionIds, session, records } = this;
    return snapshotOf(localPort, { peer, lastActivity, sessionId, connectionIds, session, records });
  }

  /** Stops everything without a word to the peer or the host (the session was handed over). */
  abandon(): void {
    this.finish();
    this.recheck?.dropHeldSends();
  }

  /**
   * Starts the handshake timer, then sends our first flight and starts its retransmission timer
   * (the handshake may first look credentials up: records arriving meanwhile wait in the backlog).
   */
  begin(): void {
    this.handshakeTimer = setTimeout(() => this.fail(undefined, 'handshake timed out'), this.host.handshakeTimeoutMs);
    this.backlog.waitFor(this.sendFirstFlight());
  }

  private async sendFirstFlight(): Promise<void> {
    const handshake = this.handshake;
    if (handshake === undefined) return;
    try {
      const flight = await handshake.start();
      if (this.state !== 'handshaking') return;
      this.resumed = handshake.resumed;
      this.flights.set(flight, handshake.keys?.server);
      this.sessionId = handshake.sessionIdSent;
      this.flights.send();
      this.flights.startTimer();
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
    this.backlog.receive(record, from);
  }

  /** Encrypts and sends application data; false when there is no established session or it is too large. */
  send(data: Buffer): boolean {
    // One byte for the inner content type when the record carries a CID.
    if (this.state !== 'established' || data.length + 1 > MAX_PLAINTEXT_LENGTH) return false;
    if (this.recheck !== undefined) return this.recheck.hold(data);
    if (this.records.exhausted) {
      this.close('record sequence numbers exhausted', true);
      return false;
    }
    this.host.sendDatagram(this.records.seal(ContentType.applicationData, 1, data), this.peer);
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
    this.flights.stopTimer();
    if (this.handshakeTimer !== undefined) clearTimeout(this.handshakeTimer);
    this.handshakeTimer = undefined;
    this.handshake = undefined;
    this.flights.clear();
    this.backlog.clear();
    this.records.release();
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
    } else if (record.epoch === 1 && this.records.readsEpoch1) {
      if (!this.records.isFresh(record.sequence)) return this.drop('replay');
      const decrypted = this.records.decrypt(record);
      if (decrypted === undefined) {
        // During the handshake this is the client's Finished under keys that do not match ours.
        if (this.state === 'handshaking' && this.handshake !== undefined) {
          this.fail(AlertDescription.decryptError, this.handshake.wrongKeyReason);
          return undefined;
        }
        return this.drop('bad-mac');
      }
      const newest = this.records.accept(record.sequence);
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
    if (this.recheck !== undefined && record.epoch === 1) {
      return this.verifyThenDispatch(this.recheck, record.epoch, type, plaintext);
    }
    return this.dispatch(record.epoch, type, plaintext);
  }

  /**
   * The outcome of an adopted connection's credential re-check: on success the sends that waited go
   * out, else the peer gets a fatal access_denied alert and the session ends (sessionClosed says why).
   */
  private verified(problem: string | undefined, heldSends: Buffer[]): boolean {
    if (this.state !== 'established') return false;
    if (problem !== undefined) {
      this.invalidated = true;
      this.refused = true;
      this.sendAlert(AlertLevel.fatal, AlertDescription.accessDenied);
      this.close(`kept session refused: ${problem}`, false);
      return false;
    }
    this.recheck = undefined;
    for (const data of heldSends) this.send(data);
    return true;
  }

  private async verifyThenDispatch(
    recheck: CredentialRecheck,
    epoch: number,
    type: number,
    plaintext: Buffer,
  ): Promise<void> {
    if (await recheck.run()) await this.dispatch(epoch, type, plaintext);
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
        this.flights.clear(); // the client has our Finished: nothing left to retransmit
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
        } else if (this.clientFlight.repeatsLast(fragment)) {
          this.flights.resend();
        }
        continue;
      }
      if (this.clientFlight.isPast(fragment)) {
        if (this.clientFlight.repeatsLast(fragment)) this.flights.resend();
        continue;
      }
      // Any part of the client's next flight means ours arrived.
      this.flights.stopTimer();
      ready.push(...this.clientFlight.add(fragment));
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
    if (!this.records.readsEpoch1 && handshake.readyForChangeCipherSpec && handshake.keys !== undefined) {
      this.records.useReadKeys(handshake.keys.client);
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
    if (flight !== undefined) this.flights.set(flight, handshake.keys.server);
    else this.flights.clear();
    this.flights.send();
    this.flights.stopTimer();
    if (this.handshakeTimer !== undefined) clearTimeout(this.handshakeTimer);
    this.handshakeTimer = undefined;
    this.clientFlight.ended();
    this.peer = { address: this.peer.address, port: this.peer.port, key: this.peer.key };
    const security = handshake.securityIdentity;
    if (security !== undefined) this.peer.security = security;
    this.resumption = handshake.resumption()?.session;
    this.session = {
      suiteId: handshake.suite.id,
      keyBlock: handshake.keyBlock,
      credential: handshake.authenticatedBy,
    };
    this.handshake = undefined;
    this.state = 'established';
    this.host.established(this);
  }

  private sendAlert(level: number, description: number): void {
    this.host.sendDatagram(
      this.records.seal(ContentType.alert, this.records.writeEpoch, Buffer.from([level, description])),
      this.peer,
    );
  }
}
