/**
 * FOTA for one device and one image: FirmwareJob, the public face of a job. It checks its options, runs the
 * object-5 state machine once (state-machine.ts: the phases starting -> ... -> verifying -> done) against a
 * device of an Lwm2mServer or any FirmwareDevice, and turns its outcome into the job's result.
 *
 * A job resolves with a FirmwareJobResult (ok) or rejects with a FirmwareJobError (its cause, the phase,
 * the Update Result and its text). Every transition is a 'progress' event, and, with a store, a saved
 * FirmwareJobRecord (removed when the job ends); `resumeFrom` continues a job interrupted by a restart.
 */
import { randomBytes } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { Lwm2mRequestError } from '../server/errors';
import type { Lwm2mServer } from '../server/lwm2m-server';
import { CancelGate } from './cancel-gate';
import type { FirmwareJobLink } from './device';
import { Failure } from './failure';
import {
  FirmwareJobError,
  type FirmwareJobEvents,
  type FirmwareJobOptions,
  type FirmwareJobResult,
  type FirmwareJobState,
  type FirmwareProgress,
} from './job-types';
import { JobRecorder } from './record';
import { resultText } from './results';
import { serverLink } from './server-device';
import { FirmwareStateMachine, type MachineReporter } from './state-machine';
import { DeviceStatus, type StatusOwner } from './status';

/** Transfer progress is told every this many percent, or after this long when it moved at all. */
const PROGRESS_STEP = 5;
const PROGRESS_EVERY_MS = 1000;

/**
 * One firmware job: checks its options, runs its state machine once (state-machine.ts) against the device,
 * turns the outcome into its result or FirmwareJobError, tells every transition ('progress') and saves it
 * (record.ts), and cancels.
 */
export class FirmwareJob extends EventEmitter<FirmwareJobEvents> {
  readonly endpoint: string;
  readonly id: string;
  private readonly options: FirmwareJobOptions;
  private readonly gate = new CancelGate();
  private readonly status: DeviceStatus;
  private readonly machine: FirmwareStateMachine;
  private readonly recorder: JobRecorder;
  private phase: FirmwareJobState = 'starting';
  private running?: Promise<FirmwareJobResult>;
  private startedAt = 0;
  /** The last transfer progress told (percent, when), to throttle per-block progress. */
  private lastPercent = -1;
  private lastPercentAt = 0;

  /**
   * A job on a device of `server` (through its public API), or on the device and package delivery of `link`
   * (of one's own: a fake in tests).
   */
  constructor(server: Lwm2mServer, options: FirmwareJobOptions);
  constructor(link: FirmwareJobLink, options: FirmwareJobOptions);
  constructor(target: Lwm2mServer | FirmwareJobLink, options: FirmwareJobOptions) {
    super();
    if (!options.endpoint) throw new TypeError('a firmware job needs an endpoint');
    const hasImage = Buffer.isBuffer(options.image);
    const hasUri = typeof options.uri === 'string' && options.uri !== '';
    if (hasImage === hasUri) throw new TypeError('a firmware job needs either an image (Buffer) or a uri');
    if (hasImage && options.image!.length === 0) throw new TypeError('the firmware image is empty');
    if (hasUri && options.method === 'push')
      throw new TypeError('a URI is pulled by the device: method push needs an image');
    if (options.pullVia !== undefined && !['coap', 'http', 'https'].includes(options.pullVia))
      throw new TypeError(`pullVia is 'coap', 'http' or 'https', not ${JSON.stringify(options.pullVia)}`);
    const port = options.httpPort;
    if (port !== undefined && !(Number.isInteger(port) && port >= 0 && port <= 65535))
      throw new TypeError(`httpPort ${String(port)} is not a port (0 to 65535)`);
    this.endpoint = options.endpoint;
    this.id = options.id ?? 'fota-' + randomBytes(6).toString('hex');
    this.options = options;
    const { device, packages } = isLink(target) ? target : serverLink(target, options.endpoint);
    if (device.endpoint !== options.endpoint) {
      throw new TypeError(`the device is ${device.endpoint}, not the job's endpoint ${options.endpoint}`);
    }
    this.status = new DeviceStatus(device, options, this.statusOwner());
    this.machine = new FirmwareStateMachine(device, packages, options, this.status, this.gate, this.reporter());
    this.recorder = new JobRecorder(this.id, options, (err) => void this.emit('storeError', err));
  }

  /** The job's phase now. */
  get state(): FirmwareJobState {
    return this.phase;
  }

  /** Runs the job (once; later calls return the same promise). */
  run(): Promise<FirmwareJobResult> {
    this.running ??= this.execute();
    return this.running;
  }

  /**
   * Cancels: stops waiting, executes /5/0/10 Cancel where the device has it (LwM2M 1.1+), else resets the state
   * machine with an empty package. The job rejects with cause 'cancelled'. Resolves when the job has ended.
   */
  async cancel(): Promise<void> {
    if (!this.running) {
      this.gate.requested = true;
      return;
    }
    if (!this.gate.requested) {
      this.gate.close();
      this.status.wakeUp();
    }
    await this.running.catch(() => undefined);
  }

