/**
 * Admission of new registrations: a cap on how many registrations the server holds, and a budget of new endpoint
 * names per source address (a token bucket: a burst, then a steady rate). A sender inventing endpoint names can then
 * neither fill the server's memory and store, nor take the whole cap at once from one address; thousands of devices
 * behind one carrier NAT or load balancer still register, at the budget's pace. Updates and Registers of endpoints
 * the server already holds are never charged or refused here.
 */
import { AddressBuckets } from '../coap/address-buckets';

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

export class RegistrationAdmission {
  private readonly buckets = new AddressBuckets(MAX_TRACKED_ADDRESSES);

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
    const waitSeconds = this.buckets.take(address, rate, burst, this.now());
    if (waitSeconds === 0) return undefined;
    return {
      kind: 'registration-budget',
      reason:
        `too many new registrations from ${address} (at most ${burst} at once, then ${rate} per second): ` +
        'try again later',
      retryAfterSeconds: Math.max(1, Math.ceil(waitSeconds)),
    };
  }

  /** Forgets the buckets that are full again (housekeeping, once in a while). */
  sweep(): void {
    const rate = this.limits.newRegistrationsPerAddressPerSecond;
    if (rate <= 0) {
      this.buckets.clear();
      return;
    }
    this.buckets.forgetFull(rate, Math.max(1, this.limits.newRegistrationsBurstPerAddress), this.now());
  }

  clear(): void {
    this.buckets.clear();
  }
}
