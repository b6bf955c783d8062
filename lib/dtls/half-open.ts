/**
 * The budget of half-open DTLS handshakes (past the cookie exchange, not finished): bounded per source
 * address and in total, apart from established sessions. When a new handshake finds its address's share
 * (or the total) full, the oldest half-open handshake there makes room: a flood of completed cookie
 * exchanges from one address can then only push handshakes through faster, never lock an honest client
 * of that address out (it needs only its own round trip before it is evicted), and established
 * sessions are never touched.
 */
export class HalfOpenBudget<T> {
  /** Every half-open entry and its address, oldest first (a Map keeps insertion order). */
  private readonly all = new Map<T, string>();
  private readonly byAddress = new Map<string, Set<T>>();

  constructor(
    readonly maxPerAddress: number,
    readonly maxTotal: number,
  ) {
    if (!(maxPerAddress >= 1) || !(maxTotal >= 1)) throw new Error('half-open handshake limits must be at least 1');
  }

  get size(): number {
    return this.all.size;
  }

  countOf(address: string): number {
    return this.byAddress.get(address)?.size ?? 0;
  }

  /**
   * The entry to evict before one more from `address` fits: the oldest of that address when its share is
   * full, else the oldest of all when the total is; undefined when there is room.
   */
  victimFor(address: string): T | undefined {
    const own = this.byAddress.get(address);
    if (own !== undefined && own.size >= this.maxPerAddress) return first(own.values());
    if (this.all.size >= this.maxTotal) return first(this.all.keys());
    return undefined;
  }

  add(entry: T, address: string): void {
    this.all.set(entry, address);
    let own = this.byAddress.get(address);
    if (own === undefined) {
      own = new Set();
      this.byAddress.set(address, own);
    }
    own.add(entry);
  }

  /** Forgets the entry (finished, failed or evicted); false when it was not here. */
  release(entry: T): boolean {
    const address = this.all.get(entry);
    if (address === undefined) return false;
    this.all.delete(entry);
    const own = this.byAddress.get(address);
    own?.delete(entry);
    if (own?.size === 0) this.byAddress.delete(address);
    return true;
  }
}

function first<T>(entries: Iterable<T>): T | undefined {
  for (const entry of entries) return entry;
  return undefined;
}
