/**
 * What a firmware job needs of the world, and nothing more: FirmwareDevice, the one device it updates (read,
 * write, execute, observe, and word of its notifications and of its coming back after a reboot), and
 * PackageDelivery, whoever serves the image when the device pulls it. server-link.ts implements both over an
 * Lwm2mServer; tests implement them with fakes.
 */
import type { Registration } from '../server/registration';
import type { FirmwareJobCommon } from './job-types';

/** What the job reads of a device's registration: where it is (local IP choice) and whether it is DTLS. */
export type FirmwareDeviceRegistration = Pick<Registration, 'endpoint' | 'address' | 'security'>;

export interface FirmwareWriteOptions {
  /** Content format (42 opaque for the package); default: negotiated. */
  format?: number;
  timeoutMs?: number;
  /** Bytes, of the encoded payload; Infinity: none (a firmware push). */
  maxWriteBytes?: number;
  /** Bytes acknowledged by the device so far, for a value sent block by block (Block1). */
  onProgress?: (sentBytes: number, totalBytes: number) => void;
}

export interface FirmwareDeviceListener {
  /** The device notified a value of `path` (as the server decoded it; undefined when it could not). */
  notified(path: string, value: unknown): void;
  /** The device registered again or updated its registration (a reboot ends its observations). */
  back(): void;
}

/**
 * One device, for a firmware job. Failed requests reject with the server's Lwm2mRequestError (the job tells
 * 'timeout', 'not-registered' and 4.04/4.05 apart from other failures).
 */
export interface FirmwareDevice {
  readonly endpoint: string;
  /** Its registration now, or undefined when it is not registered. */
  registration(): Promise<FirmwareDeviceRegistration | undefined>;
  /** Reads `path`: its value. */
  read(path: string, timeoutMs: number | undefined): Promise<unknown>;
  write(path: string, value: string | Buffer, options: FirmwareWriteOptions): Promise<unknown>;
  /** Executes `path` without arguments. */
  execute(path: string, timeoutMs: number | undefined): Promise<unknown>;
  /** Observes `path` for `owner`; the notifications reach the listeners of watch(). */
  observe(path: string, owner: string, timeoutMs: number | undefined): Promise<unknown>;
  /** Cancels what `owner` observes. */
  releaseObservations(owner: string): Promise<void>;
  /** Tells `listener` of the device's notifications and registrations until the returned function is called. */
  watch(listener: FirmwareDeviceListener): () => void;
  /** How long a Block1 write of `bytes` may take (the server's CoAP timing), ms. */
  transferTimeoutMs(bytes: number): number;
}

/** What the package server is told for one pull (as in the job's options, plus who hears of its progress). */
export type PackagePublishOptions = Pick<FirmwareJobCommon, 'baseUri' | 'pullVia' | 'httpPort' | 'httpsCertificate'> & {
  /** A download of the package moved (every Block2 block, every HTTP slice). */
  onProgress: (sentBytes: number, totalBytes: number) => void;
};

/** A package being served: the URI the device pulls it from, until expired. */
export interface PackagePublication {
  readonly uri: string;
  /** Stops serving it (idempotent). */
  expire(): void;
}

/** Serves images for devices to pull. */
export interface PackageDelivery {
  /**
   * Serves `image` for `device`; rejects with the job's Failure (a cause) when it cannot: no listener the
   * device can reach, the HTTP(S) server does not start, no route to the device.
   */
  publish(
    image: Buffer,
    device: FirmwareDeviceRegistration,
    options: PackagePublishOptions,
  ): Promise<PackagePublication>;
}

/** The device and package delivery a FirmwareJob runs against (instead of an Lwm2mServer). */
export interface FirmwareJobLink {
  readonly device: FirmwareDevice;
  readonly packages: PackageDelivery;
}
