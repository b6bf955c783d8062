/**
 * Token buckets keyed by source address: a burst, then a steady rate per second. The CoAP endpoint's request
 * budget and the registration service's budget of new endpoint names both count per address this way. The number
 * of addresses tracked is bounded (the oldest is forgotten: it would start full again anyway), and buckets that
 * have filled up again can be forgotten in housekeeping.
 */

interface Bucket {
  tokens: number;
  /** ms (the caller's clock) of the last refill. */
  at: number;
}

export class AddressBuckets {
  private readonly buckets = new Map<string, Bucket>();

  constructor(private readonly maxAddresses: number) {}

  /** Addresses tracked now. */
  get size(): number {
    return this.buckets.size;
  }

  /**
   * Takes one token of `address`'s bucket (`burst` tokens at most, refilled at `rate` a second) at `now` (ms).
   * Returns 0 when there was one; otherwise the seconds until there is one.
   */
  take(address: string, rate: number, burst: number, now: number): number {
    let bucket = this.buckets.get(address);
    if (bucket === undefined) {
      if (this.buckets.size >= this.maxAddresses) {
        const oldest = this.buckets.keys().next().value;
        if (oldest !== undefined) this.buckets.delete(oldest);
      }
      bucket = { tokens: burst, at: now };
      this.buckets.set(address, bucket);
    } else {
      const refilled = bucket.tokens + ((now - bucket.at) * rate) / 1000;
      bucket.tokens = refilled < burst ? refilled : burst;
      bucket.at = now;
    }
    if (bucket.tokens >= 1) {
      bucket.tokens -= 1;
      return 0;
    }
    return (1 - bucket.tokens) / rate;
  }

  /** Forgets the buckets that are full again at `now` (housekeeping). */
  forgetFull(rate: number, burst: number, now: number): void {
    for (const [address, bucket] of this.buckets)
      if (bucket.tokens + ((now - bucket.at) * rate) / 1000 >= burst) this.buckets.delete(address);
  }

  clear(): void {
    this.buckets.clear();
  }
}
