/**
 * The DTLS state that may outlive a transport, as plain data: a resumable session, an established
 * connection handed over to the next transport, and what authenticated the client in either.
 */

import type { SecurityIdentity } from '../transport/types';

/**
 * What authenticated the client, kept to re-check it against the credentials of the day when the
 * session is resumed or adopted: a PSK's fingerprint (never the key), a raw public key (SPKI DER),
 * a certificate chain (DER, leaf first).
 */
export type SessionCredential =
  | { kind: 'psk'; salt: Buffer; fingerprint: Buffer }
  | { kind: 'rpk'; spki: Buffer }
  | { kind: 'x509'; chain: Buffer[] };

/**
 * A resumable session (what an abbreviated handshake needs): its master secret and suite, who the
 * client is, and what authenticated it.
 */
export interface StoredDtlsSession {
  masterSecret: Buffer;
  suiteId: number;
  extendedMasterSecret: boolean;
  identity: SecurityIdentity;
  credential: SessionCredential;
}

/**
 * An established connection as `close({ keepSessions: true })` leaves it: enough to decrypt the
 * device's next record and answer it with no handshake.
 */
export interface StoredDtlsConnection {
  /** Format version of this record (1). */
  version: 1;
  /** The local port it was established on: a transport bound elsewhere does not adopt it. */
  localPort: number;
  /** Where the session's peer is (its latest address when it moved by Connection ID). */
  address: string;
  port: number;
  identity: SecurityIdentity;
  credential: SessionCredential;
  suiteId: number;
  /**
   * The key block of RFC 5246 §6.3 for the suite's cipher (client MAC key, server MAC key, client
   * key, server key, client IV, server IV; the MAC keys are empty for AEAD suites). Secret.
   */
  keyBlock: Buffer;
  /** The session ID, when the session is resumable (to end that too when the session is closed). */
  sessionId?: Buffer;
  /** RFC 9146: ours (on the client's records) and the client's (on ours; may be empty). */
  connectionIds?: { own: Buffer; peer: Buffer };
  /** Epoch of the records we accept (1). */
  readEpoch: number;
  /** Epoch of the records we send (1). */
  writeEpoch: number;
  /**
   * The high-water mark of our record numbers in writeEpoch: every number below it may have been
   * used, none above. It is exact: the connection stopped sending before it was saved (and a saved
   * connection is taken once). The adopting transport continues WRITE_SEQUENCE_GAP past it.
   */
  nextWriteSequence: number;
  /** Anti-replay window of the client's records: highest sequence number accepted (-1: none yet)... */
  replayHighest: number;
  /** ...and the 64-bit bitmap below it (8 bytes, big-endian; bit i = highest - i was accepted). */
  replayBitmap: Buffer;
  /** Last authentic record from the peer (ms since the epoch): idle expiry goes on from there. */
  lastActivity: number;
}
