import { createHmac } from 'node:crypto';
import type { SecurityIdentity } from '../transport/types';
import { SessionCache } from './session-cache';

/**
 * Where a DtlsTransport keeps DTLS state that may outlive it (DtlsServerOptions.sessionStore):
 *
 * - resumable sessions, by session ID (RFC 5246 §7.3): written when a handshake completes, read when
 *   a ClientHello names one, deleted when the session is ended on purpose or by a fatal alert;
 * - the established connections handed over by `close({ keepSessions: true })`: saved in one batch
 *   by the closing transport and taken (read and removed) by the next transport's `start()`, which
 *   then carries them on with no handshake.
 *
 * Everything is plain data (Buffers, numbers, strings, booleans, arrays and objects of those): a
 * file or Redis store can serialise it as it is. Methods may answer synchronously or with a promise;
 * errors (thrown or rejected) are reported through the transport's onError and never break the
 * socket (a failed read counts as "nothing stored").
 *
 * **What the store holds is secret material.** A resumable session holds its master secret; a kept
 * connection holds its key block (the record keys and IVs of both directions). Either lets whoever
 * reads it decrypt the session's traffic and forge records as the device or the server, until the
 * session ends. A store that writes them anywhere (a file, Redis) must encrypt them at rest and keep
 * them from other readers. Neither holds a PSK or a private key: the PSK is represented by a salted
 * HMAC fingerprint (pskFingerprint), used only to check that the key is still the same when the
 * session is resumed or adopted (checking a guessed key against it is no easier than against the
 * session's own records); raw public keys and certificate chains are public.
 *
 * A store serves one transport at a time (one per server and port: Node-RED's redeploy closes the
 * old transport before starting the new one).
 */
export interface DtlsSessionStore {
  /** The resumable session with this ID, or undefined (unknown or expired). */
  getResumable(id: Buffer): StoredDtlsSession | undefined | Promise<StoredDtlsSession | undefined>;
  /** Stores (or replaces) a resumable session, valid until `expiresAt` (ms since the epoch). */
  setResumable(id: Buffer, session: StoredDtlsSession, expiresAt: number): void | Promise<void>;
  deleteResumable(id: Buffer): void | Promise<void>;
  /**
   * The established connections of a transport closed with `keepSessions`: replaces whatever an
   * earlier close saved (a snapshot nobody took is stale by then).
   */
  saveConnections(connections: StoredDtlsConnection[]): void | Promise<void>;
  /**
   * Returns the saved connections and forgets them: a snapshot is adopted once at most (two
   * transports continuing the same connection would encrypt with the same record numbers).
   */
  takeConnections(): StoredDtlsConnection[] | Promise<StoredDtlsConnection[]>;
  /** Drops expired resumable sessions (called by the transport's idle sweep). Optional. */
  sweep?(now: number): void | Promise<void>;
}

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

/**
 * How far past the saved high-water mark (nextWriteSequence) an adopted connection's record numbers
 * start: a margin, so that a number is never used twice under the same keys (which would repeat an
 * AEAD nonce) even if a record went out as the connection was saved. Small on purpose: RFC 6347
 * receivers accept any newer number, but some clients drop a record too far ahead of the newest
 * they have seen (node-dtls-client: more than 64), and such a client would never hear from an
 * adopted session again.
 */
export const WRITE_SEQUENCE_GAP = 16;

/**
 * The salted fingerprint of a PSK kept with a session instead of the key: HMAC-SHA256 keyed with
 * the PSK over a per-session random salt (no precomputed table fits every session).
 */
export function pskFingerprint(psk: Buffer, salt: Buffer): Buffer {
  return createHmac('sha256', psk).update('lwm2m-dtls-psk-fingerprint').update(salt).digest();
}

export interface MemoryDtlsSessionStoreOptions {
  /** Resumable sessions kept at most (the oldest goes first); default 100000. */
  maxResumableSessions?: number;
  now?: () => number;
}

/**
 * The store a DtlsTransport uses when none is given: in memory, so it keeps sessions across
 * transports (a redeploy) for the life of the process when the same instance is passed to each.
 */
export class MemoryDtlsSessionStore implements DtlsSessionStore {
  private readonly resumable: SessionCache;
  private kept: StoredDtlsConnection[] = [];

  constructor(options: MemoryDtlsSessionStoreOptions = {}) {
    // The lifetime is given per entry (setResumable's expiresAt); this default is never used.
    this.resumable = new SessionCache(options.maxResumableSessions ?? 100_000, 24 * 3600_000, options.now);
  }

  /** Resumable sessions held (expired ones included until swept or looked up). */
  get resumableCount(): number {
    return this.resumable.size;
  }

  /** Connections saved by a close with keepSessions and not taken yet. */
  get keptConnectionCount(): number {
    return this.kept.length;
  }

  getResumable(id: Buffer): StoredDtlsSession | undefined {
    return this.resumable.get(id);
  }

  setResumable(id: Buffer, session: StoredDtlsSession, expiresAt: number): void {
    this.resumable.set(id, session, expiresAt);
  }

  deleteResumable(id: Buffer): void {
    this.resumable.delete(id);
  }

  saveConnections(connections: StoredDtlsConnection[]): void {
    this.kept = [...connections];
  }

  takeConnections(): StoredDtlsConnection[] {
    const kept = this.kept;
    this.kept = [];
    return kept;
  }

  sweep(): void {
    this.resumable.sweep();
  }

  /** Resumable sessions still valid, by ID (hex): what a persistent store writes when it rewrites its file. */
  liveResumable(): IterableIterator<[idHex: string, entry: { session: StoredDtlsSession; expiresAt: number }]> {
    return this.resumable.live();
  }

  /** Saved connections not taken yet. */
  keptConnections(): readonly StoredDtlsConnection[] {
    return this.kept;
  }
}
