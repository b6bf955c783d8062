/** Loading our keys and certificates, and verifying what clients present (X.509 chains, raw keys). */

import { X509Certificate, createPrivateKey, createPublicKey, type KeyObject } from 'node:crypto';
import { AlertDescription } from './constants';
import { HandshakeFailure } from './failure';

const PEM_CERTIFICATE = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g;
/** Intermediate CAs a client may send between its certificate and a trusted one. */
const MAX_CHAIN_DEPTH = 8;

/** Every certificate in the items (a PEM text may hold several; a Buffer is DER unless it is PEM text). */
export function loadCertificates(items: Array<string | Buffer>): X509Certificate[] {
  const certificates: X509Certificate[] = [];
  for (const item of items) {
    const text = typeof item === 'string' ? item : isPem(item) ? item.toString('latin1') : undefined;
    if (text === undefined) {
      certificates.push(new X509Certificate(item));
      continue;
    }
    const blocks = text.match(PEM_CERTIFICATE);
    if (blocks === null) throw new Error('no PEM certificate found');
    for (const block of blocks) certificates.push(new X509Certificate(block));
  }
  return certificates;
}

function isPem(data: Buffer): boolean {
  return data.subarray(0, 64).toString('latin1').includes('-----BEGIN');
}

/** A P-256 private key from PEM (PKCS#8 or SEC1), DER (PKCS#8 or SEC1) or a KeyObject. */
export function loadP256PrivateKey(key: string | Buffer | KeyObject): KeyObject {
  let privateKey: KeyObject;
  if (typeof key === 'string' || (Buffer.isBuffer(key) && isPem(key))) {
    privateKey = createPrivateKey(key);
  } else if (Buffer.isBuffer(key)) {
    try {
      privateKey = createPrivateKey({ key, format: 'der', type: 'pkcs8' });
    } catch {
      privateKey = createPrivateKey({ key, format: 'der', type: 'sec1' });
    }
  } else {
    privateKey = key;
  }
  if (privateKey.type !== 'private' || !isP256(privateKey)) throw new Error('expected a P-256 (secp256r1) private key');
  return privateKey;
}

export function isP256(key: KeyObject): boolean {
  return key.asymmetricKeyType === 'ec' && key.asymmetricKeyDetails?.namedCurve === 'prime256v1';
}

/** The SubjectPublicKeyInfo (DER) of a private key's public half: our raw public key. */
export function spkiOf(privateKey: KeyObject): Buffer {
  return createPublicKey(privateKey).export({ type: 'spki', format: 'der' });
}

/** A client's raw public key (RFC 7250): must be a P-256 SubjectPublicKeyInfo. */
export function p256PublicKeyFromSpki(spki: Buffer): KeyObject {
  let key: KeyObject;
  try {
    key = createPublicKey({ key: spki, format: 'der', type: 'spki' });
  } catch {
    throw new HandshakeFailure(AlertDescription.badCertificate, 'raw public key does not parse');
  }
  if (!isP256(key)) throw new HandshakeFailure(AlertDescription.unsupportedCertificate, 'raw public key is not P-256');
  return key;
}

/** The subject's common name, or the whole subject when it has none. */
export function subjectCommonName(certificate: X509Certificate): string {
  const line = certificate.subject.split('\n').find((entry) => entry.startsWith('CN='));
  return line !== undefined ? line.slice(3) : certificate.subject.replace(/\n/g, ', ');
}

function checkValidity(certificate: X509Certificate, now: Date, role: string): void {
  const notBefore = new Date(certificate.validFrom);
  const notAfter = new Date(certificate.validTo);
  if (now < notBefore) {
    throw new HandshakeFailure(
      AlertDescription.certificateExpired,
      `${role} certificate not valid before ${certificate.validFrom}`,
    );
  }
  if (now > notAfter) {
    throw new HandshakeFailure(
      AlertDescription.certificateExpired,
      `${role} certificate expired ${certificate.validTo}`,
    );
  }
}

function issuedBy(certificate: X509Certificate, issuer: X509Certificate): boolean {
  return certificate.checkIssued(issuer) && certificate.verify(issuer.publicKey);
}

/**
 * Verifies a client's chain (DER, leaf first) up to one of `trusted`: each link's issuer name and
 * signature, every certificate's validity dates, CA status of intermediates, and a P-256 leaf key.
 * A leaf that is itself one of the trusted certificates is accepted (a pinned certificate).
 * Returns the leaf's public key and common name.
 */
export function verifyClientChain(
  chainDer: Buffer[],
  trusted: X509Certificate[],
  now: Date = new Date(),
): { publicKey: KeyObject; commonName: string } {
  let chain: X509Certificate[];
  try {
    chain = chainDer.map((der) => new X509Certificate(der));
  } catch {
    throw new HandshakeFailure(AlertDescription.badCertificate, 'client certificate does not parse');
  }
  const leaf = chain[0];
  if (!isP256(leaf.publicKey)) {
    throw new HandshakeFailure(AlertDescription.unsupportedCertificate, 'client certificate key is not P-256');
  }
  checkValidity(leaf, now, 'client');
  const commonName = subjectCommonName(leaf);
  if (trusted.some((anchor) => anchor.raw.equals(leaf.raw))) return { publicKey: leaf.publicKey, commonName };
  let current = leaf;
  for (let depth = 0; depth <= MAX_CHAIN_DEPTH; depth++) {
    const anchor = trusted.find((candidate) => issuedBy(current, candidate));
    if (anchor !== undefined) {
      checkValidity(anchor, now, 'trusted CA');
      return { publicKey: leaf.publicKey, commonName };
    }
    const intermediate = chain.find(
      (candidate) => candidate !== current && candidate.ca && issuedBy(current, candidate),
    );
    if (intermediate === undefined) break;
    checkValidity(intermediate, now, 'intermediate CA');
    current = intermediate;
  }
  throw new HandshakeFailure(
    AlertDescription.unknownCa,
    `certificate not trusted: no chain from "${commonName}" (issuer ${current.issuer.replace(/\n/g, ', ')}) to a trusted CA`,
  );
}
