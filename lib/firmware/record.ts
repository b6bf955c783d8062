/**
 * A firmware job's record in its FirmwareJobStore: JobRecorder builds the FirmwareJobRecord, saves it after
 * each transition (saves chained, in order) and removes it when the job ends; a failing store is reported,
 * never fatal to the job.
 */
import { createHash } from 'node:crypto';
import type { FirmwareJobOptions, FirmwareJobRecord, FirmwareJobState, FirmwareProgress } from './job-types';

/** What the job knows besides its options when it saves its record. */
export interface JobFacts {
  phase: FirmwareJobState;
  startedAt: number;
  method?: 'push' | 'pull';
  deviceState?: number;
  deviceResult?: number;
}

export class JobRecorder {
  private record?: FirmwareJobRecord;
  private saving: Promise<void> = Promise.resolve();

  constructor(
    private readonly id: string,
    private readonly options: FirmwareJobOptions,
    /** A save or remove failed (the job goes on). */
    private readonly storeError: (err: Error) => void,
  ) {}

  /** Saves the record after a transition (in order: saves are chained). 'done' and 'failed' are not saved. */
  persist(event: FirmwareProgress, facts: JobFacts): void {
    const store = this.options.store;
    if (!store || facts.startedAt === 0) return;
    const now = Date.now();
    const record = (this.record ??= this.newRecord(now, facts));
    record.state = event.state;
    record.detail = event.detail;
    if (event.percent !== undefined) record.percent = event.percent;
    record.updatedAt = now;
    if (facts.method) record.deliveredBy = facts.method;
    if (facts.deviceState !== undefined) record.deviceState = facts.deviceState;
    if (facts.deviceResult !== undefined) record.deviceResult = facts.deviceResult;
    if (event.state === 'done' || event.state === 'failed') return;
    const snapshot = structuredClone(record);
    this.saving = this.saving
      .then(() => store.save(snapshot))
      .catch((err: unknown) => void this.storeError(err as Error));
  }

  /** The job ended: its record goes. */
  async forget(): Promise<void> {
    const store = this.options.store;
    if (!store) return;
    this.saving = this.saving
      .then(() => store.remove(this.id))
      .catch((err: unknown) => void this.storeError(err as Error));
    await this.saving;
  }

  private newRecord(now: number, facts: JobFacts): FirmwareJobRecord {
    const o = this.options;
    const record: FirmwareJobRecord = {
      id: this.id,
      endpoint: o.endpoint,
      method: o.method ?? 'auto',
      state: facts.phase,
      detail: '',
      attempts: o.attempt ?? 1,
      startedAt: facts.startedAt || now,
      updatedAt: now,
      options: {},
    };
    if (o.campaignId !== undefined) record.campaignId = o.campaignId;
    if (o.resumed !== undefined) record.resumed = o.resumed;
    if (o.image) {
      record.image = { sha256: createHash('sha256').update(o.image).digest('hex'), size: o.image.length };
      if (o.imageSource !== undefined) record.image.source = o.imageSource;
    }
    if (o.uri !== undefined) record.uri = o.uri;
    const keep = [
      'expectedPackageName',
      'expectedPackageVersion',
      'expectedFirmwareVersion',
      'baseUri',
      'pullVia',
      'httpPort',
      'timeouts',
      'pollIntervalMs',
      'observe',
    ] as const;
    const options: Record<string, unknown> = {};
    for (const key of keep) if (o[key] !== undefined) options[key] = structuredClone(o[key]);
    record.options = options as FirmwareJobRecord['options'];
    return record;
  }
}
