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
import type { FirmwareJobRecord, FirmwareJobStore } from './job-types';

// The record and the store interface are shared with the job (job-types.ts); their usual import path stays here.
export type { FirmwareImageRef, FirmwareJobRecord, FirmwareJobRecordOptions, FirmwareJobStore } from './job-types';

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
