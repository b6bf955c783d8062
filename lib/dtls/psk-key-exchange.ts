/**
 * The PSK key exchange (RFC 4279): the client's ClientKeyExchange names an identity, the premaster
 * secret is built from that identity's key; an unknown identity goes on with a random key (see
 * ServerHandshake) so that identities cannot be probed.
 */

import { randomBytes } from 'node:crypto';
import type { Peer, SecurityIdentity } from '../transport/types';
import type { HandshakeCredentials } from './handshake-credentials';
import { parsePskClientKeyExchange } from './messages';
import { pskPreMasterSecret } from './prf';
import type { SessionCredential } from './session-data';
import { pskFingerprint } from './session-store';

/** Random salt of a PSK's fingerprint (see pskFingerprint). */
const PSK_FINGERPRINT_SALT_LENGTH = 16;

/** Used in place of the key of an unknown PSK identity (see ServerHandshake). */
const DUMMY_PSK_LENGTH = 16;

export interface PskExchange {
  identity: SecurityIdentity;
  /** What authenticated the client, kept for resumption; undefined for an unknown identity. */
  credential: SessionCredential | undefined;
  /** The identity the client named when we have no key for it (the handshake then cannot succeed). */
  unknownIdentity: string | undefined;
  preMasterSecret: Buffer;
}

/** The client's ClientKeyExchange of a PSK suite: who it claims to be and the premaster secret. */
export async function pskClientKeyExchange(
  body: Buffer,
  credentials: HandshakeCredentials,
  peer: Peer,
): Promise<PskExchange> {
  const identity = parsePskClientKeyExchange(body).toString('utf8');
  let psk: Buffer | undefined;
  try {
    psk = await credentials.pskKey?.(identity, peer);
  } catch {
    psk = undefined;
  }
  let credential: SessionCredential | undefined;
  let unknownIdentity: string | undefined;
  if (psk === undefined || psk.length === 0) {
    unknownIdentity = identity;
    psk = randomBytes(DUMMY_PSK_LENGTH);
  } else {
    const salt = randomBytes(PSK_FINGERPRINT_SALT_LENGTH);
    credential = { kind: 'psk', salt, fingerprint: pskFingerprint(psk, salt) };
  }
  return {
    identity: { mode: 'psk', identity },
    credential,
    unknownIdentity,
    preMasterSecret: pskPreMasterSecret(psk),
  };
}
