// The server's store interfaces for registrations and observations (the memory ones are in memory-stores.ts; file
// and Redis ones in lib/store), and what a store that can be out of reach reports.
import { Lwm2mError } from '../errors';
import type { Registration } from './registration';

/**
 * Where registrations live. The server never reaches into a Map directly: a file or Redis store
 * (and several server instances sharing one) plug in here. Every method may be asynchronous.
 */
export interface RegistrationStore {
  /** Adds a registration; returns the one it replaced for the same endpoint name, if any. */
  add(registration: Registration): Promise<Registration | undefined>;
  /** Replaces the registration with the same id; false when it is gone. */
  update(registration: Registration): Promise<boolean>;
  remove(registrationId: string): Promise<Registration | undefined>;
  getById(registrationId: string): Promise<Registration | undefined>;
  getByEndpoint(endpoint: string): Promise<Registration | undefined>;
  /**
   * Optional, for stores that hold registrations in process memory: `getByEndpoint` without a promise
   * (the server looks a device up on every request; this keeps that off the microtask queue).
   */
  getByEndpointSync?(endpoint: string): Registration | undefined;
  /** The registration whose device talks from this transport peer (Send and notifications carry no name). */
  getByPeer(peerKey: string): Promise<Registration | undefined>;
  list(): Promise<Registration[]>;
  size(): Promise<number>;
  /**
   * Optional, for stores shared by several server instances: removes the registration only if it was not
   * updated since `lastUpdateAt` and no lifetime was written into it since `lifetimeWrittenAt`, for the one caller
   * that gets there first (expiry happens once).
   */
  removeIfUnchanged?(
    registrationId: string,
    lastUpdateAt: number,
    lifetimeWrittenAt?: number,
  ): Promise<Registration | undefined>;
  /**
   * Optional, for stores that can be out of reach (Redis): false while changes cannot be stored, and until
   * everything has been read back after an outage. Expiry waits meanwhile (absent: always reachable).
   */
  readonly reachable?: boolean;
  /**
   * Optional, with `reachable`: `listener` is told each time the store is back and read again after an
   * outage, with when it went away and when it was back; returns what stops telling it.
   */
  onRestored?(listener: (outage: StoreOutage) => void): () => void;
  /** Optional, with `reachable`: the last outage any instance sharing the store recorded (read at start). */
  lastOutage?(): StoreOutage | undefined;
}

/** When a store could not be reached (ms since the epoch): from the first failure until all was read back. */
export interface StoreOutage {
  from: number;
  to: number;
}

/**
 * A store (or the cluster link through it) cannot be reached now: nothing was written. Temporary by nature, so
 * a device is told 5.03 (try again later), and a flow gets this error with its cause.
 */
export class StoreUnreachableError extends Lwm2mError {
  override name = 'StoreUnreachableError';
}

/** An observation the server holds on a device, as stored (plain data). */
export interface StoredObservation {
  id: string;
  registrationId: string;
  endpoint: string;
  /** LwM2M path observed ('/3303/0/5700'). */
  path: string;
  /** Token as hex: notifications are matched by (peer, token). */
  token: string;
  peerKey: string;
  /** Content format asked for (Accept), if any. */
  contentFormat?: number;
  /**
   * Who asked for it (node ids): the CoAP observation is cancelled when the last owner lets go. Shared between
   * observations with the same owners (frozen): a change makes a new list.
   */
  owners: readonly string[];
  createdAt: number;
}

export interface ObservationStore {
  add(observation: StoredObservation): Promise<void>;
  update(observation: StoredObservation): Promise<void>;
  remove(observationId: string): Promise<StoredObservation | undefined>;
  getByToken(peerKey: string, tokenHex: string): Promise<StoredObservation | undefined>;
  listByRegistration(registrationId: string): Promise<StoredObservation[]>;
  /** Removes and returns every observation of a registration (it de-registered or was replaced). */
  removeByRegistration(registrationId: string): Promise<StoredObservation[]>;
  list(): Promise<StoredObservation[]>;
  /**
   * Optional, for stores shared by several server instances: the changes other instances make, so this
   * instance matches notifications for observations it did not start.
   */
  watch?(listener: (change: ObservationChange) => void): void;
}

/** An observation stored or removed by another server instance. */
export interface ObservationChange {
  kind: 'stored' | 'removed';
  observation: StoredObservation;
}
