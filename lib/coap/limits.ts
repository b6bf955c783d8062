/**
 * The CoAP endpoint's request budgets: the per-address token bucket for new incoming requests, and the limits on
 * incoming requests being handled at once (per peer and in total) beyond which requests get 5.03.
 */
import { AddressBuckets } from './address-buckets';
import type { ResolvedCoapEndpointOptions } from './endpoint-options';
import type { PeerState } from './peer';

/** Bound for the addresses tracked: they only protect against misbehaving peers. */
const MAX_TRACKED_ADDRESSES = 65536;

export class RequestLimits {
  private readonly buckets = new AddressBuckets(MAX_TRACKED_ADDRESSES);
  /** Incoming requests being handled, over all peers. */
  inFlightTotal = 0;

  constructor(private readonly o: ResolvedCoapEndpointOptions) {}

  /** Addresses with a bucket now. */
  get trackedAddresses(): number {
    return this.buckets.size;
  }

  /** Takes one request from the address's budget; false when it has none left. */
  takeToken(address: string, now: number): boolean {
    const rate = this.o.maxRequestsPerSecondPerAddress;
    return this.buckets.take(address, rate, rate, now) === 0;
  }

  /** As many requests are being handled as the limits allow (for this peer or in total). */
  overLimit(ps: PeerState): boolean {
    return ps.inFlight >= this.o.maxConcurrentPerPeer || this.inFlightTotal >= this.o.maxConcurrentTotal;
  }

  /** Forgets the buckets that have filled up again. */
  sweep(now: number): void {
    const rate = this.o.maxRequestsPerSecondPerAddress;
    if (rate > 0) this.buckets.forgetFull(rate, rate, now);
  }

  close(): void {
    this.buckets.clear();
    this.inFlightTotal = 0;
  }
}
