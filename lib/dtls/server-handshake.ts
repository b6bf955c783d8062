/**
 * The server side of one DTLS 1.2 handshake (full or abbreviated), at the level of whole handshake
 * messages: our flights, the client's flight in order, the transcript and the key derivation.
 */

import { randomBytes, timingSafeEqual } from 'node:crypto';
import type { Peer, SecurityIdentity } from '../transport/types';
import { ByteReader, DecodeError, uint8, vector } from './bytes';
import { connectionKeys, keyBlockLength, type ConnectionKeys } from './cipher';
import {
  AlertDescription,
  DTLS_1_2,
  EC_POINT_FORMAT_UNCOMPRESSED,
  EMPTY_RENEGOTIATION_INFO_SCSV,
  ExtensionType,
  HandshakeType,
} from './constants';
import { EcdheKeyExchange } from './ecdhe-key-exchange';
import { HandshakeFailure } from './failure';
import { transcriptEntry, type HandshakeMessage } from './handshake';
import { credentialProblem, type HandshakeCredentials } from './handshake-credentials';
import { encodeCertificateRequest, encodeServerHello, type ClientHello } from './messages';
import { certificateTypeCode, negotiate, type Negotiated } from './negotiation';
import { extendedMasterSecret, keyBlock, masterSecret, sha256, verifyData } from './prf';
import { pskClientKeyExchange } from './psk-key-exchange';
import type { SessionCredential, StoredDtlsSession } from './session-data';
import type { CipherSuite } from './suites';

export type { HandshakeCredentials } from './handshake-credentials';

/** The Connection IDs of a session (RFC 9146): ours is on the records the client sends, the client's on ours. */
export interface ConnectionIds {
  own: Buffer;
  /** Empty when the client wants none on our records (it still puts ours on its records). */
  peer: Buffer;
}

/**
 * What resuming a session (RFC 5246 §7.3, abbreviated handshake) needs: its secrets and suite, who
 * the client is, and what authenticated it, to re-check against the credentials of the day.
 */
export type ResumableSession = StoredDtlsSession;

/** One of our flights: messages in the clear, then (if any) ChangeCipherSpec and messages under the new keys. */
export interface ServerFlight {
  plain: HandshakeMessage[];
  encrypted: HandshakeMessage[];
}

export interface HandshakeOptions {
  /** The CID to give the client if it supports them (undefined: do not negotiate CIDs). */
  connectionId?: Buffer;
  /** The cached session the ClientHello's session_id names, if any (a store may answer with a promise). */
  resumable?: ResumableSession | Promise<ResumableSession | undefined>;
  /** Give full handshakes a session ID so that clients can resume them. */
  issueSessionId?: boolean;
}

/** The client's flight after our ServerHelloDone, by key exchange (Finished follows ChangeCipherSpec). */
const CLIENT_FLIGHT: Record<CipherSuite['keyExchange'], number[]> = {
  psk: [HandshakeType.clientKeyExchange, HandshakeType.finished],
  ecdhe_ecdsa: [
    HandshakeType.certificate,
    HandshakeType.clientKeyExchange,
    HandshakeType.certificateVerify,
    HandshakeType.finished,
  ],
};

/**
 * The server side of one DTLS 1.2 handshake, full or abbreviated (resumption), from a
 * cookie-verified ClientHello to both Finished messages, at the level of whole handshake messages
 * (records, epochs, fragmentation and retransmission are the connection's business).
 *
 * An unknown PSK identity is not reported to the client as such (RFC 4279 §2 allows either): the
 * handshake goes on with a random key, so the client sees exactly what a wrong key gives, a
 * decrypt_error when its Finished does not authenticate. That keeps identities from being probed
 * one alert at a time; the reason we report locally still names the identity.
 */
export class ServerHandshake {
  /** The keys of epoch 1, once the key exchange is done. */
  keys: ConnectionKeys | undefined;
  /** message_seq of the client's first handshake message in this handshake (its ClientHello). */
  readonly clientHelloSeq: number;
  /** Set when the client asked for Connection IDs and we offered one. */
  readonly connectionIds: ConnectionIds | undefined;
  private readonly serverRandom = randomBytes(32);
  private readonly transcript: Buffer[] = [];
  private negotiated: Negotiated;
  /** Our session_id: new for a full handshake (or empty), the client's for a resumption. */
  private sessionId: Buffer = Buffer.alloc(0);
  private abbreviated = false;
  private readonly resumable: ResumableSession | Promise<ResumableSession | undefined> | undefined;
  private readonly issueSessionId: boolean;
  /** What authenticated the client, kept for resumption. */
  private credential: SessionCredential | undefined;
  /** The key block behind `keys` (kept so that an established connection can be handed over). */
  keyBlock: Buffer | undefined;
  private readonly extendedMasterSecret: boolean;
  private readonly secureRenegotiation: boolean;
  private nextServerSeq: number;
  /** How many messages of the client's flight (CLIENT_FLIGHT) have been processed. */
  private clientFlightIndex = 0;
  /** The ECDHE_ECDSA exchange (unused with a PSK suite). */
  private readonly ecdhe: EcdheKeyExchange;
  private master: Buffer | undefined;
  private identity: SecurityIdentity | undefined;
  private unknownPskIdentity: string | undefined;

