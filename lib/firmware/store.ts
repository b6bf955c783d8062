/**
 * Where firmware jobs keep their state, so that a restart of the server (Node-RED redeploy, process restart)
 * does not leave a device half-updated and forgotten. A job saves a FirmwareJobRecord at each transition and
 * removes it when it ends; what is left in the store after a restart are interrupted jobs (see resumeJobs).
 *
 * A record is plain JSON data: the image itself is not in it (it can be megabytes, and a store may be Redis),
 * only its SHA-256, its size and where it can be loaded again. Secrets (an HTTPS private key) are not in it
 * either. Stores for files or Redis implement FirmwareJobStore; MemoryFirmwareJobStore is for tests and for
 * a single process.
 */
import type { FirmwareJobCommon, FirmwareJobState, FirmwareMethod } from './job';

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

/** Records in a Map of this process (JSON copies, like a real store would hold). */
export class MemoryFirmwareJobStore implements FirmwareJobStore {
  private readonly records = new Map<string, string>();

  async save(record: FirmwareJobRecord): Promise<void> {
    this.records.set(record.id, JSON.stringify(record));
  }

  async remove(id: string): Promise<void> {
    this.records.delete(id);
  }

  async list(): Promise<FirmwareJobRecord[]> {
    return [...this.records.values()].map((text) => JSON.parse(text) as FirmwareJobRecord);
  }

  get size(): number {
    return this.records.size;
  }
}
