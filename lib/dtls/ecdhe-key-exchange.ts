/**
 * The ECDHE_ECDSA key exchange on P-256 (RFC 8422), with X.509 certificates or raw public keys (RFC
 * 7250) both ways: our Certificate and signed ServerKeyExchange, the client's Certificate,
 * ClientKeyExchange and CertificateVerify.
 */

import { createECDH, sign, verify, type ECDH, type KeyObject } from 'node:crypto';
import type { Peer, SecurityIdentity } from '../transport/types';
import { AlertDescription, SIGNATURE_ECDSA_SHA256 } from './constants';
import { p256PublicKeyFromSpki, verifyClientChain } from './credentials';
import { HandshakeFailure } from './failure';
import type { HandshakeCredentials } from './handshake-credentials';
import {
  encodeCertificateChain,
  encodeEcdheParams,
  encodeRawPublicKeyCertificate,
  encodeServerKeyExchange,
  parseCertificateChain,
  parseCertificateVerify,
  parseEcdheClientKeyExchange,
  parseRawPublicKeyCertificate,
} from './messages';
import type { Negotiated } from './negotiation';
import type { SessionCredential } from './session-data';

/** An uncompressed P-256 point: 0x04, x, y. */
const P256_POINT_LENGTH = 65;

/** Who the client's certificate (or raw key) says it is, and what to keep of it for resumption. */
export interface ClientAuthentication {
  identity: SecurityIdentity;
  credential: SessionCredential;
}

/** One handshake's ECDHE_ECDSA exchange: our ephemeral key and the client's public key, once known. */
export class EcdheKeyExchange {
  private ecdh: ECDH | undefined;
  private clientPublicKey: KeyObject | undefined;

  constructor(
    private readonly credentials: HandshakeCredentials,
    private readonly negotiated: Negotiated,
  ) {}

  /** Our Certificate message: the chain, or the raw key when that was negotiated. */
  serverCertificateBody(): Buffer {
    if (this.negotiated.serverCertificate === 'rpk') {
      return encodeRawPublicKeyCertificate(this.credentials.rawPublicKey?.spki ?? Buffer.alloc(0));
    }
    return encodeCertificateChain(this.credentials.certificate?.chain ?? []);
  }

  /** A fresh ephemeral key's parameters, signed over both randoms with our key. */
  serverKeyExchangeBody(clientRandom: Buffer, serverRandom: Buffer): Buffer {
    this.ecdh = createECDH('prime256v1');
    const params = encodeEcdheParams(this.ecdh.generateKeys());
    const signed = Buffer.concat([clientRandom, serverRandom, params]);
    const signature = sign('sha256', signed, { key: this.serverSigningKey(), dsaEncoding: 'der' });
    return encodeServerKeyExchange(params, signature);
  }

  private serverSigningKey(): KeyObject {
    const key =
      this.negotiated.serverCertificate === 'rpk'
        ? this.credentials.rawPublicKey?.privateKey
        : this.credentials.certificate?.privateKey;
    if (key === undefined) throw new HandshakeFailure(AlertDescription.internalError, 'no server key');
    return key;
  }

  /** The client's Certificate: a raw key we trust, or a chain to one of our CAs. */
  async clientCertificate(body: Buffer, peer: Peer): Promise<ClientAuthentication> {
    if (this.negotiated.clientCertificate === 'rpk') {
      const spki = parseRawPublicKeyCertificate(body);
      this.clientPublicKey = p256PublicKeyFromSpki(spki);
      let identity: string | undefined;
      try {
        identity = await this.credentials.clientRawPublicKey?.(spki, peer);
      } catch (err) {
        throw new HandshakeFailure(AlertDescription.internalError, `raw public key lookup failed: ${String(err)}`);
      }
      if (identity === undefined) {
        throw new HandshakeFailure(AlertDescription.certificateUnknown, 'raw public key not trusted');
      }
      return { identity: { mode: 'rpk', identity }, credential: { kind: 'rpk', spki: Buffer.from(spki) } };
    }
    const chain = parseCertificateChain(body);
    if (chain.length === 0) throw new HandshakeFailure(AlertDescription.handshakeFailure, 'client sent no certificate');
    const { publicKey, commonName } = verifyClientChain(chain, this.credentials.trustedCertificates);
    this.clientPublicKey = publicKey;
    return {
      identity: { mode: 'x509', identity: commonName },
      credential: { kind: 'x509', chain: chain.map((der) => Buffer.from(der)) },
    };
  }

  /** The client's ClientKeyExchange: its ephemeral point, and from it the premaster secret. */
  clientKeyExchange(body: Buffer): Buffer {
    const point = parseEcdheClientKeyExchange(body);
    if (point.length !== P256_POINT_LENGTH || point[0] !== 4 || this.ecdh === undefined) {
      throw new HandshakeFailure(
        AlertDescription.illegalParameter,
        'client ECDH key is not an uncompressed P-256 point',
      );
    }
    try {
      return this.ecdh.computeSecret(point);
    } catch {
      throw new HandshakeFailure(AlertDescription.illegalParameter, 'client ECDH key is not on the curve');
    }
  }

  /** The client's CertificateVerify: its signature over the transcript so far, with its certificate's key. */
  verifyCertificateVerify(body: Buffer, transcript: Buffer[]): void {
    const { algorithm, signature } = parseCertificateVerify(body);
    if (algorithm !== SIGNATURE_ECDSA_SHA256) {
      throw new HandshakeFailure(
        AlertDescription.illegalParameter,
        `CertificateVerify uses algorithm 0x${algorithm.toString(16)}`,
      );
    }
    const signed = Buffer.concat(transcript);
    const key = this.clientPublicKey;
    let valid = false;
    try {
      valid = key !== undefined && verify('sha256', signed, { key, dsaEncoding: 'der' }, signature);
    } catch {
      valid = false;
    }
    if (!valid) throw new HandshakeFailure(AlertDescription.decryptError, 'client CertificateVerify signature invalid');
  }
}
