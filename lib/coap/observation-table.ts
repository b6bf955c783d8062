/**
 * The observations we hold as the observer (RFC 7641 §3), by `peerKey|tokenhex`, and the tokens of recently
 * cancelled ones (their notifications get RST). Shared by the exchange layer, which establishes observations from
 * Observe registrations, and the observer side (observe-client.ts), which receives their notifications.
 */
import type { Peer } from '../transport/types';
import type { EndpointContext } from './context';
import { Observation, type ObservationOwner } from './peer';
import { tellListener, type IncomingResponse, type NotificationListener, type OutgoingRequest } from './types';

/** Bound for the cancelled tokens remembered: they only protect against misbehaving peers. */
const MAX_CANCELLED_TOKENS = 65536;

export class ObservationTable {
  private readonly observations = new Map<string, Observation>();
  /** Tokens of cancelled observations (`peerKey|tokenhex` -> expiry): their notifications get RST. */
  private readonly cancelled = new Map<string, number>();

  constructor(
    private readonly ctx: EndpointContext,
    private readonly owner: ObservationOwner,
  ) {}

  get size(): number {
    return this.observations.size;
  }

  get(tokenKey: string): Observation | undefined {
    return this.observations.get(tokenKey);
  }

  /** The token is held by a live observation or was cancelled recently: not to be used for a new request. */
  holds(tokenKey: string): boolean {
    return this.observations.has(tokenKey) || this.cancelled.has(tokenKey);
  }

  wasCancelled(tokenKey: string): boolean {
    return this.cancelled.has(tokenKey);
  }

  /** A new observation (not yet live: `add` makes it so). */
  create(
    peer: Peer,
    tokenKey: string,
    listener: NotificationListener,
    request: OutgoingRequest | undefined,
  ): Observation {
    return new Observation(this.owner, peer, tokenKey, listener, request);
  }

  /** Makes an observation live: its notifications are accepted (its token is no longer a cancelled one). */
  add(obs: Observation): void {
    this.cancelled.delete(obs.tokenKey);
    this.observations.set(obs.tokenKey, obs);
  }

  /** Forgets a token's cancellation (it is about to be observed again). */
  forgetCancelled(tokenKey: string): void {
    this.cancelled.delete(tokenKey);
  }

  /** Ends an observation here (its Block2 fetch, if any, is the exchange layer's to end). */
  remove(obs: Observation): void {
    obs.active = false;
    if (this.observations.get(obs.tokenKey) === obs) this.observations.delete(obs.tokenKey);
  }

  /** Remembers the token of an ended observation until `until`, so that its late notifications get RST. */
  markCancelled(tokenKey: string, until: number): void {
    if (this.cancelled.size >= MAX_CANCELLED_TOKENS) {
      const oldest = this.cancelled.keys().next().value;
      if (oldest !== undefined) this.cancelled.delete(oldest);
    }
    this.cancelled.delete(tokenKey);
    this.cancelled.set(tokenKey, until);
  }

  /** Hands a notification (or the observation's last response) to its listener. */
  deliver(obs: Observation, resp: IncomingResponse): void {
    try {
      tellListener(obs.listener, resp);
    } catch (err) {
      this.ctx.reportError(err);
    }
  }

  sweep(now: number): void {
    for (const [k, exp] of this.cancelled) if (exp <= now) this.cancelled.delete(k);
  }

  /** Every observation inactive (at close). */
  deactivateAll(): void {
    for (const obs of this.observations.values()) obs.active = false;
  }

  close(): void {
    this.observations.clear();
    this.cancelled.clear();
  }
}
