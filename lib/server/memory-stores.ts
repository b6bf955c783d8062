// The memory implementations of the server's store interfaces (stores.ts, queue-mode.ts): registrations,
// observations and plain records in process memory. The default stores, and what the file and Redis stores build on.
import type { Registration } from './registration';
import type { ObservationStore, RegistrationStore, StoredObservation } from './stores';

/** Registrations in process memory, indexed by id, endpoint name and transport peer. */
export class MemoryRegistrationStore implements RegistrationStore {
  private readonly byId = new Map<string, Registration>();
  private readonly byEndpoint = new Map<string, Registration>();
  private readonly byPeer = new Map<string, Registration>();

  async add(registration: Registration): Promise<Registration | undefined> {
    const previous = this.byEndpoint.get(registration.endpoint);
    if (previous) this.unindex(previous);
    this.index(registration);
    return previous;
  }

  async update(registration: Registration): Promise<boolean> {
    const current = this.byId.get(registration.id);
    if (!current) return false;
    // The usual Update keeps its keys: each index then only takes the new record (three Map writes, not six).
    if (current.endpoint !== registration.endpoint || current.peerKey !== registration.peerKey) this.unindex(current);
    this.index(registration);
    return true;
  }

  async remove(registrationId: string): Promise<Registration | undefined> {
    const current = this.byId.get(registrationId);
    if (current) this.unindex(current);
    return current;
  }

  async getById(registrationId: string): Promise<Registration | undefined> {
    return this.byId.get(registrationId);
  }

  getByIdSync(registrationId: string): Registration | undefined {
    return this.byId.get(registrationId);
  }

  async getByEndpoint(endpoint: string): Promise<Registration | undefined> {
    return this.getByEndpointSync(endpoint);
  }

  getByEndpointSync(endpoint: string): Registration | undefined {
    return this.byEndpoint.get(endpoint);
  }

  async getByPeer(peerKey: string): Promise<Registration | undefined> {
    return this.byPeer.get(peerKey);
  }

  async list(): Promise<Registration[]> {
    return [...this.byId.values()];
  }

  async size(): Promise<number> {
    return this.byId.size;
  }

  /** Every registration, without a promise (a persistent store rewriting its file). */
  values(): IterableIterator<Registration> {
    return this.byId.values();
  }

  private index(registration: Registration): void {
    this.byId.set(registration.id, registration);
    this.byEndpoint.set(registration.endpoint, registration);
    this.byPeer.set(registration.peerKey, registration);
  }

  private unindex(registration: Registration): void {
    this.byId.delete(registration.id);
    if (this.byEndpoint.get(registration.endpoint)?.id === registration.id)
      this.byEndpoint.delete(registration.endpoint);
    if (this.byPeer.get(registration.peerKey)?.id === registration.id) this.byPeer.delete(registration.peerKey);
  }
}

/**
 * Observations in process memory, indexed by id and registration. Not by (peer, token): the server matches
 * notifications in its own index (the CoAP layer's), so a third index here would cost every observation a key
 * string and a Map entry (about 90 bytes, bench/heap-per-device.ts) for `getByToken`, which the server never
 * calls; that one goes through every observation instead.
 */
export class MemoryObservationStore implements ObservationStore {
  private readonly byId = new Map<string, StoredObservation>();
  /** A registration's observation ids: the id itself while it has one (most devices: no Set each), a Set beyond. */
  private readonly idsByRegistration = new Map<string, string | Set<string>>();

  async add(observation: StoredObservation): Promise<void> {
    const existing = this.byId.get(observation.id);
    if (existing) this.unindex(existing);
    this.byId.set(observation.id, observation);
    const ids = this.idsByRegistration.get(observation.registrationId);
    if (ids === undefined) this.idsByRegistration.set(observation.registrationId, observation.id);
    else if (typeof ids === 'string') {
      if (ids !== observation.id)
        this.idsByRegistration.set(observation.registrationId, new Set([ids, observation.id]));
    } else ids.add(observation.id);
  }

  async update(observation: StoredObservation): Promise<void> {
    await this.add(observation);
  }

  async remove(observationId: string): Promise<StoredObservation | undefined> {
    const existing = this.byId.get(observationId);
    if (existing) this.unindex(existing);
    return existing;
  }

  getByIdSync(observationId: string): StoredObservation | undefined {
    return this.byId.get(observationId);
  }

  async getByToken(peerKey: string, tokenHex: string): Promise<StoredObservation | undefined> {
    for (const observation of this.byId.values()) {
      if (observation.token === tokenHex && observation.peerKey === peerKey) return observation;
    }
    return undefined;
  }

  async listByRegistration(registrationId: string): Promise<StoredObservation[]> {
    const ids = this.idsByRegistration.get(registrationId);
    if (ids === undefined) return [];
    return (typeof ids === 'string' ? [ids] : [...ids]).map((id) => this.byId.get(id)!).filter(Boolean);
  }

  async removeByRegistration(registrationId: string): Promise<StoredObservation[]> {
    const removed = await this.listByRegistration(registrationId);
    for (const observation of removed) this.unindex(observation);
    return removed;
  }

  async list(): Promise<StoredObservation[]> {
    return [...this.byId.values()];
  }

  /** Every observation, without a promise (a persistent store rewriting its file). */
  values(): IterableIterator<StoredObservation> {
    return this.byId.values();
  }

  private unindex(observation: StoredObservation): void {
    this.byId.delete(observation.id);
    const ids = this.idsByRegistration.get(observation.registrationId);
    if (typeof ids === 'string') {
      if (ids === observation.id) this.idsByRegistration.delete(observation.registrationId);
    } else if (ids !== undefined) {
      ids.delete(observation.id);
      if (ids.size === 0) this.idsByRegistration.delete(observation.registrationId);
    }
  }
}

/** Plain records by a key of their own (held requests ...), in process memory; copies, like the other stores. */
export class MemoryRecordStore<T> {
  private readonly records = new Map<string, T>();

  constructor(private readonly keyOf: (record: T) => string) {}

  async save(record: T): Promise<void> {
    const copy = structuredClone(record);
    this.records.set(this.keyOf(copy), copy);
  }

  async remove(key: string): Promise<void> {
    this.records.delete(key);
  }

  async list(): Promise<T[]> {
    return [...this.records.values()].map((record) => structuredClone(record));
  }
}
