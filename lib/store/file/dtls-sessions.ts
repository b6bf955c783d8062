// The file DTLS session store: resumable sessions and kept connections in memory, sealed in the journal.
import { MemoryDtlsSessionStore } from '../../dtls/session-store';
import type { StoredDtlsConnection, StoredDtlsSession } from '../../dtls/session-store';
import type { Journal } from './journal';

/**
 * DTLS sessions (resumable ones, and the connections a listener hands to the next one) in memory and
 * sealed in the journal: after a graceful restart devices go on with no handshake, after a crash they
 * resume their session (an abbreviated handshake) instead of a full one.
 */
export class FileDtlsSessionStore extends MemoryDtlsSessionStore {
  private readonly journal: Journal;
  private readonly collection: string;

  constructor(journal: Journal, collection = 'dtls') {
    super();
    this.journal = journal;
    this.collection = collection;
    const saved = journal.declare(collection, { secret: true, entries: () => this.entries() });
    const now = Date.now();
    for (const [key, value] of saved) {
      if (key === CONNECTIONS_KEY) this.keepConnections(value as StoredDtlsConnection[]);
      else {
        const entry = value as { session: StoredDtlsSession; expiresAt: number };
        if (entry.expiresAt > now) super.setResumable(Buffer.from(key, 'hex'), entry.session, entry.expiresAt);
      }
    }
  }

  override setResumable(id: Buffer, session: StoredDtlsSession, expiresAt: number): void {
    super.setResumable(id, session, expiresAt);
    this.write(this.journal.put(this.collection, id.toString('hex'), { session, expiresAt }));
  }

  override deleteResumable(id: Buffer): void {
    super.deleteResumable(id);
    this.write(this.journal.delete(this.collection, id.toString('hex')));
  }

  override saveConnections(connections: StoredDtlsConnection[]): Promise<void> {
    this.keepConnections(connections);
    // Awaited by the closing transport: the snapshot must be on disk before the process exits.
    return this.journal.put(this.collection, CONNECTIONS_KEY, connections);
  }

  override takeConnections(): StoredDtlsConnection[] {
    const taken = super.takeConnections();
    // Adopted once at most: a second process start must not continue the same records.
    if (taken.length > 0) this.write(this.journal.delete(this.collection, CONNECTIONS_KEY));
    return taken;
  }

  private *entries(): IterableIterator<[string, unknown]> {
    yield* this.liveResumable();
    const kept = this.keptConnections();
    if (kept.length > 0) yield [CONNECTIONS_KEY, kept];
  }

  /** The DTLS transport does not wait for these writes; a failure is reported, never thrown into the handshake. */
  private write(done: Promise<void>): void {
    done.catch((err: Error) => this.onError?.(err));
  }

  onError?: (err: Error) => void;
}

const CONNECTIONS_KEY = 'kept-connections';
