/** The bounded, expiring in-memory table of resumable DTLS sessions by session ID. */

import type { StoredDtlsSession } from './session-data';

/**
 * Sessions that clients may resume, by session ID: bounded in number (the oldest entry goes first)
 * and in age (an entry expires `lifetimeMs` after it was stored, or at the time given to set; a
 * resumption stores it again).
 */
export class SessionCache {
  /** Map order is insertion order: the first entry is the oldest. */
  private readonly entries = new Map<string, { session: StoredDtlsSession; expiresAt: number }>();

  constructor(
    private readonly maxEntries: number,
    private readonly lifetimeMs: number,
    private readonly now: () => number = Date.now,
  ) {}

  get size(): number {
    return this.entries.size;
  }

  get(id: Buffer): StoredDtlsSession | undefined {
    const key = id.toString('hex');
    const entry = this.entries.get(key);
    if (entry === undefined) return undefined;
    if (entry.expiresAt <= this.now()) {
      this.entries.delete(key);
      return undefined;
    }
    return entry.session;
  }

  set(id: Buffer, session: StoredDtlsSession, expiresAt = this.now() + this.lifetimeMs): void {
    const key = id.toString('hex');
    this.entries.delete(key);
    this.entries.set(key, { session, expiresAt });
    while (this.entries.size > this.maxEntries) {
      const oldest = this.entries.keys().next().value as string;
      this.entries.delete(oldest);
    }
  }

  delete(id: Buffer): void {
    this.entries.delete(id.toString('hex'));
  }

  /** Live entries by session ID (hex), without a promise (a persistent store rewriting its file). */
  *live(): IterableIterator<[idHex: string, entry: { session: StoredDtlsSession; expiresAt: number }]> {
    const now = this.now();
    for (const item of this.entries) if (item[1].expiresAt > now) yield item;
  }

  /** Drops expired entries (the transport's idle sweep calls this). */
  sweep(): void {
    const now = this.now();
    for (const [key, entry] of this.entries) if (entry.expiresAt <= now) this.entries.delete(key);
  }
}
