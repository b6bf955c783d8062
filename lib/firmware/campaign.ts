/**
 * A firmware campaign: one image (or URI) for many devices, `concurrency` jobs at a time, each device retried
 * up to `retries` times (its state machine reset first), with pause/resume/cancel and a summary at the end.
 * A queue-mode device needs nothing special: the server holds its requests until it wakes, so its job just
 * needs timeouts long enough for its sleep (`job.timeouts`).
 */
import { randomBytes } from 'node:crypto';
import { EventEmitter } from 'node:events';
import type { Lwm2mServer } from '../server/lwm2m-server';
import { FirmwareJob } from './job';
import {
  FirmwareJobError,
  type FirmwareJobOptions,
  type FirmwareJobResult,
  type FirmwareJobStore,
  type FirmwareProgress,
} from './job-types';
import type { FirmwareFailureCause } from './results';

/** What every job of the campaign gets, besides its endpoint. */
export type FirmwareCampaignJobOptions = FirmwareJobOptions extends infer O
  ? O extends unknown
    ? Omit<O, 'endpoint'>
    : never
  : never;

export interface FirmwareCampaignOptions {
  endpoints: string[];
  /** Image or URI, method, expected versions, timeouts: as for a FirmwareJob. */
  job: FirmwareCampaignJobOptions;
  /** Jobs running at once (default 10). */
  concurrency?: number;
  /** Further attempts per device after a failure (default 1); not after a cancel or a verification failure. */
  retries?: number;
  /** Wait before a retry, ms (default 1000). */
  retryDelayMs?: number;
  /** The campaign's id, in its jobs' records (default: a new random one). */
  id?: string;
  /** Every job saves its record here (with the campaign id and its attempt number); see resumeJobs. */
  store?: FirmwareJobStore;
}

export interface FirmwareDeviceOutcome {
  endpoint: string;
  ok: boolean;
  attempts: number;
  result: FirmwareJobResult;
  /** The last error's message (ok false). */
  error?: string;
}

export interface FirmwareCampaignSummary {
  total: number;
  succeeded: number;
  failed: number;
  /** Failed devices by the cause of their last attempt ('cancelled' also counts devices never started). */
  byCause: Partial<Record<FirmwareFailureCause, number>>;
  devices: FirmwareDeviceOutcome[];
  durationMs: number;
  cancelled: boolean;
}

export interface FirmwareCampaignEvents {
  /** A device's job starts (attempt 1, or a retry). */
  start: [info: { endpoint: string; attempt: number }];
  /** A job's progress. */
  progress: [progress: FirmwareProgress];
  /** A device is finished (success, or failure after its last attempt). */
  device: [outcome: FirmwareDeviceOutcome];
  /** A device failed and is tried again. */
  retry: [info: { endpoint: string; attempt: number; error: FirmwareJobError }];
  paused: [];
  resumed: [];
}

const NO_RETRY: ReadonlySet<FirmwareFailureCause> = new Set(['cancelled', 'verification-failed']);

export class FirmwareCampaign extends EventEmitter<FirmwareCampaignEvents> {
  readonly id: string;
  private readonly queue: string[];
  private readonly active = new Map<string, FirmwareJob>();
  private readonly outcomes: FirmwareDeviceOutcome[] = [];
  private readonly concurrency: number;
  private readonly retries: number;
  private readonly retryDelayMs: number;
  private paused = false;
  private cancelled = false;
  private running?: Promise<FirmwareCampaignSummary>;
  private wake?: () => void;
  private readonly retryTimers = new Map<NodeJS.Timeout, () => void>();

  constructor(
    private readonly server: Lwm2mServer,
    private readonly options: FirmwareCampaignOptions,
  ) {
    super();
    this.id = options.id ?? 'campaign-' + randomBytes(6).toString('hex');
    const endpoints = [...new Set(options.endpoints)];
    if (endpoints.length === 0) throw new TypeError('a firmware campaign needs endpoints');
    this.queue = endpoints;
    this.concurrency = Math.max(1, Math.floor(options.concurrency ?? 10));
    this.retries = Math.max(0, Math.floor(options.retries ?? 1));
    this.retryDelayMs = Math.max(0, options.retryDelayMs ?? 1000);
  }

  /** Runs the campaign (once; later calls return the same promise). */
  run(): Promise<FirmwareCampaignSummary> {
    this.running ??= this.execute();
    return this.running;
  }

