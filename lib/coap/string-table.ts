/**
 * A string-keyed table for lookups whose entries come and go with every exchange and are short-lived (messages
 * awaiting an ACK, requests by token).
 *
 * Why not a Map: V8 rebuilds a Map's hash table as entries come and go, and a table that a scavenge promoted
 * keeps the tables made after it (and every entry they hold) alive through the following scavenges until a full
 * GC. Under a steady stream of exchanges that kept about 1,000 finished exchanges alive at each scavenge: a CoAP
 * client at c=64 promoted 4-8 MB per scavenge and spent 10-25 ms in each (bench/read-allocs.ts, --trace-gc-nvp).
 * A null-prototype object used as a dictionary has no such chain: the same load promotes about 0.1 MB per
 * scavenge, in 1 ms, and costs less CPU per request.
 *
 * Not for large tables of long-lived entries: a lookup costs more than a Map's, a miss most (a fresh key string is
 * internalized first; `StringTable.has` was 8% of the server's busy time in a CPU profile of core reads, `node
 * build/bench/run.js --only 3 --cpu-prof`), and long-lived entries are promoted anyway (dedup entries and peer
 * states stay Maps).
 */
/** Keys must not be array indices ('12'): those would come first in `values()`. Ours hold '|' or '#'. */
export class StringTable<V> {
  private entries: Record<string, V | undefined> = Object.create(null) as Record<string, V | undefined>;
  private count = 0;

  get size(): number {
    return this.count;
  }

  get(key: string): V | undefined {
    return this.entries[key];
  }

  has(key: string): boolean {
    return this.entries[key] !== undefined;
  }

  /** `value` must not be undefined. */
  set(key: string, value: V): void {
    const entries = this.entries;
    if (entries[key] === undefined) this.count++;
    entries[key] = value;
  }

  delete(key: string): boolean {
    const entries = this.entries;
    if (entries[key] === undefined) return false;
    delete entries[key];
    this.count--;
    return true;
  }

  /** The values, in the order their keys were added (so long as no key is an array index: see the class). */
  values(): V[] {
    const out: V[] = [];
    const entries = this.entries;
    for (const key in entries) out.push(entries[key]!);
    return out;
  }

  clear(): void {
    this.entries = Object.create(null) as Record<string, V | undefined>;
    this.count = 0;
  }
}
