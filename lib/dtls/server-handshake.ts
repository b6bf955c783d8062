import {
  createECDH,
  randomBytes,
  sign,
  timingSafeEqual,
  verify,
  type ECDH,
  type KeyObject,
  type X509Certificate,
} from 'node:crypto';
import type { Peer, SecurityIdentity } from '../transport/types';
import { ByteReader, DecodeError, uint8, vector } from './bytes';
import { connectionKeys, keyBlockLength, type ConnectionKeys } from './cipher';
import {
  AlertDescription,
  CertificateType,
  DTLS_1_2,
  EC_POINT_FORMAT_UNCOMPRESSED,
  EMPTY_RENEGOTIATION_INFO_SCSV,
  ExtensionType,
  HandshakeType,
  NAMED_GROUP_SECP256R1,
  SIGNATURE_ECDSA_SHA256,
} from './constants';
import { p256PublicKeyFromSpki, verifyClientChain } from './credentials';
import { HandshakeFailure } from './failure';
import { transcriptEntry, type HandshakeMessage } from './handshake';
import {
  encodeCertificateChain,
  encodeCertificateRequest,
  encodeEcdheParams,
  encodeRawPublicKeyCertificate,
  encodeServerHello,
  encodeServerKeyExchange,
  parseCertificateChain,
  parseCertificateVerify,
  parseEcdheClientKeyExchange,
  parseList,
  parsePskClientKeyExchange,
  parseRawPublicKeyCertificate,
  type ClientHello,
} from './messages';
import { extendedMasterSecret, keyBlock, masterSecret, pskPreMasterSecret, sha256, verifyData } from './prf';
import { pskFingerprint, type SessionCredential, type StoredDtlsSession } from './session-store';
import type { CipherSuite } from './suites';

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

/** What the handshake needs to know about our credentials (already loaded and checked). */
export interface HandshakeCredentials {
  /** Enabled suites in our order of preference. */
  suites: CipherSuite[];
  pskKey?: (identity: string, peer: Peer) => Buffer | undefined | Promise<Buffer | undefined>;
  certificate?: { chain: Buffer[]; privateKey: KeyObject };
  rawPublicKey?: { spki: Buffer; privateKey: KeyObject };
  trustedCertificates: X509Certificate[];
  clientRawPublicKey?: (spki: Buffer, peer: Peer) => string | undefined | Promise<string | undefined>;
}

type CertificateKind = 'x509' | 'rpk';