  /** No new device starts until resume(); running ones go on. */
  pause(): void {
    if (this.paused || this.cancelled) return;
    this.paused = true;
    this.emit('paused');
  }

  resume(): void {
    if (!this.paused) return;
    this.paused = false;
    this.emit('resumed');
    this.wake?.();
  }

  get isPaused(): boolean {
    return this.paused;
  }

  /** Devices waiting, running, finished. */
  get counts(): { waiting: number; running: number; finished: number } {
    return { waiting: this.queue.length, running: this.active.size, finished: this.outcomes.length };
  }

  /** Cancels the running jobs (on the devices too) and starts no more; resolves with the summary. */
  async cancel(): Promise<FirmwareCampaignSummary | undefined> {
    this.cancelled = true;
    this.paused = false;
    this.wake?.();
    for (const [timer, resolve] of this.retryTimers) {
      clearTimeout(timer);
      resolve();
    }
    this.retryTimers.clear();
    await Promise.all([...this.active.values()].map((job) => job.cancel()));
    return this.running?.catch(() => undefined);
  }

  private async execute(): Promise<FirmwareCampaignSummary> {
    const started = Date.now();
    const total = this.queue.length;
    const workers: Array<Promise<void>> = [];
    for (let i = 0; i < Math.min(this.concurrency, total); i++) workers.push(this.worker());
    await Promise.all(workers);
    for (const endpoint of this.queue.splice(0)) this.finish(endpoint, 0, notStarted(endpoint));
    const byCause: Partial<Record<FirmwareFailureCause, number>> = {};
    for (const outcome of this.outcomes) {
      if (outcome.ok || !outcome.result.cause) continue;
      byCause[outcome.result.cause] = (byCause[outcome.result.cause] ?? 0) + 1;
    }
    const succeeded = this.outcomes.filter((o) => o.ok).length;
    return {
      total,
      succeeded,
      failed: this.outcomes.length - succeeded,
      byCause,
      devices: this.outcomes,
      durationMs: Date.now() - started,
      cancelled: this.cancelled,
    };
  }

  private async worker(): Promise<void> {
    for (;;) {
      while (this.paused && !this.cancelled) await new Promise<void>((resolve) => (this.wake = resolve));
      if (this.cancelled) return;
      const endpoint = this.queue.shift();
      if (endpoint === undefined) return;
      await this.device(endpoint);
    }
  }

  private async device(endpoint: string): Promise<void> {
    for (let attempt = 1; ; attempt++) {
      if (this.cancelled) {
        this.finish(endpoint, attempt - 1, notStarted(endpoint), 'the campaign was cancelled');
        return;
      }
      const job = new FirmwareJob(this.server, {
        ...this.options.job,
        endpoint,
        alwaysReset: attempt > 1 || this.options.job.alwaysReset,
        ...(this.options.store ? { store: this.options.store, campaignId: this.id, attempt } : {}),
      } as FirmwareJobOptions);
      job.on('progress', (progress) => this.emit('progress', progress));
      this.active.set(endpoint, job);
      this.emit('start', { endpoint, attempt });
      try {
        const result = await job.run();
        this.finish(endpoint, attempt, result);
        return;
      } catch (err) {
        const error =
          err instanceof FirmwareJobError
            ? err
            : new FirmwareJobError(String(err), 'request-failed', { ...notStarted(endpoint), cause: 'request-failed' });
        if (attempt > this.retries || this.cancelled || NO_RETRY.has(error.cause)) {
          this.finish(endpoint, attempt, error.result, error.message);
          return;
        }
        this.emit('retry', { endpoint, attempt, error });
        await this.delay(this.retryDelayMs);
      } finally {
        this.active.delete(endpoint);
      }
    }
  }

  private finish(endpoint: string, attempts: number, result: FirmwareJobResult, error?: string): void {
    const outcome: FirmwareDeviceOutcome = { endpoint, ok: result.ok, attempts, result };
    if (error !== undefined) outcome.error = error;
    this.outcomes.push(outcome);
    this.emit('device', outcome);
  }

  private delay(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.retryTimers.delete(timer);
        resolve();
      }, ms);
      this.retryTimers.set(timer, resolve);
    });
  }
}

function notStarted(endpoint: string): FirmwareJobResult {
  return { endpoint, ok: false, result: undefined, resultText: 'not started', durationMs: 0, cause: 'cancelled' };
}
