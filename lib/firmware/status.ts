/**
 * What a device last told a firmware job about its object 5: /5/0/3 State and /5/0/5 Update Result, fed by
 * Observe notifications (or polls when Observe fails), reads, and its registrations (it came back after a
 * reboot); and waiting until they say what the job waits for, within a deadline.
 */
import type { FirmwareDevice } from './device';
import { Failure } from './failure';
import type { FirmwareJobCommon, FirmwareJobState } from './job-types';
import { FirmwareUpdateState as S, STATE_TEXT } from './results';

/** /5/0/5 Update Result 11: the device deferred the update (object 5 v1.1+). */
export const RESULT_DEFERRED = 11;

/** What the status needs of its job. */
export interface StatusOwner {
  /** The job's id: it owns the observations. */
  readonly id: string;
  /** Races a request against the job's cancel. */
  race<T>(promise: Promise<T>): Promise<T>;
  /** The job was asked to cancel. */
  cancelled(): boolean;
  /** A progress event in the job's current phase (a changed State or Update Result, Observe failing). */
  tell(detail: string): void;
}

export class DeviceStatus {
  /** What the device last reported. */
  state?: number;
  result?: number;
  /** Bumped on every State/Result report, to tell fresh reports from old ones. */
  reports = 0;
  /** The device registered or updated its registration since this was last cleared. */
  cameBack = false;
  /** The device was seen in Updating (3) since the Update was executed. */
  sawUpdating = false;
  /** Every wait ends by then (timeouts.totalMs). */
  overallDeadline = Infinity;
  private observing = false;
  private wake?: () => void;
  private unwatch?: () => void;

  constructor(
    private readonly device: FirmwareDevice,
    private readonly options: FirmwareJobCommon,
    private readonly job: StatusOwner,
  ) {}

  /** Ends the current wait early (a cancel). */
  wakeUp(): void {
    this.wake?.();
  }

  listen(): void {
    this.unwatch = this.device.watch({
      notified: (path, value) => {
        if (value === undefined) return;
        if (path === '/5/0/3') this.report(Number(value), undefined);
        else if (path === '/5/0/5') this.report(undefined, Number(value));
      },
      back: () => {
        this.cameBack = true;
        this.wake?.();
      },
    });
  }

  async stopListening(): Promise<void> {
    this.unwatch?.();
    this.unwatch = undefined;
    if (!this.observing) return;
    this.observing = false;
    // Bounded: a device that never came back must not hold the job (the server gives up on its own later).
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([
      this.device.releaseObservations(this.job.id).catch(() => undefined),
      new Promise<void>((resolve) => (timer = setTimeout(resolve, this.options.timeouts?.requestMs ?? 2000))),
    ]);
    clearTimeout(timer);
  }

  report(state: number | undefined, result: number | undefined): void {
    const changed = (state !== undefined && state !== this.state) || (result !== undefined && result !== this.result);
    if (state !== undefined) this.state = state;
    if (state === S.UPDATING) this.sawUpdating = true;
    if (result !== undefined) this.result = result;
    this.reports++;
    if (changed) this.job.tell(`device: State ${stateName(this.state)}, Update Result ${this.result ?? '?'}`);
    this.wake?.();
  }

  async read(): Promise<void> {
    const timeoutMs = this.options.timeouts?.requestMs;
    const state = await this.job.race(this.device.read('/5/0/3', timeoutMs));
    const result = await this.job.race(this.device.read('/5/0/5', timeoutMs));
    this.report(Number(state), Number(result));
  }

  async observe(): Promise<void> {
    if (this.options.observe === false) return;
    try {
      const timeoutMs = this.options.timeouts?.requestMs;
      await this.job.race(this.device.observe('/5/0/3', this.job.id, timeoutMs));
      this.observing = true;
      await this.job.race(this.device.observe('/5/0/5', this.job.id, timeoutMs));
    } catch (err) {
      if (err instanceof Failure) throw err;
      this.job.tell(`Observe failed (${(err as Error).message}): polling State and Update Result`);
      if (this.observing) {
        this.observing = false;
        await this.device.releaseObservations(this.job.id).catch(() => undefined);
      }
    }
  }

  /**
   * The device reports how its update ended: Idle with a result (1 success, or a failure after a reboot into
   * the old firmware), or back in Downloaded with a failure (the package kept for another try: Anjay does this).
   */
  updateEnded(): boolean {
    const result = this.result;
    if (result === undefined || result === 0 || result === RESULT_DEFERRED) return false;
    return this.state === S.IDLE || (this.state === S.DOWNLOADED && result >= 2);
  }

  /**
   * Waits until `check` returns a value (it may throw a Failure), re-checking on every report, registration
   * and poll; a Failure with cause download-/update-timeout at `deadline`.
   */
  async waitUntil<T>(phase: FirmwareJobState, until: number, check: () => T | undefined): Promise<T> {
    const interval = this.options.pollIntervalMs ?? 5000;
    const deadline = Math.min(until, this.overallDeadline);
    let nextPoll = Date.now() + (this.observing && phase === 'downloading' ? interval * 4 : interval);
    for (;;) {
      if (this.job.cancelled()) throw new Failure('cancelled by the caller', 'cancelled', phase);
      const value = check();
      if (value !== undefined) return value;
      const now = Date.now();
      if (now >= deadline) {
        const cause =
          phase === 'downloading' ? 'download-timeout' : phase === 'deferred' ? 'deferred' : 'update-timeout';
        const what =
          phase === 'downloading'
            ? 'the device did not report Downloaded'
            : phase === 'deferred'
              ? 'the device deferred the update (Update Result 11) and did not apply it'
              : 'the device did not come back with an Update Result';
        throw new Failure(
          `${what} in time (State ${stateName(this.state)}, Update Result ${this.result ?? '?'})`,
          cause,
          phase,
        );
      }
      if (now >= nextPoll) {
        await this.read().catch((err: unknown) => {
          if (err instanceof Failure) throw err;
        });
        nextPoll = Date.now() + (this.observing && phase === 'downloading' ? interval * 4 : interval);
        continue;
      }
      await new Promise<void>((resolve) => {
        const timer = setTimeout(done, Math.min(deadline, nextPoll) - now);
        function done(): void {
          clearTimeout(timer);
          resolve();
        }
        this.wake = done;
      });
      this.wake = undefined;
    }
  }
}

export function stateName(state: number | undefined): string {
  return state === undefined ? 'unknown' : `${state} ${STATE_TEXT[state] ?? '?'}`;
}
