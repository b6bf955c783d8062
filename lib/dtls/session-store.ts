/** Where DTLS state outlives a transport: the DtlsSessionStore interface and its in-memory default. */

import { createHmac } from 'node:crypto';
import { SessionCache } from './session-cache';
import type { StoredDtlsConnection, StoredDtlsSession } from './session-data';

export type { SessionCredential, StoredDtlsConnection, StoredDtlsSession } from './session-data';

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

  /**
   * Keeps the snapshot in memory. `void | Promise<void>` as in the interface: the file and Redis stores extend this
   * one and return the promise of their write, which the closing transport awaits.
   */
  saveConnections(connections: StoredDtlsConnection[]): void | Promise<void> {
    this.keepConnections(connections);
  }

  /** The in-memory part of saveConnections, for the durable stores' own saves and loads. */
  protected keepConnections(connections: StoredDtlsConnection[]): void {
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
