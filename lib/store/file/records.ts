// The file record store: plain records by a key of their own (firmware jobs, held requests), in the journal.
import type { Journal } from './journal';

/**
 * Plain records (firmware job records ...) by a key of their own, in memory and in the journal. Records are
 * copied when saved: their owner goes on changing its own object.
 */
export class FileRecordStore<T> {
  private readonly records = new Map<string, T>();

  constructor(
    private readonly journal: Journal,
    private readonly collection: string,
    private readonly keyOf: (record: T) => string,
    /** Records may carry secrets (a held write of a device's keys): sealed in the file. */
    secret = false,
  ) {
    for (const [key, value] of journal.declare(collection, { secret, entries: () => this.records.entries() }))
      this.records.set(key, value as T);
  }

  async save(record: T): Promise<void> {
    const copy = structuredClone(record);
    const key = this.keyOf(copy);
    this.records.set(key, copy);
    await this.journal.put(this.collection, key, copy);
  }

  async remove(key: string): Promise<void> {
    if (this.records.delete(key)) await this.journal.delete(this.collection, key);
  }

  async list(): Promise<T[]> {
    return [...this.records.values()].map((record) => structuredClone(record));
  }
}
