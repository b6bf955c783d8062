/**
 * Our credentials as the handshake sees them (loaded and checked), and re-checking what authenticated
 * a client back then against them (before resuming a session or carrying on an adopted connection).
 */

import { timingSafeEqual, type KeyObject, type X509Certificate } from 'node:crypto';
import type { Peer, SecurityIdentity } from '../transport/types';
import { verifyClientChain } from './credentials';
import type { SessionCredential } from './session-data';
import { pskFingerprint } from './session-store';
import type { CipherSuite } from './suites';

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
