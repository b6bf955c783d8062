/**
 * Registration expiry in O(1) per Register/Update: ids are bucketed by the second they expire in;
 * a sweep takes the buckets that are due and asks the owner whether each id really expired (an
 * Update moves a registration to a later bucket and leaves a stale entry behind, ignored then).
 */
export class ExpiryWheel {
  private readonly buckets = new Map<number, Set<string>>();
  private earliestSecond = Infinity;

  schedule(id: string, expiresAtMs: number): void {
    const second = Math.ceil(expiresAtMs / 1000);
    let bucket = this.buckets.get(second);
    if (!bucket) this.buckets.set(second, (bucket = new Set()));
    bucket.add(id);
    if (second < this.earliestSecond) this.earliestSecond = second;
  }

  /**
   * Moves an id from the bucket of its previous expiry to that of its new one. An Update would otherwise leave an
   * entry behind in the old bucket until that second came (a device updating every lifetime/5 would be in five
   * buckets at once).
   */
  reschedule(id: string, previousExpiresAtMs: number, expiresAtMs: number): void {
    const previousSecond = Math.ceil(previousExpiresAtMs / 1000);
    if (previousSecond !== Math.ceil(expiresAtMs / 1000)) {
      const bucket = this.buckets.get(previousSecond);
      if (bucket !== undefined && bucket.delete(id) && bucket.size === 0) this.buckets.delete(previousSecond);
    }
    this.schedule(id, expiresAtMs);
  }

  /** Ids whose bucket is due at `nowMs` (candidates: the caller checks the real expiry). */
  takeDue(nowMs: number): string[] {
    const nowSecond = Math.floor(nowMs / 1000);
    if (this.earliestSecond > nowSecond) return [];
    const due: string[] = [];
    let earliest = Infinity;
    for (const [second, ids] of this.buckets) {
      if (second <= nowSecond) {
        for (const id of ids) due.push(id);
        this.buckets.delete(second);
      } else if (second < earliest) {
        earliest = second;
      }
    }
    this.earliestSecond = earliest;
    return due;
  }

  clear(): void {
    this.buckets.clear();
    this.earliestSecond = Infinity;
  }
}
