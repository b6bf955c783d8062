/** The Redis stores besides registrations: observations, credentials, DTLS sessions, bootstrap configurations, records. */
import type { BootstrapConfig } from '../bootstrap/config';
import { MemoryBootstrapConfigStore } from '../bootstrap/config';
import type { ObjectModelLookup } from '../model/types';
import { MemoryDtlsSessionStore } from '../dtls/session-store';
import type { StoredDtlsConnection, StoredDtlsSession } from '../dtls/session-store';
import type { SecurityInfo } from '../server/security';
import type { ObservationChange, StoredObservation } from '../server/stores';
import { MemoryObservationStore } from './memory';
import { MemorySecurityStore } from './memory-security';
import type { RedisLink } from './redis-link';

// The link (connections, cluster bus) and the registrations have files of their own; all are used from here.
export { RedisLink } from './redis-link';
export type { RedisLinkOptions } from './redis-link';
export { RedisRegistrationStore } from './redis-registrations';

/**
 * Observations, mirrored like registrations. The observation service watches the changes other
 * instances make, so a notification reaching any instance is matched to its observation.
 */
export class RedisObservationStore extends MemoryObservationStore {
  static readonly collection = 'observations';
  private watcher?: (change: ObservationChange) => void;

  constructor(private readonly link: RedisLink) {
    super();
    link.watch(RedisObservationStore.collection, false, (ops, own) => this.apply(ops, own));
  }

  async load(): Promise<void> {
    await this.link.load(RedisObservationStore.collection, (entries) => {
      for (const observation of [...this.values()])
        if (!entries.has(observation.id)) this.apply([{ o: 'd', k: observation.id }]);
      this.apply([...entries].map(([k, v]) => ({ o: 'p' as const, k, v })));
    });
  }

  watch(listener: (change: ObservationChange) => void): void {
    this.watcher = listener;
  }

  // Applied here at once and undone if Redis refuses, as for registrations.

  override async add(observation: StoredObservation): Promise<void> {
    const previous = this.getByIdSync(observation.id);
    void super.add(observation);
    try {
      await this.link.write(RedisObservationStore.collection, [{ o: 'p', k: observation.id, v: observation }]);
    } catch (err) {
      if (previous) void super.add(previous);
      else void super.remove(observation.id);
      throw err;
    }
  }

  override async update(observation: StoredObservation): Promise<void> {
    await this.add(observation);
  }

  override async remove(observationId: string): Promise<StoredObservation | undefined> {
    const previous = this.getByIdSync(observationId);
    if (!previous) return undefined;
    void super.remove(observationId);
    try {
      await this.link.write(RedisObservationStore.collection, [{ o: 'd', k: observationId }]);
    } catch (err) {
      void super.add(previous);
      throw err;
    }
    return previous;
  }

  override async removeByRegistration(registrationId: string): Promise<StoredObservation[]> {
    const gone = await super.removeByRegistration(registrationId);
    try {
      await this.link.write(
        RedisObservationStore.collection,
        gone.map((observation) => ({ o: 'd' as const, k: observation.id })),
      );
    } catch (err) {
      for (const observation of gone) void super.add(observation);
      throw err;
    }
    return gone;
  }

  /** `own`: this instance's change heard back: its observation service knows it already. */
  private apply(ops: Array<{ o: 'p' | 'd'; k: string; v?: unknown }>, own = false): void {
    for (const op of ops) {
      if (op.o === 'd') {
        const gone = this.getByIdSync(op.k);
        void super.remove(op.k);
        if (gone && !own) this.watcher?.({ kind: 'removed', observation: gone });
      } else {
        const observation = op.v as StoredObservation;
        void super.add(observation);
        if (!own) this.watcher?.({ kind: 'stored', observation });
      }
    }
  }
}

/** Device credentials shared by every instance, sealed in Redis, mirrored in memory (handshakes look up synchronously). */
export class RedisSecurityStore extends MemorySecurityStore {
  constructor(
    private readonly link: RedisLink,
    private readonly collection = 'security',
  ) {
    super();
    link.watch(collection, true, (ops) => this.apply(ops));
  }

  async load(): Promise<void> {
    await this.link.load(this.collection, (entries) => {
      for (const info of [...this.values()])
        if (!entries.has(info.endpoint)) this.apply([{ o: 'd', k: info.endpoint }]);
      this.apply([...entries].map(([k, v]) => ({ o: 'p' as const, k, v })));
    });
  }

