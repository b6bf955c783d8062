// The file registration store: registrations in memory, written through to the journal.
import type { Registration } from '../../server/registration';
import { MemoryRegistrationStore } from '../../server/memory-stores';
import type { Journal } from './journal';
import { keyedEntries } from './journal';

/** Registrations in memory (the server's lookups stay synchronous), written through to a journal file. */
export class FileRegistrationStore extends MemoryRegistrationStore {
  constructor(private readonly journal: Journal) {
    super();
    const saved = journal.declare('registrations', { entries: () => keyedEntries(this.values(), (r) => r.id) });
    for (const registration of saved.values()) void super.add(registration as Registration);
  }

  // Memory and journal change in the same tick, so the file records changes in the order they were made.

  override async add(registration: Registration): Promise<Registration | undefined> {
    const replaced = this.getByEndpointSync(registration.endpoint);
    const applied = super.add(registration);
    const writes = [this.journal.put('registrations', registration.id, registration)];
    if (replaced && replaced.id !== registration.id) writes.push(this.journal.delete('registrations', replaced.id));
    await Promise.all(writes);
    return applied;
  }

  override async update(registration: Registration): Promise<boolean> {
    if (!this.getByIdSync(registration.id)) return false;
    const applied = super.update(registration);
    await this.journal.put('registrations', registration.id, registration);
    return applied;
  }

  override async remove(registrationId: string): Promise<Registration | undefined> {
    if (!this.getByIdSync(registrationId)) return undefined;
    const removed = super.remove(registrationId);
    await this.journal.delete('registrations', registrationId);
    return removed;
  }
}
