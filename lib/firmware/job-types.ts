/**
 * The vocabulary a firmware job shares with its callers and its store: the options it is given, its phases,
 * its progress events, its result and error, and the record it saves (FirmwareJobRecord) with the store
 * interface that keeps it. Here rather than in job.ts or store.ts so that both import it one way.
 */
import { Lwm2mError } from '../errors';
import type { KeyObject } from 'node:crypto';
import type { FirmwareFailureCause } from './results';

export type FirmwareMethod = 'push' | 'pull' | 'auto';

export type FirmwareJobState =
  | 'starting'
  | 'resetting'
  | 'downloading'
  | 'downloaded'
  | 'updating'
  | 'deferred'
  | 'verifying'
  | 'cancelling'
  | 'done'
  | 'failed';

export interface FirmwareTimeouts {
  /** An ordinary request (read, small write, execute), ms; default: the server's CoAP timing. */
  requestMs?: number;
  /**
   * From the start of the download to State Downloaded, ms. Default: push, `requestTimeoutFor(image size)` of
   * the server's CoAP timing plus one minute; pull, 30 minutes.
   */
  downloadMs?: number;
  /** From Execute Update until the device is back with its Update Result, ms (default 10 minutes). */
  updateMs?: number;
  /**
   * After the device deferred the update (Update Result 11), how long to wait for it to apply the package by
   * itself, ms (default 24 hours; capped by totalMs). Once it starts (State Updating), updateMs applies again.
   */
  deferredMs?: number;
  /**
   * While the device defers, execute Update (/5/0/2) again this often, ms (default: never). Some devices (Anjay)
   * expect the server to ask again rather than apply a deferred package by themselves.
   */
  deferredRetryMs?: number;
  /** A limit for the whole job, ms (default none): every wait ends by then. */
  totalMs?: number;
}

export interface FirmwareJobCommon {
  endpoint: string;
  /** 'auto' (default): what /5/0/9 Delivery Method allows, push when the device takes both and there is an image. */
  method?: FirmwareMethod;
  /** Checked in /5/0/6 Package Name once the device has downloaded the package (before Update). */
  expectedPackageName?: string;
  /** Checked in /5/0/7 Package Version once the device has downloaded the package (before Update). */
  expectedPackageVersion?: string;
  /** Checked in /3/0/3 Firmware Version after the update. */
  expectedFirmwareVersion?: string;
  /**
   * Pull of an image: the scheme, host and port devices reach this server on (`coap://fota.example.com:5683`);
   * the path `/fw/<random>` is appended. Default: the server's bound address (coap://, or for a device
   * registered over DTLS coaps:// with the DTLS listener's port), or for a wildcard bind the local address that
   * routes to the device.
   */
  baseUri?: string;
  /**
   * Pull of an image: served over CoAP by the server's listeners ('coap', the default; coaps:// for a DTLS
   * device), by a small HTTP server of this Lwm2mServer ('http': `http://<address>:<port>/fw/<random>`), or
   * by a small HTTPS one ('https': `https://...`, see httpsCertificate), started on first use and closed when
   * no package is served over it any more.
   */
  pullVia?: 'coap' | 'http' | 'https';
  /**
   * pullVia 'http' / 'https': the HTTP(S) server's port when this job starts it (0, the default: a free port);
   * it binds to the CoAP listener's address. A running server is reused as it is.
   */
  httpPort?: number;
  /**
   * pullVia 'https': the certificate (chain, leaf first, PEM or DER) and private key of the HTTPS server when
   * this job starts it. Default: the Lwm2mServer's DTLS certificate (`options.dtls.certificate`). Devices
   * verify it: its names must cover the host of the URI (set baseUri to a name it has).
   */
  httpsCertificate?: { chain: Array<string | Buffer>; privateKey: string | Buffer | KeyObject };
  timeouts?: FirmwareTimeouts;
  /**
   * How often State and Update Result are read while waiting, ms (default 5000): the only source when Observe
   * failed; while observed, a download is polled 4 times less often; after Update always (the reboot ends observations).
   */
  pollIntervalMs?: number;
  /** Observe /5/0/3 and /5/0/5 (default true); polls only when false. */
  observe?: boolean;
  /** Reset the device's state machine first even when it is Idle (a retry does). Default: only when not Idle. */
  alwaysReset?: boolean;
  /** The job's id (default: a new random one; a resumed job keeps the id of its record). */
  id?: string;
  /** Saves a FirmwareJobRecord at each transition and removes it at the end (see store.ts). */
  store?: FirmwareJobStore;
  /** Recorded in the store: the campaign the job is part of. */
  campaignId?: string;
  /** Recorded in the store: the attempt number within the campaign (default 1). */
  attempt?: number;
  /**
   * Recorded in the store: where the image was loaded from (a file path or an http(s):// URL), so that the
   * job can be resumed after a restart. Without it, an interrupted push or served pull cannot be resumed.
   */
  imageSource?: string;
  /**
   * Continues a job interrupted in this phase (a record's state; see resumeJobs): the device's State decides.
   * Downloaded: Update is executed; Updating: the job waits for the device to come back; Idle after an
   * interrupted update: its Update Result is the outcome; anything else: delivery starts over.
   */
  resumeFrom?: FirmwareJobState;
  /** Recorded in the store for a resumed job: how many times it was resumed (resumeJobs sets it). */
  resumed?: number;
}

