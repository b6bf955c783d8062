/**
 * Token buckets keyed by source address: a burst, then a steady rate per second. The CoAP endpoint's request
 * budget and the registration service's budget of new endpoint names both count per address this way. The number
 * of addresses tracked is bounded (the oldest is forgotten: it would start full again anyway), and buckets that
 * have filled up again can be forgotten in housekeeping. An IPv6 sender is counted by its /64 (one subscriber or
 * site, as one IPv4 address behind a NAT is): a host picks any address of its /64 at will, so per-/128 budgets
 * would be none at all.
 */

interface Bucket {
  tokens: number;
  /** ms (the caller's clock) of the last refill. */
  at: number;
}

export class AddressBuckets {
  private readonly buckets = new Map<string, Bucket>();
  /**
   * IPv6 sender -> its key (budgetKeyOfIpv6), remembered: working it out takes about a microsecond, and the CoAP
   * endpoint asks for every request. Bounded like the buckets (emptied when full).
   */
  private readonly ipv6Keys = new Map<string, string>();

  constructor(private readonly maxAddresses: number) {}

  /** Addresses tracked now. */
  get size(): number {
    return this.buckets.size;
  }

  /**
   * Takes one token of `address`'s bucket (`burst` tokens at most, refilled at `rate` a second) at `now` (ms).
   * Returns 0 when there was one; otherwise the seconds until there is one.
   */
  take(sender: string, rate: number, burst: number, now: number): number {
    const address = sender.includes(':') ? this.ipv6Key(sender) : sender;
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
    this.ipv6Keys.clear();
  }

  private ipv6Key(sender: string): string {
    let key = this.ipv6Keys.get(sender);
    if (key === undefined) {
      if (this.ipv6Keys.size >= this.maxAddresses) this.ipv6Keys.clear();
      key = budgetKeyOfIpv6(sender);
      this.ipv6Keys.set(sender, key);
    }
    return key;
  }
}

/**
 * The key an IPv6 address is counted under: its /64 prefix (`2001:db8:1:2::/64`); an IPv4-mapped address
 * (`::ffff:192.0.2.1`) counts as its IPv4 address. Anything unparsable counts as itself.
 */
export function budgetKeyOfIpv6(address: string): string {
  const zone = address.indexOf('%');
  const bare = zone >= 0 ? address.slice(0, zone) : address;
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(bare);
  if (mapped) return mapped[1];
  const halves = bare.split('::');
  if (halves.length > 2) return address;
  const head = halves[0] === '' ? [] : halves[0].split(':');
  const tail = halves.length === 2 && halves[1] !== '' ? halves[1].split(':') : [];
  const missing = 8 - head.length - tail.length;
  if (missing < 0 || (halves.length === 1 && missing !== 0)) return address;
  const groups = [...head, ...new Array<string>(missing).fill('0'), ...tail];
  return `${groups
    .slice(0, 4)
    .map((group) => (parseInt(group, 16) || 0).toString(16))
    .join(':')}::/64`;
}