  constructor(
    private readonly credentials: HandshakeCredentials,
    private readonly peer: Peer,
    private readonly hello: ClientHello,
    helloMessage: HandshakeMessage,
    options: HandshakeOptions = {},
  ) {
    // DTLS versions count down: 1.2 is 0xfefd, 1.0 is 0xfeff.
    if (hello.clientVersion > DTLS_1_2) {
      throw new HandshakeFailure(AlertDescription.protocolVersion, 'client does not offer DTLS 1.2');
    }
    if (!hello.compressionMethods.includes(0)) {
      throw new HandshakeFailure(AlertDescription.handshakeFailure, 'client does not offer null compression');
    }
    const renegotiationInfo = hello.extensions.get(ExtensionType.renegotiationInfo);
    if (renegotiationInfo !== undefined && !(renegotiationInfo.length === 1 && renegotiationInfo[0] === 0)) {
      // RFC 5746 §3.6: an initial handshake must carry an empty renegotiated_connection.
      throw new HandshakeFailure(
        AlertDescription.handshakeFailure,
        'non-empty renegotiation_info in initial handshake',
      );
    }
    this.secureRenegotiation =
      renegotiationInfo !== undefined || hello.cipherSuites.includes(EMPTY_RENEGOTIATION_INFO_SCSV);
    this.extendedMasterSecret = hello.extensions.has(ExtensionType.extendedMasterSecret);
    const peerConnectionId = hello.extensions.get(ExtensionType.connectionId);
    const ownConnectionId = options.connectionId;
    if (peerConnectionId !== undefined && ownConnectionId !== undefined) {
      const reader = new ByteReader(peerConnectionId);
      const clientCid = reader.vector(1);
      reader.end('connection_id extension');
      // Copies: what a session keeps must not pin the datagram it was sliced from.
      this.connectionIds = { own: ownConnectionId, peer: Buffer.from(clientCid) };
    }
    this.negotiated = negotiate(hello, credentials);
    this.ecdhe = new EcdheKeyExchange(credentials, this.negotiated);
    this.resumable = options.resumable;
    this.issueSessionId = options.issueSessionId ?? false;
    this.clientHelloSeq = helloMessage.messageSeq;
    // Our message_seq continues from the client's (RFC 6347 §4.2.2): the HelloVerifyRequest we sent
    // statelessly used the number before.
    this.nextServerSeq = helloMessage.messageSeq;
    this.transcript.push(transcriptEntry(helloMessage));
  }

  get clientRandom(): Buffer {
    return this.hello.random;
  }

  get suite(): CipherSuite {
    return this.negotiated.suite;
  }

  /** The session_id in our ServerHello (after start). */
  get sessionIdSent(): Buffer {
    return this.sessionId;
  }

  /** Whether this is an abbreviated handshake resuming a cached session. */
  get resumed(): boolean {
    return this.abbreviated;
  }

  /** The client's flight: after a full handshake's ServerHelloDone, or just Finished when resuming. */
  private get clientFlight(): number[] {
    return this.abbreviated ? [HandshakeType.finished] : CLIENT_FLIGHT[this.suite.keyExchange];
  }

  /** The client flight's message type expected next (Finished last). */
  get expectedClientMessage(): number | undefined {
    return this.clientFlight[this.clientFlightIndex];
  }

  /** ChangeCipherSpec is acceptable once everything before Finished is in and the keys exist. */
  get readyForChangeCipherSpec(): boolean {
    return this.keys !== undefined && this.expectedClientMessage === HandshakeType.finished;
  }

  /** What to report when the client's Finished does not authenticate. */
  get wrongKeyReason(): string {
    if (this.unknownPskIdentity !== undefined) return `unknown PSK identity "${this.unknownPskIdentity}"`;
    if (this.abbreviated) return 'bad record MAC / Finished mismatch (resumed session)';
    return this.suite.keyExchange === 'psk' ? 'bad record MAC / wrong key' : 'bad record MAC / Finished mismatch';
  }

