/** Encoding and decoding of the handshake message bodies a DTLS 1.2 server sends and receives. */

import { ByteReader, DecodeError, uint16, uint8, vector } from './bytes';
import {
  CLIENT_CERTIFICATE_TYPE_ECDSA_SIGN,
  DTLS_1_0,
  DTLS_1_2,
  EC_CURVE_TYPE_NAMED,
  NAMED_GROUP_SECP256R1,
  SIGNATURE_ECDSA_SHA256,
} from './constants';

export interface ClientHello {
  clientVersion: number;
  random: Buffer;
  sessionId: Buffer;
  cookie: Buffer;
  cipherSuites: number[];
  compressionMethods: Buffer;
  /** Extension type -> extension data. */
  extensions: Map<number, Buffer>;
}

export function parseClientHello(body: Buffer): ClientHello {
  const reader = new ByteReader(body);
  const clientVersion = reader.uint16();
  const random = reader.bytes(32);
  const sessionId = reader.vector(1);
  if (sessionId.length > 32) throw new DecodeError('session_id longer than 32 bytes');
  const cookie = reader.vector(1);
  const suiteBytes = reader.vector(2);
  if (suiteBytes.length < 2 || suiteBytes.length % 2 !== 0) throw new DecodeError('bad cipher_suites length');
  const cipherSuites: number[] = [];
  for (let i = 0; i < suiteBytes.length; i += 2) cipherSuites.push(suiteBytes.readUInt16BE(i));
  const compressionMethods = reader.vector(1);
  if (compressionMethods.length < 1) throw new DecodeError('no compression methods');
  const extensions = new Map<number, Buffer>();
  if (reader.remaining > 0) {
    const extensionReader = new ByteReader(reader.vector(2));
    while (extensionReader.remaining > 0) {
      const type = extensionReader.uint16();
      const data = extensionReader.vector(2);
      if (extensions.has(type)) throw new DecodeError(`extension ${type} repeated`);
      extensions.set(type, data);
    }
  }
  reader.end('ClientHello');
  return { clientVersion, random, sessionId, cookie, cipherSuites, compressionMethods, extensions };
}

/** A list of 8- or 16-bit values in a vector with a `prefixBytes` length (extension bodies). */
export function parseList(data: Buffer, prefixBytes: 1 | 2, itemBytes: 1 | 2): number[] {
  const reader = new ByteReader(data);
  const listBytes = reader.vector(prefixBytes);
  reader.end('extension');
  if (listBytes.length % itemBytes !== 0) throw new DecodeError('bad list length in extension');
  const items: number[] = [];
  for (let i = 0; i < listBytes.length; i += itemBytes) {
    items.push(itemBytes === 1 ? listBytes[i] : listBytes.readUInt16BE(i));
  }
  return items;
}

export function encodeHelloVerifyRequest(cookie: Buffer): Buffer {
  // RFC 6347 §4.2.1: version 1.0 in HelloVerifyRequest, whatever version is negotiated later.
  return Buffer.concat([uint16(DTLS_1_0), vector(1, cookie)]);
}

export function encodeExtensions(extensions: Array<[number, Buffer]>): Buffer {
  if (extensions.length === 0) return Buffer.alloc(0);
  return vector(2, Buffer.concat(extensions.map(([type, data]) => Buffer.concat([uint16(type), vector(2, data)]))));
}

export function encodeServerHello(
  random: Buffer,
  sessionId: Buffer,
  cipherSuite: number,
  extensions: Array<[number, Buffer]>,
): Buffer {
  return Buffer.concat([
    uint16(DTLS_1_2),
    random,
    vector(1, sessionId),
    uint16(cipherSuite),
    uint8(0), // null compression
    encodeExtensions(extensions),
  ]);
}

/** X.509 Certificate message: the DER certificates, leaf first. */
export function encodeCertificateChain(chain: Buffer[]): Buffer {
  return vector(3, Buffer.concat(chain.map((der) => vector(3, der))));
}

/** RFC 7250 §3: a raw public key Certificate message is the SubjectPublicKeyInfo alone. */
export function encodeRawPublicKeyCertificate(spki: Buffer): Buffer {
  return vector(3, spki);
}

export function parseCertificateChain(body: Buffer): Buffer[] {
  const reader = new ByteReader(body);
  const listReader = new ByteReader(reader.vector(3));
  reader.end('Certificate');
  const chain: Buffer[] = [];
  while (listReader.remaining > 0) chain.push(listReader.vector(3));
  return chain;
}

export function parseRawPublicKeyCertificate(body: Buffer): Buffer {
  const reader = new ByteReader(body);
  const spki = reader.vector(3);
  reader.end('Certificate');
  return spki;
}

/** ServerECDHParams (RFC 8422 §5.4) for secp256r1: the part of ServerKeyExchange that is signed. */
export function encodeEcdheParams(publicPoint: Buffer): Buffer {
  return Buffer.concat([uint8(EC_CURVE_TYPE_NAMED), uint16(NAMED_GROUP_SECP256R1), vector(1, publicPoint)]);
}

export function encodeServerKeyExchange(params: Buffer, signature: Buffer): Buffer {
  return Buffer.concat([params, uint16(SIGNATURE_ECDSA_SHA256), vector(2, signature)]);
}

/** Asks for an ECDSA P-256 certificate (or raw key) signed with SHA-256, any CA. */
export function encodeCertificateRequest(): Buffer {
  return Buffer.concat([
    vector(1, uint8(CLIENT_CERTIFICATE_TYPE_ECDSA_SIGN)),
    vector(2, uint16(SIGNATURE_ECDSA_SHA256)),
    vector(2, Buffer.alloc(0)),
  ]);
}

/** ClientKeyExchange for PSK (RFC 4279 §2): the identity as bytes. */
export function parsePskClientKeyExchange(body: Buffer): Buffer {
  const reader = new ByteReader(body);
  const identity = reader.vector(2);
  reader.end('ClientKeyExchange');
  return identity;
}

/** ClientKeyExchange for ECDHE: the client's public point. */
export function parseEcdheClientKeyExchange(body: Buffer): Buffer {
  const reader = new ByteReader(body);
  const point = reader.vector(1);
  reader.end('ClientKeyExchange');
  if (point.length === 0) throw new DecodeError('empty ECDH public point');
  return point;
}

export function parseCertificateVerify(body: Buffer): { algorithm: number; signature: Buffer } {
  const reader = new ByteReader(body);
  const algorithm = reader.uint16();
  const signature = reader.vector(2);
  reader.end('CertificateVerify');
  return { algorithm, signature };
}
