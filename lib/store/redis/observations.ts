// The Redis observation store: observations shared by every instance, mirrored in memory, other instances' changes told.
import type { ObservationChange, StoredObservation } from '../../server/stores';
import { MemoryObservationStore } from '../../server/memory-stores';
import type { RedisLink } from './redis-link';

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