interface Negotiated {
  suite: CipherSuite;
  serverCertificate?: CertificateKind;
  clientCertificate?: CertificateKind;
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

/** Random salt of a PSK's fingerprint (see pskFingerprint). */
const PSK_FINGERPRINT_SALT_LENGTH = 16;

/** An uncompressed P-256 point: 0x04, x, y. */
const P256_POINT_LENGTH = 65;
/** Used in place of the key of an unknown PSK identity (see the class comment). */
const DUMMY_PSK_LENGTH = 16;

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
  private ecdh: ECDH | undefined;
  private master: Buffer | undefined;
  private clientPublicKey: KeyObject | undefined;
  private identity: SecurityIdentity | undefined;
  private unknownPskIdentity: string | undefined;
  private preMasterSecret: Buffer | undefined;

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
    this.negotiated = this.negotiate();
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
      bodies.push([HandshakeType.certificate, this.serverCertificateBody()]);
      bodies.push([HandshakeType.serverKeyExchange, this.serverKeyExchangeBody()]);
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
    try {
      switch (message.msgType) {
        case HandshakeType.certificate:
          await this.onClientCertificate(message.body);
          break;
        case HandshakeType.clientKeyExchange:
          await this.onClientKeyExchange(message.body);
          break;
        case HandshakeType.certificateVerify:
          this.onCertificateVerify(message.body);
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
    if (message.msgType === HandshakeType.clientKeyExchange) this.deriveKeys();
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

  private negotiate(): Negotiated {
    const offered = new Set(this.hello.cipherSuites);
    for (const suite of this.credentials.suites) {
      if (!offered.has(suite.id)) continue;
      if (suite.keyExchange === 'psk') {
        if (this.credentials.pskKey !== undefined) return { suite };
        continue;
      }
      const ecdhe = this.negotiateEcdhe();
      if (ecdhe !== undefined) return { suite, ...ecdhe };
    }
    const names = this.hello.cipherSuites.map((id) => '0x' + id.toString(16).padStart(4, '0')).join(', ');
    throw new HandshakeFailure(
      AlertDescription.handshakeFailure,
      `no cipher suite in common (client offered ${names})`,
    );
  }

  /** Whether ECDHE_ECDSA is possible with this client and our credentials, and with which certificate types. */
  private negotiateEcdhe(): Omit<Negotiated, 'suite'> | undefined {
    const extensions = this.hello.extensions;
    const groups = extensions.get(ExtensionType.supportedGroups);
    if (groups !== undefined && !parseList(groups, 2, 2).includes(NAMED_GROUP_SECP256R1)) return undefined;
    const pointFormats = extensions.get(ExtensionType.ecPointFormats);
    if (pointFormats !== undefined && !parseList(pointFormats, 1, 1).includes(EC_POINT_FORMAT_UNCOMPRESSED)) {
      return undefined;
    }
    const signatures = extensions.get(ExtensionType.signatureAlgorithms);
    if (signatures !== undefined && !parseList(signatures, 2, 2).includes(SIGNATURE_ECDSA_SHA256)) return undefined;
    const clientCertificate = pickCertificateType(extensions.get(ExtensionType.clientCertificateType), {
      x509: this.credentials.trustedCertificates.length > 0,
      rpk: this.credentials.clientRawPublicKey !== undefined,
    });
    // A client authenticating with a raw key gets ours as a raw key too when it accepts one, whatever
    // its order (GnuTLS lists X.509 first): LwM2M's RPK mode is raw keys both ways, and an RPK client
    // usually has no CA to check a certificate with.
    const serverCertificate = pickCertificateType(
      extensions.get(ExtensionType.serverCertificateType),
      { x509: this.credentials.certificate !== undefined, rpk: this.credentials.rawPublicKey !== undefined },
      clientCertificate === 'rpk' ? 'rpk' : undefined,
    );
    if (serverCertificate === undefined || clientCertificate === undefined) return undefined;
    return { serverCertificate, clientCertificate };
  }

  private ourMessage(msgType: number, body: Buffer): HandshakeMessage {
    const message = { msgType, messageSeq: this.nextServerSeq++, body };
    this.transcript.push(transcriptEntry(message));
    return message;
  }

  private serverSigningKey(): KeyObject {
    const key =
      this.negotiated.serverCertificate === 'rpk'
        ? this.credentials.rawPublicKey?.privateKey
        : this.credentials.certificate?.privateKey;
    if (key === undefined) throw new HandshakeFailure(AlertDescription.internalError, 'no server key');
    return key;
  }

  private serverCertificateBody(): Buffer {
    if (this.negotiated.serverCertificate === 'rpk') {
      return encodeRawPublicKeyCertificate(this.credentials.rawPublicKey?.spki ?? Buffer.alloc(0));
    }
    return encodeCertificateChain(this.credentials.certificate?.chain ?? []);
  }

  private serverKeyExchangeBody(): Buffer {
    this.ecdh = createECDH('prime256v1');
    const params = encodeEcdheParams(this.ecdh.generateKeys());
    const signed = Buffer.concat([this.hello.random, this.serverRandom, params]);
    const signature = sign('sha256', signed, { key: this.serverSigningKey(), dsaEncoding: 'der' });
    return encodeServerKeyExchange(params, signature);
  }

  private async onClientCertificate(body: Buffer): Promise<void> {
    if (this.negotiated.clientCertificate === 'rpk') {
      const spki = parseRawPublicKeyCertificate(body);
      this.clientPublicKey = p256PublicKeyFromSpki(spki);
      let identity: string | undefined;
      try {
        identity = await this.credentials.clientRawPublicKey?.(spki, this.peer);
      } catch (err) {
        throw new HandshakeFailure(AlertDescription.internalError, `raw public key lookup failed: ${String(err)}`);
      }
      if (identity === undefined) {
        throw new HandshakeFailure(AlertDescription.certificateUnknown, 'raw public key not trusted');
      }
      this.identity = { mode: 'rpk', identity };
      this.credential = { kind: 'rpk', spki: Buffer.from(spki) };
      return;
    }
    const chain = parseCertificateChain(body);
    if (chain.length === 0) throw new HandshakeFailure(AlertDescription.handshakeFailure, 'client sent no certificate');
    const { publicKey, commonName } = verifyClientChain(chain, this.credentials.trustedCertificates);
    this.clientPublicKey = publicKey;
    this.identity = { mode: 'x509', identity: commonName };
    this.credential = { kind: 'x509', chain: chain.map((der) => Buffer.from(der)) };
  }

  private async onClientKeyExchange(body: Buffer): Promise<void> {
    if (this.suite.keyExchange === 'psk') {
      const identity = parsePskClientKeyExchange(body).toString('utf8');
      let psk: Buffer | undefined;
      try {
        psk = await this.credentials.pskKey?.(identity, this.peer);
      } catch {
        psk = undefined;
      }
      if (psk === undefined || psk.length === 0) {
        this.unknownPskIdentity = identity;
        psk = randomBytes(DUMMY_PSK_LENGTH);
      } else {
        const salt = randomBytes(PSK_FINGERPRINT_SALT_LENGTH);
        this.credential = { kind: 'psk', salt, fingerprint: pskFingerprint(psk, salt) };
      }
      this.identity = { mode: 'psk', identity };
      this.preMasterSecret = pskPreMasterSecret(psk);
      return;
    }
    const point = parseEcdheClientKeyExchange(body);
    if (point.length !== P256_POINT_LENGTH || point[0] !== 4 || this.ecdh === undefined) {
      throw new HandshakeFailure(
        AlertDescription.illegalParameter,
        'client ECDH key is not an uncompressed P-256 point',
      );
    }
    try {
      this.preMasterSecret = this.ecdh.computeSecret(point);
    } catch {
      throw new HandshakeFailure(AlertDescription.illegalParameter, 'client ECDH key is not on the curve');
    }
  }

  /** After ClientKeyExchange is in the transcript: master secret (RFC 7627 when agreed) and epoch 1 keys. */
  private deriveKeys(): void {
    const preMaster = this.preMasterSecret;
    if (preMaster === undefined) throw new HandshakeFailure(AlertDescription.internalError, 'no premaster secret');
    this.master = this.extendedMasterSecret
      ? extendedMasterSecret(preMaster, sha256(Buffer.concat(this.transcript)))
      : masterSecret(preMaster, this.hello.random, this.serverRandom);
    this.preMasterSecret = undefined;
    this.deriveKeyBlock();
  }

  private deriveKeyBlock(): void {
    const master = this.master as Buffer;
    const block = keyBlock(master, this.hello.random, this.serverRandom, keyBlockLength(this.suite.cipher));
    this.keyBlock = block;
    this.keys = connectionKeys(this.suite.cipher, block);
  }

  private onCertificateVerify(body: Buffer): void {
    const { algorithm, signature } = parseCertificateVerify(body);
    if (algorithm !== SIGNATURE_ECDSA_SHA256) {
      throw new HandshakeFailure(
        AlertDescription.illegalParameter,
        `CertificateVerify uses algorithm 0x${algorithm.toString(16)}`,
      );
    }
    const signed = Buffer.concat(this.transcript);
    const key = this.clientPublicKey;
    let valid = false;
    try {
      valid = key !== undefined && verify('sha256', signed, { key, dsaEncoding: 'der' }, signature);
    } catch {
      valid = false;
    }
    if (!valid) throw new HandshakeFailure(AlertDescription.decryptError, 'client CertificateVerify signature invalid');
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

/**
 * Whether what authenticated a client back then (a PSK, a raw key, a certificate chain) still
 * authenticates it as the same identity with today's credentials: undefined if so, else why not.
 * Used before resuming a session and before carrying on an adopted connection, so that a key
 * changed or removed, or a CA no longer trusted, does not live on through either.
 */
export async function credentialProblem(
  credentials: HandshakeCredentials,
  identity: SecurityIdentity,
  credential: SessionCredential,
  peer: Peer,
): Promise<string | undefined> {
  try {
    if (credential.kind === 'psk') {
      if (identity.mode !== 'psk') return 'credential does not match the identity';
      const key = await credentials.pskKey?.(identity.identity, peer);
      if (key === undefined || key.length === 0) return `the PSK of identity "${identity.identity}" was removed`;
      const fingerprint = pskFingerprint(key, credential.salt);
      return fingerprint.length === credential.fingerprint.length &&
        timingSafeEqual(fingerprint, credential.fingerprint)
        ? undefined
        : `the PSK of identity "${identity.identity}" changed`;
    }
    if (credential.kind === 'rpk') {
      const now = await credentials.clientRawPublicKey?.(credential.spki, peer);
      if (now === undefined) return `the raw public key of "${identity.identity}" is no longer trusted`;
      return now === identity.identity
        ? undefined
        : `the raw public key now stands for "${now}", not "${identity.identity}"`;
    }
    const { commonName } = verifyClientChain(credential.chain, credentials.trustedCertificates);
    return commonName === identity.identity ? undefined : `the certificate now names "${commonName}"`;
  } catch (err) {
    return `credentials no longer valid: ${(err as Error).message}`;
  }
}

function certificateTypeCode(kind: CertificateKind | undefined): number {
  return kind === 'rpk' ? CertificateType.rawPublicKey : CertificateType.x509;
}

/**
 * The certificate type to use given the client's client_/server_certificate_type extension (its
 * list in preference order; absent means X.509 only) and what we have credentials for.
 */
function pickCertificateType(
  extension: Buffer | undefined,
  available: { x509: boolean; rpk: boolean },
  preferred?: CertificateKind,
): CertificateKind | undefined {
  const offered = extension === undefined ? [CertificateType.x509] : parseList(extension, 1, 1);
  const kinds = offered.flatMap((code): CertificateKind[] =>
    code === CertificateType.x509 && available.x509
      ? ['x509']
      : code === CertificateType.rawPublicKey && available.rpk
        ? ['rpk']
        : [],
  );
  return preferred !== undefined && kinds.includes(preferred) ? preferred : kinds[0];
}
