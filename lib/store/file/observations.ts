// The file observation store: observations in memory, written through to the journal.
import type { StoredObservation } from '../../server/stores';
import { MemoryObservationStore } from '../../server/memory-stores';
import type { Journal } from './journal';
import { keyedEntries } from './journal';

/** Observations in memory, written through to the journal: notifications are still matched after a restart. */
export class FileObservationStore extends MemoryObservationStore {
  constructor(private readonly journal: Journal) {
    super();
    const saved = journal.declare('observations', { entries: () => keyedEntries(this.values(), (o) => o.id) });
    for (const observation of saved.values()) void super.add(observation as StoredObservation);
  }

  override async add(observation: StoredObservation): Promise<void> {
    const applied = super.add(observation);
    await this.journal.put('observations', observation.id, observation);
    return applied;
  }

  // One line per update: the memory store's update goes through add(), which would write it twice.
  override async update(observation: StoredObservation): Promise<void> {
    await this.add(observation);
  }

  override async remove(observationId: string): Promise<StoredObservation | undefined> {
    if (!this.getByIdSync(observationId)) return undefined;
    const removed = super.remove(observationId);
    await this.journal.delete('observations', observationId);
    return removed;
  }

  override async removeByRegistration(registrationId: string): Promise<StoredObservation[]> {
    const removed = await super.removeByRegistration(registrationId);
    await Promise.all(removed.map((observation) => this.journal.delete('observations', observation.id)));
    return removed;
  }
}
