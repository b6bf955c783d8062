/**
 * The DTLS transport's use of its session store: session resumption (on or off) and the connections
 * kept across transports. A store may answer synchronously or with a promise; its errors (thrown or
 * rejected) are reported, never passed on into the socket's path.
 */

import type { ResumableSession } from './server-handshake';
import type { DtlsSessionStore } from './session-store';
import type { StoredDtlsConnection } from './session-data';

export class StoreCalls {
  constructor(
    private readonly store: DtlsSessionStore,
    /** Whether sessions are resumable (session IDs issued, resumptions looked up). */
    readonly sessionResumption: boolean,
    /** How long a resumable session is kept after its handshake. */
    private readonly lifetimeMs: number,
    private readonly reportError: (err: unknown) => void,
  ) {}

  /** The store's resumable session for this ID; a store that fails counts as having none. */
  lookupResumable(id: Buffer): ResumableSession | Promise<ResumableSession | undefined> | undefined {
    if (!this.sessionResumption || id.length === 0) return undefined;
    try {
      const found = this.store.getResumable(Buffer.from(id));
      if (!isThenable<ResumableSession | undefined>(found)) return found;
      return Promise.resolve(found).catch((err: unknown) => {
        this.reportError(err);
        return undefined;
      });
    } catch (err) {
      this.reportError(err);
      return undefined;
    }
  }

  /** A handshake completed: its session, if resumable, is kept for lifetimeMs. */
  keepResumable(id: Buffer | undefined, session: ResumableSession | undefined): void {
    if (this.sessionResumption && id !== undefined && session !== undefined) {
      const expiresAt = Date.now() + this.lifetimeMs;
      void this.settle(() => this.store.setResumable(id, session, expiresAt));
    }
  }

  /** The session can no longer be resumed. */
  endResumable(id: Buffer | undefined): void {
    if (this.sessionResumption && id !== undefined && id.length > 0) {
      void this.settle(() => this.store.deleteResumable(id));
    }
  }

  /** The connections a previous transport kept (none when the store fails). */
  async takeConnections(): Promise<StoredDtlsConnection[]> {
    try {
      return await this.store.takeConnections();
    } catch (err) {
      this.reportError(err);
      return [];
    }
  }

  saveConnections(kept: StoredDtlsConnection[]): Promise<void> | undefined {
    return this.settle(() => this.store.saveConnections(kept));
  }

  sweep(now: number): void {
    const store = this.store;
    if (store.sweep !== undefined) void this.settle(() => store.sweep?.(now));
  }

  /** Runs a store call: errors, thrown or rejected, are reported, never passed on. */
  private settle(call: () => void | Promise<void>): Promise<void> | undefined {
    try {
      const result = call();
      if (!isThenable<void>(result)) return undefined;
      return Promise.resolve(result).catch((err: unknown) => this.reportError(err));
    } catch (err) {
      this.reportError(err);
      return undefined;
    }
  }
}

function isThenable<T>(value: unknown): value is PromiseLike<T> {
  return typeof (value as { then?: unknown } | undefined)?.then === 'function';
}