  override async add(info: SecurityInfo): Promise<SecurityInfo | undefined> {
    // Checked (an identity clash throws) and applied here first, undone when Redis refuses the write.
    const replaced = await super.add(info);
    try {
      await this.link.write(this.collection, [{ o: 'p', k: info.endpoint, v: info }]);
    } catch (err) {
      await super.remove(info.endpoint);
      if (replaced) await super.add(replaced);
      throw err;
    }
    return replaced;
  }

  override async remove(endpoint: string): Promise<SecurityInfo | undefined> {
    const previous = await super.remove(endpoint);
    if (!previous) return undefined;
    try {
      await this.link.write(this.collection, [{ o: 'd', k: endpoint }]);
    } catch (err) {
      await super.add(previous);
      throw err;
    }
    return previous;
  }

  private apply(ops: Array<{ o: 'p' | 'd'; k: string; v?: unknown }>): void {
    for (const op of ops) {
      if (op.o === 'd') void super.remove(op.k);
      else void super.add(op.v as SecurityInfo).catch(() => undefined);
    }
  }
}

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
      if (Array.isArray(kept)) super.saveConnections(kept as StoredDtlsConnection[]);
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
    super.saveConnections(connections);
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

/** Bootstrap configurations (sealed: they hold device keys), shared and mirrored. */
export class RedisBootstrapConfigStore extends MemoryBootstrapConfigStore {
  static readonly collection = 'bootstrap-configs';

  constructor(
    private readonly link: RedisLink,
    model?: ObjectModelLookup,
  ) {
    super(model);
    // A configuration another instance stored that does not pass the checks here is reported, not dropped unseen.
    link.watch(RedisBootstrapConfigStore.collection, true, (ops) => {
      void this.apply(ops).then((problems) => problems.forEach((problem) => link.emit('problem', problem)));
    });
  }

  /** Reads every configuration back; returns the ones that no longer pass the checks. */
  async load(): Promise<string[]> {
    let problems: string[] = [];
    await this.link.load(RedisBootstrapConfigStore.collection, async (entries) => {
      problems = await this.apply([...entries].map(([k, v]) => ({ o: 'p' as const, k, v })));
    });
    return problems;
  }

  override async set(endpointOrPattern: string, config: unknown): Promise<BootstrapConfig> {
    const checked = await super.set(endpointOrPattern, config);
    await this.link.write(RedisBootstrapConfigStore.collection, [{ o: 'p', k: endpointOrPattern, v: config }]);
    return checked;
  }

  override async remove(endpointOrPattern: string): Promise<boolean> {
    const removed = await super.remove(endpointOrPattern);
    if (removed) await this.link.write(RedisBootstrapConfigStore.collection, [{ o: 'd', k: endpointOrPattern }]);
    return removed;
  }

  private async apply(ops: Array<{ o: 'p' | 'd'; k: string; v?: unknown }>): Promise<string[]> {
    const problems: string[] = [];
    for (const op of ops) {
      try {
        if (op.o === 'd') await super.remove(op.k);
        else await super.set(op.k, op.v);
      } catch (err) {
        problems.push(`bootstrap configuration "${op.k}": ${(err as Error).message}`);
      }
    }
    return problems;
  }
}

/** Plain records (firmware job records ...) by a key of their own, shared by every instance, copied when saved. */
export class RedisRecordStore<T> {
  private readonly records = new Map<string, T>();

  constructor(
    private readonly link: RedisLink,
    private readonly collection: string,
    private readonly keyOf: (record: T) => string,
    /** Records may carry secrets (a held write of a device's keys): sealed in Redis. */
    secret = false,
  ) {
    link.watch(collection, secret, (ops) => {
      for (const op of ops) {
        if (op.o === 'd') this.records.delete(op.k);
        else this.records.set(op.k, op.v as T);
      }
    });
  }

  async load(): Promise<void> {
    await this.link.load(this.collection, (entries) => {
      this.records.clear();
      for (const [key, value] of entries) this.records.set(key, value as T);
    });
  }

  async save(record: T): Promise<void> {
    const copy = structuredClone(record);
    const key = this.keyOf(copy);
    this.records.set(key, copy);
    await this.link.write(this.collection, [{ o: 'p', k: key, v: copy }]);
  }

  /** Always written: a save still on its way must not leave its record behind (a held request sent twice). */
  async remove(key: string): Promise<void> {
    this.records.delete(key);
    await this.link.write(this.collection, [{ o: 'd', k: key }]);
  }

  async list(): Promise<T[]> {
    return [...this.records.values()].map((record) => structuredClone(record));
  }
}