  private async execute(): Promise<FirmwareJobResult> {
    this.startedAt = Date.now();
    const totalMs = this.options.timeouts?.totalMs;
    if (totalMs !== undefined) this.status.overallDeadline = this.startedAt + totalMs;
    this.status.listen();
    try {
      if (this.gate.requested) throw new Failure('cancelled before it started', 'cancelled');
      const resumeFrom = this.options.resumeFrom;
      const version =
        resumeFrom === undefined ? await this.machine.deliverAndUpdate() : await this.machine.resume(resumeFrom);
      const result: FirmwareJobResult = {
        endpoint: this.endpoint,
        ok: true,
        result: this.status.result,
        resultText: resultText(this.status.result),
        firmwareVersion: version,
        method: this.machine.method,
        durationMs: Date.now() - this.startedAt,
      };
      this.progress('done', `updated${version === undefined ? '' : ` to ${version}`}`, 100);
      this.emit('done', result);
      return result;
    } catch (err) {
      const failure = await this.failed(err);
      this.emit('failed', failure);
      throw failure;
    } finally {
      this.machine.published?.expire();
      await this.status.stopListening();
      await this.recorder.forget();
    }
  }

  /** Turns whatever ended the job into its FirmwareJobError; a cancel also cancels on the device. */
  private async failed(err: unknown): Promise<FirmwareJobError> {
    const failure =
      err instanceof Failure
        ? err
        : new Failure(
            err instanceof Lwm2mRequestError ? `${err.message}` : String((err as Error)?.message ?? err),
            'request-failed',
            this.phase,
          );
    const phase = failure.phase ?? this.phase;
    // Leave the device Idle: after a cancel, and after a download that did not finish in time.
    // (Before the download nothing of this job is on the device; once it updates, nothing can be cancelled; a
    // deferred update waits in Downloaded and can be. A deferral that outlasts deferredMs is left alone: the
    // device decides when to apply, and cancelling would undo what its owner may have postponed on purpose.)
    const touched = phase === 'downloading' || phase === 'downloaded' || phase === 'deferred';
    if (touched && (failure.cause === 'cancelled' || failure.cause === 'download-timeout')) {
      await this.machine.cancelOnDevice();
    }
    const result: FirmwareJobResult = {
      endpoint: this.endpoint,
      ok: false,
      result: this.status.result,
      resultText: resultText(this.status.result),
      method: this.machine.method,
      durationMs: Date.now() - this.startedAt,
      cause: failure.cause,
      phase,
    };
    this.progress('failed', `${phase}: ${failure.message}`);
    return new FirmwareJobError(
      `firmware update of ${this.endpoint} failed (${failure.cause}): ${failure.message}`,
      failure.cause,
      result,
    );
  }

  // ---- progress ----------------------------------------------------------------------------------

  private progress(state: FirmwareJobState, detail: string, percent?: number): void {
    this.phase = state;
    const event: FirmwareProgress = { endpoint: this.endpoint, state, detail };
    if (percent !== undefined) event.percent = percent;
    this.emit('progress', event);
    this.recorder.persist(event, {
      phase: this.phase,
      startedAt: this.startedAt,
      method: this.machine.method,
      deviceState: this.status.state,
      deviceResult: this.status.result,
    });
  }

  /**
   * Transfer progress, throttled: every PROGRESS_STEP percent, or after PROGRESS_EVERY_MS when it moved at
   * all. 100 is left to the end of the transfer (the device has yet to check the package then).
   */
  private transferProgress(verb: string, sent: number, total: number): void {
    const percent = Math.floor((sent * 100) / total);
    // 0 was told when the transfer started.
    if (percent >= 100 || percent <= Math.max(this.lastPercent, 0)) return;
    const now = Date.now();
    if (percent < this.lastPercent + PROGRESS_STEP && now < this.lastPercentAt + PROGRESS_EVERY_MS) return;
    this.lastPercent = percent;
    this.lastPercentAt = now;
    this.progress('downloading', `${verb} ${sent} of ${total} bytes`, percent);
  }

  /** What the state machine tells this job. */
  private reporter(): MachineReporter {
    return {
      phase: () => this.phase,
      progress: (state, detail, percent) => this.progress(state, detail, percent),
      transfer: (verb, sent, total) => this.transferProgress(verb, sent, total),
    };
  }

  /** What the device status needs of this job. */
  private statusOwner(): StatusOwner {
    return {
      id: this.id,
      race: (promise) => this.gate.race(promise),
      cancelled: () => this.gate.requested,
      tell: (detail) => {
        if (this.running) this.progress(this.phase, detail);
      },
    };
  }
}

function isLink(target: Lwm2mServer | FirmwareJobLink): target is FirmwareJobLink {
  return 'device' in target && 'packages' in target;
}
