// The Redis DTLS session store: resumable sessions shared (sealed), kept connections per instance.
import { MemoryDtlsSessionStore } from '../../dtls/session-store';
import type { StoredDtlsConnection, StoredDtlsSession } from '../../dtls/session-store';
import type { RedisLink } from './redis-link';

/**
 * DTLS sessions: resumable sessions are shared (sealed), so a device whose instance went away resumes
 * its session on another one with an abbreviated handshake; the connections a closing listener hands
 * to the next one stay with this instance (`dtls-kept:<instanceId>`).
 */
export class RedisDtlsSessionStore extends MemoryDtlsSessionStore {
  private readonly keptCollection: string;
  onError?: (err: Error) => void;

  constructor(
    private readonly link: RedisLink,
    private readonly collection = 'dtls',
  ) {
    super();
    this.keptCollection = `${collection}-kept:${link.instanceId}`;
    link.watch(collection, true, (ops) => this.apply(ops));
    link.watch(this.keptCollection, true, () => undefined);
  }

  async load(): Promise<void> {
    await this.link.load(this.collection, (entries) =>
      this.apply([...entries].map(([k, v]) => ({ o: 'p' as const, k, v }))),
    );
    await this.link.load(this.keptCollection, (entries) => {
      const kept = entries.get('connections');
      if (Array.isArray(kept)) this.keepConnections(kept as StoredDtlsConnection[]);
    });
  }

  override setResumable(id: Buffer, session: StoredDtlsSession, expiresAt: number): void {
    super.setResumable(id, session, expiresAt);
    this.link
      .write(this.collection, [{ o: 'p', k: id.toString('hex'), v: { session, expiresAt } }])
      .catch((err: Error) => this.onError?.(err));
  }

  override deleteResumable(id: Buffer): void {
    super.deleteResumable(id);
    this.link.write(this.collection, [{ o: 'd', k: id.toString('hex') }]).catch((err: Error) => this.onError?.(err));
  }

  override async saveConnections(connections: StoredDtlsConnection[]): Promise<void> {
    this.keepConnections(connections);
    await this.link.write(this.keptCollection, [{ o: 'p', k: 'connections', v: connections }]);
  }

  override takeConnections(): StoredDtlsConnection[] {
    const taken = super.takeConnections();
    if (taken.length > 0)
      this.link.write(this.keptCollection, [{ o: 'd', k: 'connections' }]).catch((err: Error) => this.onError?.(err));
    return taken;
  }

  override sweep(): void {
    const before = new Set([...this.liveResumable()].map(([id]) => id));
    super.sweep();
    // Expired sessions leave Redis too (any instance may do it: deleting twice is harmless).
    const gone: Array<{ o: 'd'; k: string }> = [];
    for (const id of before) if (!this.getResumable(Buffer.from(id, 'hex'))) gone.push({ o: 'd', k: id });
    if (gone.length > 0) this.link.write(this.collection, gone).catch((err: Error) => this.onError?.(err));
  }

  private apply(ops: Array<{ o: 'p' | 'd'; k: string; v?: unknown }>): void {
    for (const op of ops) {
      if (op.o === 'd') super.deleteResumable(Buffer.from(op.k, 'hex'));
      else {
        const entry = op.v as { session: StoredDtlsSession; expiresAt: number };
        if (entry.expiresAt > Date.now()) super.setResumable(Buffer.from(op.k, 'hex'), entry.session, entry.expiresAt);
      }
    }
  }
}
