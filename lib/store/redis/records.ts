// The Redis record store: plain records by a key of their own (firmware jobs, held requests), shared, copied when saved.
import type { RedisLink } from './redis-link';

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
