/**
 * Admission of new registrations: a cap on how many registrations the server holds, and a budget of new endpoint
 * names per source address (a token bucket: a burst, then a steady rate). A sender inventing endpoint names can then
 * neither fill the server's memory and store, nor take the whole cap at once from one address; thousands of devices
 * behind one carrier NAT or load balancer still register, at the budget's pace. Updates and Registers of endpoints
 * the server already holds are never charged or refused here.
 */

export interface RegistrationLimits {
  /** Registrations held at most; a Register of a new endpoint beyond it gets 5.03. 0 = no cap. */
  maxRegistrations: number;
  /** New endpoints one source address may register per second, once its burst is spent. 0 = no budget. */
  newRegistrationsPerAddressPerSecond: number;
  /** New endpoints one source address may register at once (the bucket's size). */
  newRegistrationsBurstPerAddress: number;
}

/** Why a new registration was refused, and how long the device should wait (Max-Age, seconds). */
export interface AdmissionRefusal {
  kind: 'registration-cap' | 'registration-budget';
  reason: string;
  retryAfterSeconds: number;
}

/** How long a device is told to wait when the server is full: registrations only go away by expiring. */
const FULL_RETRY_SECONDS = 60;
/** Bound of the per-address buckets kept (the oldest is forgotten: it started full again anyway). */
const MAX_TRACKED_ADDRESSES = 65_536;

interface Bucket {
  tokens: number;
  /** ms (the clock's) of the last refill. */
  at: number;
}

export class RegistrationAdmission {
  private readonly buckets = new Map<string, Bucket>();

  constructor(
    private readonly limits: RegistrationLimits,
    private readonly now: () => number = () => performance.now(),
  ) {}

  /**
   * Whether a Register of a new endpoint from `address` may go on, with `held` registrations in the server (those
   * being added included). Takes one of the address's tokens when it may.
   */
  admit(address: string, held: number): AdmissionRefusal | undefined {
    const cap = this.limits.maxRegistrations;
    if (cap > 0 && held >= cap) {
      return {
        kind: 'registration-cap',
        reason: `the server holds ${held} registrations, its limit: no new endpoint until some expire or de-register`,
        retryAfterSeconds: FULL_RETRY_SECONDS,
      };
    }
    const rate = this.limits.newRegistrationsPerAddressPerSecond;
    if (rate <= 0) return undefined;
    const burst = Math.max(1, this.limits.newRegistrationsBurstPerAddress);
    const now = this.now();
    let bucket = this.buckets.get(address);
    if (bucket === undefined) {
      if (this.buckets.size >= MAX_TRACKED_ADDRESSES) {
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
      return undefined;
    }
    return {
      kind: 'registration-budget',
      reason:
        `too many new registrations from ${address} (at most ${burst} at once, then ${rate} per second): ` +
        'try again later',
      retryAfterSeconds: Math.max(1, Math.ceil((1 - bucket.tokens) / rate)),
    };
  }

  /** Forgets the buckets that are full again (housekeeping, once in a while). */
  sweep(): void {
    const rate = this.limits.newRegistrationsPerAddressPerSecond;
    if (rate <= 0) {
      this.buckets.clear();
      return;
    }
    const burst = Math.max(1, this.limits.newRegistrationsBurstPerAddress);
    const now = this.now();
    for (const [address, bucket] of this.buckets)
      if (bucket.tokens + ((now - bucket.at) * rate) / 1000 >= burst) this.buckets.delete(address);
  }

  clear(): void {
    this.buckets.clear();
  }
}
