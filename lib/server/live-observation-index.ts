/**
 * The server's in-memory index of the observations it holds: by registration (which also finds one by id and by
 * target path), and by token for those whose notifications no CoAP listener receives.
 */
import type { IncomingResponse, NotificationSink, ObservationHandle } from '../coap/types';
import type { LwM2mPath } from '../model/path';
import { flatString, toPeer } from '../transport/peer';
import type { GuardState } from './notification-guard';
import type { StoredObservation } from './stores';

/** Where an observation's notifications go (the observation service). */
export interface NotificationReceiver {
  receive(entry: LiveObservation, notification: IncomingResponse): void;
}

/**
 * An observation the server holds, and its CoAP listener: one object per observation, where a listener function
 * bound to a record of its own would cost another 110 bytes or so each (bench/heap-per-device.ts).
 */
export class LiveObservation implements NotificationSink, GuardState {
  /** Present while this process sent the Observe; absent for one adopted after a restart. */
  handle: ObservationHandle | undefined = undefined;
  /**
   * In the index: notifications go on. A flag rather than a lookup by id on every notification, and rather than
   * an index by id at all (the store has one; an entry is found by id through its registration).
   */
  indexed = false;
  /** Notifications that arrived before the observation was stored: held, then passed on in order. */
  private early: IncomingResponse[] | undefined;
  // The notification guard's state (GuardState: what each field holds is said there), set by NotificationGuard.reset.
  intervalMs = 0;
  tokens = 0;
  at = 0;
  windowStart = 0;
  windowCount = 0;
  floodWindows = 0;
  coalescing: GuardState['coalescing'] = undefined;

  constructor(
    private readonly receiver: NotificationReceiver,
    public stored: StoredObservation,
    /** One path, or several for an Observe-Composite (a one-path list is shared: frozen). */
    public parsedPaths: readonly LwM2mPath[],
    /** Its Observe is on its way: notifications are held until `release`. */
    awaitingStore: boolean,
  ) {
    this.early = awaitingStore ? [] : undefined;
  }

  onNotification(notification: IncomingResponse): void {
    if (this.early !== undefined) this.early.push(notification);
    else this.receiver.receive(this, notification);
  }

  /** The observation is stored: what was held goes on, and from now on each notification as it comes. */
  release(): void {
    const held = this.early;
    this.early = undefined;
    if (held !== undefined) for (const notification of held) this.receiver.receive(this, notification);
  }
}

export class LiveObservationIndex {
  /**
   * A registration's live observations (most devices have one: the entry itself, no array). Finds an
   * observation target without a key string per observation, an observation by id (through its registration),
   * and the observations of a registration that ended or moved without going through every observation.
   */
  private readonly byRegistration = new Map<string, LiveObservation | LiveObservation[]>();
  /**
   * Observations whose notifications reach no CoAP listener (adopted from the store after a restart, made by another
   * instance, or whose device moved since), by `peerKey|tokenhex`: `adoptable` finds them here. The others are
   * matched by the CoAP layer's own token index: no second key string and Map entry each (about 90 bytes).
   */
  private readonly adoptableByToken = new Map<string, LiveObservation>();

  add(entry: LiveObservation): void {
    // the same id again (a change from another instance): one entry per observation
    const previous = this.byId(entry.stored.registrationId, entry.stored.id);
    if (previous !== undefined && previous !== entry) this.remove(previous);
    entry.indexed = true;
    // kept as long as the observation: a flat string, not a rope
    if (needsAdoption(entry))
      this.adoptableByToken.set(flatString(tokenKey(entry.stored.peerKey, entry.stored.token)), entry);
    const registrationId = entry.stored.registrationId;
    const others = this.byRegistration.get(registrationId);
    if (others === undefined) this.byRegistration.set(registrationId, entry);
    else if (Array.isArray(others)) others.push(entry);
    else this.byRegistration.set(registrationId, [others, entry]);
  }

  remove(entry: LiveObservation): void {
    entry.indexed = false;
    const token = tokenKey(entry.stored.peerKey, entry.stored.token);
    if (this.adoptableByToken.get(token) === entry) this.adoptableByToken.delete(token);
    const registrationId = entry.stored.registrationId;
    const others = this.byRegistration.get(registrationId);
    if (others === entry) this.byRegistration.delete(registrationId);
    else if (Array.isArray(others)) {
      const at = others.indexOf(entry);
      if (at >= 0) others.splice(at, 1);
      if (others.length === 0) this.byRegistration.delete(registrationId);
    }
  }

  /** Everything out (the entries are no longer indexed). */
  clear(): void {
    for (const entry of this.all()) entry.indexed = false;
    this.adoptableByToken.clear();
    this.byRegistration.clear();
  }

  /** Every live observation (a copy: the caller may change the index meanwhile). */
  all(): LiveObservation[] {
    const all: LiveObservation[] = [];
    for (const entries of this.byRegistration.values()) {
      if (Array.isArray(entries)) all.push(...entries);
      else all.push(entries);
    }
    return all;
  }

  /** A copy of the registration's live observations, oldest first. */
  ofRegistration(registrationId: string): LiveObservation[] {
    const entries = this.byRegistration.get(registrationId);
    return entries === undefined ? [] : Array.isArray(entries) ? [...entries] : [entries];
  }

  /** The live observation with this id, found through its registration's (most have one or a few). */
  byId(registrationId: string, id: string): LiveObservation | undefined {
    const entries = this.byRegistration.get(registrationId);
    if (entries === undefined) return undefined;
    if (!Array.isArray(entries)) return entries.stored.id === id ? entries : undefined;
    return entries.find((entry) => entry.stored.id === id);
  }

  /** The live observation of (registration, target key); the newest when there are several. */
  target(registrationId: string, key: string): LiveObservation | undefined {
    const entries = this.byRegistration.get(registrationId);
    if (entries === undefined) return undefined;
    if (!Array.isArray(entries)) return entries.stored.path === key ? entries : undefined;
    for (let i = entries.length - 1; i >= 0; i--) if (entries[i].stored.path === key) return entries[i];
    return undefined;
  }

  /** An observation whose notifications reach no CoAP listener, by the token they carry. */
  adoptable(peerKey: string, tokenHex: string): LiveObservation | undefined {
    return this.adoptableByToken.get(tokenKey(peerKey, tokenHex));
  }
}

/** Its notifications reach no CoAP listener: it has no handle, or the device moved (NAT) since it was observed. */
function needsAdoption(entry: LiveObservation): boolean {
  const handle = entry.handle;
  return handle === undefined || toPeer(handle.peer).key !== entry.stored.peerKey;
}

function tokenKey(peerKey: string, tokenHex: string): string {
  return `${peerKey}|${tokenHex}`;
}
