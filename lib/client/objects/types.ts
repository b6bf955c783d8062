/** What an object implementation is (ObjectImplementation) and what it may do with its device (ObjectContext). */
import type { PeerAddress } from '../../transport/types';
import type { DownloadTls } from '../download';
import type { ClientLwm2mVersion } from '../attributes';
import type { InstanceSpec } from '../object-tree';

/** What a built-in object implementation may do with the device it lives in. */
export interface ObjectContext {
  readonly endpointName: string;
  readonly lwm2mVersion: ClientLwm2mVersion;
  readonly serverUri: string;
  readonly lifetime: number;
  readonly binding: string;
  /** Random number in [0, 1) (seeded per device in a fleet). */
  random(): number;
  /** Sets a value like Lwm2mClient.set (observers are notified). */
  set(path: string, value: unknown): void;
  get(path: string): unknown;
  /** Whether the device has (or is being built with) this object: a sensor may depend on its neighbours. */
  hasObject(objectId: number): boolean;
  /** Sends a registration Update now (lifetime / binding are taken from the Server object). */
  triggerUpdate(): void;
  /**
   * Simulated reboot: the device goes silent, forgets its observations, and registers again after a
   * while. `whileDown` runs before it comes back; returning 'stay-down' keeps it silent for good.
   */
  reboot(whileDown?: () => 'stay-down' | void): void;
  /** Bootstrap-Request Trigger (/1/x/9): back to the bootstrap server; undefined when the device has none. */
  readonly triggerBootstrap?: () => void;
  /** Disable (/1/x/4): De-register, and register again after `seconds`. */
  disable(seconds: number): void;
  /** Fetches a package (coap:// through the device's endpoint, http(s)://; `tls`: whom https trusts). */
  download(uri: string, timeoutMs: number, maxSize: number, tls?: DownloadTls): Promise<Buffer>;
  /** Emits an event on the client. */
  emit(event: string, payload: unknown): void;
  localAddress(): PeerAddress | undefined;
}

/** A built-in object: the resources of its instances, and how they change in a simulation. */
export interface ObjectImplementation {
  /** Resources of an instance: values, or ResourceOptions with handlers. */
  instance(instanceId: number): InstanceSpec;
  /** One simulated change of an instance's values (Lwm2mClient.changeValues()). */
  simulate?(instanceId: number): void;
  /** Whether the server may Create / Delete instances (default: for multiple-instance objects). */
  creatable?: boolean;
}