  /**
   * Our flight in answer to the ClientHello: ServerHello, ChangeCipherSpec and Finished when the
   * cached session it names can be resumed (its credentials are re-checked first: a key changed or
   * a CA removed since must not live on through resumption), else ServerHello ... ServerHelloDone.
   */
  async start(): Promise<ServerFlight> {
    let resumable: ResumableSession | undefined;
    try {
      resumable = await this.resumable;
    } catch {
      resumable = undefined; // a store that fails to answer: no resumption
    }
    if (
      resumable !== undefined &&
      this.canResume(resumable) &&
      (await credentialProblem(this.credentials, resumable.identity, resumable.credential, this.peer)) === undefined
    ) {
      return this.startAbbreviated(resumable);
    }
    this.sessionId = this.issueSessionId ? randomBytes(32) : Buffer.alloc(0);
    return { plain: this.fullFlight(), encrypted: [] };
  }

  /** The extensions every ServerHello of ours answers (the client offered them). */
  private commonExtensions(): Array<[number, Buffer]> {
    const extensions: Array<[number, Buffer]> = [];
    if (this.secureRenegotiation) extensions.push([ExtensionType.renegotiationInfo, uint8(0)]);
    if (this.extendedMasterSecret) extensions.push([ExtensionType.extendedMasterSecret, Buffer.alloc(0)]);
    if (this.connectionIds !== undefined) {
      extensions.push([ExtensionType.connectionId, vector(1, this.connectionIds.own)]);
    }
    return extensions;
  }

  private startAbbreviated(resumable: ResumableSession): ServerFlight {
    const suite = this.credentials.suites.find((candidate) => candidate.id === resumable.suiteId) as CipherSuite;
    this.abbreviated = true;
    this.negotiated = { suite };
    this.sessionId = Buffer.from(this.hello.sessionId);
    this.master = resumable.masterSecret;
    this.identity = resumable.identity;
    this.credential = resumable.credential;
    const serverHello = encodeServerHello(this.serverRandom, this.sessionId, suite.id, this.commonExtensions());
    const hello = this.ourMessage(HandshakeType.serverHello, serverHello);
    this.deriveKeyBlock();
    return { plain: [hello], encrypted: [this.ourFinished()] };
  }

  private fullFlight(): HandshakeMessage[] {
    const extensions = this.commonExtensions();
    const bodies: Array<[number, Buffer]> = [];
    if (this.suite.keyExchange === 'ecdhe_ecdsa') {
      if (this.hello.extensions.has(ExtensionType.ecPointFormats)) {
        extensions.push([ExtensionType.ecPointFormats, Buffer.from([1, EC_POINT_FORMAT_UNCOMPRESSED])]);
      }
      if (this.hello.extensions.has(ExtensionType.serverCertificateType)) {
        extensions.push([
          ExtensionType.serverCertificateType,
          uint8(certificateTypeCode(this.negotiated.serverCertificate)),
        ]);
      }
      if (this.hello.extensions.has(ExtensionType.clientCertificateType)) {
        extensions.push([
          ExtensionType.clientCertificateType,
          uint8(certificateTypeCode(this.negotiated.clientCertificate)),
        ]);
      }
      bodies.push([HandshakeType.certificate, this.ecdhe.serverCertificateBody()]);
      bodies.push([
        HandshakeType.serverKeyExchange,
        this.ecdhe.serverKeyExchangeBody(this.hello.random, this.serverRandom),
      ]);
      bodies.push([HandshakeType.certificateRequest, encodeCertificateRequest()]);
    }
    const serverHello = encodeServerHello(this.serverRandom, this.sessionId, this.suite.id, extensions);
    bodies.unshift([HandshakeType.serverHello, serverHello]);
    bodies.push([HandshakeType.serverHelloDone, Buffer.alloc(0)]);
    return bodies.map(([msgType, body]) => this.ourMessage(msgType, body));
  }

  /**
   * Processes the client's next handshake message. Once the client's Finished verified, the
   * handshake is complete: returns our last flight (a full handshake's ChangeCipherSpec and
   * Finished; none when resuming, where ours went first). Otherwise undefined.
   */
  async receive(message: HandshakeMessage): Promise<{ flight?: ServerFlight } | undefined> {
    const expected = this.expectedClientMessage;
    if (message.msgType !== expected) {
      throw new HandshakeFailure(
        AlertDescription.unexpectedMessage,
        `unexpected handshake message ${message.msgType} (expected ${expected ?? 'none'})`,
      );
    }
    let preMasterSecret: Buffer | undefined;
    try {
      switch (message.msgType) {
        case HandshakeType.certificate:
          await this.onClientCertificate(message.body);
          break;
        case HandshakeType.clientKeyExchange:
          preMasterSecret = await this.onClientKeyExchange(message.body);
          break;
        case HandshakeType.certificateVerify:
          this.ecdhe.verifyCertificateVerify(message.body, this.transcript);
          break;
        case HandshakeType.finished:
          return this.onFinished(message);
      }
    } catch (err) {
      if (err instanceof DecodeError) throw new HandshakeFailure(AlertDescription.decodeError, err.message);
      throw err;
    }
    // Finished's transcript position differs (see onFinished); everything else is appended here.
    this.transcript.push(transcriptEntry(message));
    this.clientFlightIndex++;
    if (preMasterSecret !== undefined) this.deriveKeys(preMasterSecret);
    return undefined;
  }