export type FirmwareJobOptions = FirmwareJobCommon &
  ({ image: Buffer; uri?: undefined } | { uri: string; image?: undefined });

export interface FirmwareProgress {
  endpoint: string;
  state: FirmwareJobState;
  detail: string;
  percent?: number;
}

export interface FirmwareJobResult {
  endpoint: string;
  ok: boolean;
  /** The last Update Result (/5/0/5) read. */
  result: number | undefined;
  resultText: string;
  /** /3/0/3 after the update. */
  firmwareVersion?: string;
  method?: 'push' | 'pull';
  durationMs: number;
  /** Why it failed (ok false). */
  cause?: FirmwareFailureCause;
  /** The phase it failed in (ok false). */
  phase?: FirmwareJobState;
}

export class FirmwareJobError extends Lwm2mError {
  override name = 'FirmwareJobError';
  constructor(
    message: string,
    override readonly cause: FirmwareFailureCause,
    readonly result: FirmwareJobResult,
  ) {
    super(message, cause);
  }
}

export interface FirmwareJobEvents {
  progress: [progress: FirmwareProgress];
  done: [result: FirmwareJobResult];
  failed: [error: FirmwareJobError];
  /** Saving or removing the job's record failed (the job goes on). */
  storeError: [error: Error];
}

/** The image of a job, by reference. */
export interface FirmwareImageRef {
  /** SHA-256 of the bytes, hex: a reloaded image must match it. */
  sha256: string;
  size: number;
  /** Where the bytes can be loaded again: a file path or an http(s):// URL; absent when they came from a msg. */
  source?: string;
}

/** The job options a record keeps: what a resumed job needs besides the image (all JSON). */
export type FirmwareJobRecordOptions = Pick<
  FirmwareJobCommon,
  | 'expectedPackageName'
  | 'expectedPackageVersion'
  | 'expectedFirmwareVersion'
  | 'baseUri'
  | 'pullVia'
  | 'httpPort'
  | 'timeouts'
  | 'pollIntervalMs'
  | 'observe'
>;

export interface FirmwareJobRecord {
  /** The job's id (a resumed job keeps it). */
  id: string;
  endpoint: string;
  /** The campaign the job belongs to, if any. */
  campaignId?: string;
  /** The method asked for. */
  method: FirmwareMethod;
  /** The method chosen once the device was asked (push or pull). */
  deliveredBy?: 'push' | 'pull';
  /** The job's phase at the last transition. */
  state: FirmwareJobState;
  /** The last progress detail. */
  detail: string;
  /** The last transfer progress, 0 to 100. */
  percent?: number;
  /** Attempt number within its campaign (1 for a lone job). */
  attempts: number;
  /** How many times the job was resumed after a restart. */
  resumed?: number;
  /** ms since the epoch. */
  startedAt: number;
  updatedAt: number;
  /** The image pushed or served (absent when the device pulls a URI of its own). */
  image?: FirmwareImageRef;
  /** The URI the device pulls (a job given a URI). */
  uri?: string;
  /** The device's last reported /5/0/3 State and /5/0/5 Update Result. */
  deviceState?: number;
  deviceResult?: number;
  options: FirmwareJobRecordOptions;
}

/** Persistence of firmware job records. Implementations must store copies (records are mutated by jobs). */
export interface FirmwareJobStore {
  /** Creates or replaces the record with this id. */
  save(record: FirmwareJobRecord): Promise<void>;
  /** Removes it (no error when there is none). */
  remove(id: string): Promise<void>;
  /** Every record held. */
  list(): Promise<FirmwareJobRecord[]>;
}