  private get complete(): boolean {
    return this.clientFlightIndex === this.clientFlight.length;
  }

  /** The security identity established (after the handshake completed). */
  get securityIdentity(): SecurityIdentity | undefined {
    return this.complete ? this.identity : undefined;
  }

  /** After completion: the session's ID and what resuming it takes; undefined when it cannot be resumed. */
  resumption(): { id: Buffer; session: ResumableSession } | undefined {
    const { master, identity, credential } = this;
    if (!this.complete || this.sessionId.length === 0 || master === undefined) return undefined;
    if (identity === undefined || credential === undefined) return undefined;
    const session = {
      masterSecret: master,
      suiteId: this.suite.id,
      extendedMasterSecret: this.extendedMasterSecret,
      identity,
      credential,
    };
    return { id: this.sessionId, session };
  }

  /** A cached session can be resumed with this ClientHello: same suite offered and enabled, same EMS use. */
  private canResume(resumable: ResumableSession): boolean {
    // RFC 7627 §5.3: a session with an extended master secret is resumed only by a client that still
    // offers it (without, a full handshake is done); one without it is never resumed by a client that does.
    return (
      this.hello.cipherSuites.includes(resumable.suiteId) &&
      this.credentials.suites.some((suite) => suite.id === resumable.suiteId) &&
      resumable.extendedMasterSecret === this.extendedMasterSecret
    );
  }

  /** What authenticated the client (after the handshake completed). */
  get authenticatedBy(): SessionCredential | undefined {
    return this.complete ? this.credential : undefined;
  }

  private ourMessage(msgType: number, body: Buffer): HandshakeMessage {
    const message = { msgType, messageSeq: this.nextServerSeq++, body };
    this.transcript.push(transcriptEntry(message));
    return message;
  }

  private async onClientCertificate(body: Buffer): Promise<void> {
    const { identity, credential } = await this.ecdhe.clientCertificate(body, this.peer);
    this.identity = identity;
    this.credential = credential;
  }

  /** The client's key exchange, by suite family: the premaster secret. */
  private async onClientKeyExchange(body: Buffer): Promise<Buffer> {
    if (this.suite.keyExchange !== 'psk') return this.ecdhe.clientKeyExchange(body);
    const psk = await pskClientKeyExchange(body, this.credentials, this.peer);
    this.unknownPskIdentity = psk.unknownIdentity;
    if (psk.credential !== undefined) this.credential = psk.credential;
    this.identity = psk.identity;
    return psk.preMasterSecret;
  }

  /** After ClientKeyExchange is in the transcript: master secret (RFC 7627 when agreed) and epoch 1 keys. */
  private deriveKeys(preMaster: Buffer): void {
    this.master = this.extendedMasterSecret
      ? extendedMasterSecret(preMaster, sha256(Buffer.concat(this.transcript)))
      : masterSecret(preMaster, this.hello.random, this.serverRandom);
    this.deriveKeyBlock();
  }

  private deriveKeyBlock(): void {
    const master = this.master as Buffer;
    const block = keyBlock(master, this.hello.random, this.serverRandom, keyBlockLength(this.suite.cipher));
    this.keyBlock = block;
    this.keys = connectionKeys(this.suite.cipher, block);
  }

  private onFinished(message: HandshakeMessage): { flight?: ServerFlight } {
    const master = this.master;
    if (master === undefined) throw new HandshakeFailure(AlertDescription.unexpectedMessage, 'Finished before keys');
    const expected = verifyData(master, 'client', sha256(Buffer.concat(this.transcript)));
    if (message.body.length !== expected.length || !timingSafeEqual(message.body, expected)) {
      throw new HandshakeFailure(AlertDescription.decryptError, this.wrongKeyReason);
    }
    if (this.unknownPskIdentity !== undefined) {
      // Unreachable in practice (the client cannot know our random key), but never accept it.
      throw new HandshakeFailure(AlertDescription.decryptError, this.wrongKeyReason);
    }
    this.transcript.push(transcriptEntry(message));
    this.clientFlightIndex++;
    return this.abbreviated ? {} : { flight: { plain: [], encrypted: [this.ourFinished()] } };
  }

  /** Our Finished over the transcript so far (it joins the transcript: a resuming client's Finished covers it). */
  private ourFinished(): HandshakeMessage {
    const master = this.master as Buffer;
    return this.ourMessage(
      HandshakeType.finished,
      verifyData(master, 'server', sha256(Buffer.concat(this.transcript))),
    );
  }
}
