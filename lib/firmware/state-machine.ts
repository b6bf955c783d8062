/**
 * The LwM2M Firmware Update (object 5) state machine of one job, driven from the server. It talks to the device
 * only through a FirmwareDevice and a PackageDelivery (device.ts), and tells its FirmwareJob of every
 * transition (job.ts).
 *
 *   starting -> [resetting] -> downloading -> downloaded -> [verifying package] -> updating -> verifying -> done
 *
 * - starting: reads /5/0/3 State (and, for method 'auto', /5/0/9 Delivery Method and /5/0/8 Protocol Support).
 * - resetting: State is not Idle (or a retry asks for it): an empty Package URI (/5/0/1), else an empty
 *   Package (/5/0/0), brings the device back to Idle.
 * - downloading: push writes the image to /5/0/0 (opaque, Block1, a timeout scaled with its size); pull serves
 *   it under an unguessable `/fw/<random>` path of this server and writes that coap:// URI (or the caller's URI)
 *   to /5/0/1. /5/0/3 and /5/0/5 are observed (polled when Observe fails) until State = 2 Downloaded, or Idle
 *   with a failing Update Result.
 * - updating: executes /5/0/2 Update and waits for the device to come back: a Register or Update from it
 *   (observations die with a reboot), then /5/0/3 and /5/0/5 are read again; a device that updates without a
 *   reboot is seen through its notifications or the polls.
 * - deferred: the device answered the Update with Update Result 11 (deferred, object 5 v1.1+): the job waits
 *   (timeouts.deferredMs) for it to apply the package by itself, watching State and Update Result as before.
 * - verifying: Update Result 1 and, when expected, the new /3/0/3 Firmware Version.
 * - resume: a job interrupted by a restart continues from what the device says now (see resumeFrom).
 * - a cancel or a download timeout: /5/0/10 Cancel, else a reset, leaves the device Idle (cancelOnDevice).
 */
import { Lwm2mRequestError } from '../server/errors';
import type { CancelGate } from './cancel-gate';
import type {
  FirmwareDevice,
  FirmwareDeviceRegistration,
  FirmwareWriteOptions,
  PackageDelivery,
  PackagePublication,
} from './device';
import { Failure } from './failure';
import type { FirmwareJobOptions, FirmwareJobState } from './job-types';
import { chooseMethod } from './method';
import { causeOfResult, FirmwareUpdateState as S, resultText } from './results';
import { RESULT_DEFERRED, stateName, type DeviceStatus } from './status';

const OPAQUE = 42;

/** What the state machine tells its job. */
export interface MachineReporter {
  /** The job's phase now. */
  phase(): FirmwareJobState;
  /** A transition, or news within a phase: the job's progress event (and record). */
  progress(state: FirmwareJobState, detail: string, percent?: number): void;
  /** How far a transfer of the package has got (throttled by the job). */
  transfer(verb: string, sent: number, total: number): void;
}

export class FirmwareStateMachine {
  /** The delivery method, once chosen. */
  method?: 'push' | 'pull';
  /** The package served for a pull (the job expires it when it ends). */
  published?: PackagePublication;
  /** The Block1 write of a push, while it runs (a cancel waits for it: an exchange cannot be aborted). */
  private pushing?: Promise<unknown>;

  constructor(
    private readonly device: FirmwareDevice,
    private readonly packages: PackageDelivery,
    private readonly options: FirmwareJobOptions,
    private readonly status: DeviceStatus,
    private readonly gate: CancelGate,
    private readonly job: MachineReporter,
  ) {}

  /** A job from the start: delivers the package, updates, verifies; resolves with the new /3/0/3 (if read). */
  async deliverAndUpdate(): Promise<string | undefined> {
    await this.prepare();
    await this.download();
    await this.checkPackage();
    return this.update();
  }

  /** Continues an interrupted job from what the device says now (see resumeFrom). */
  async resume(from: FirmwareJobState): Promise<string | undefined> {
    this.job.progress('starting', `resuming the firmware update of ${this.device.endpoint}, interrupted while ${from}`);
    const registration = await this.device.registration();
    if (!registration) throw new Failure(`${this.device.endpoint} is not registered`, 'request-failed');
    await this.status.read();
    const asked = this.options.method;
    if (asked === 'push' || asked === 'pull') this.method = asked;
    const afterUpdate = from === 'updating' || from === 'deferred' || from === 'verifying';
    if (afterUpdate && this.status.updateEnded()) {
      // The update ended while nobody watched: its Update Result is the outcome.
      return this.verify();
    }
    if (this.status.state === S.DOWNLOADED) {
      await this.status.observe();
      if (this.status.result === RESULT_DEFERRED) {
        // It deferred the update we executed before the restart: executing it again would not change that.
        return this.update(false);
      }
      this.job.progress('downloaded', 'the device has the package already: on with Update');
      await this.checkPackage();
      return this.update();
    }
    if (this.status.state === S.UPDATING) {
      // No Observe now: the reboot that comes ends observations; the registration and the polls tell.
      this.job.progress('updating', 'the device is installing the package: waiting for it to come back');
      return this.update(false);
    }
    this.job.progress('starting', `the device is ${stateName(this.status.state)}: delivering the package again`);
    return this.deliverAndUpdate();
  }

  private async prepare(): Promise<void> {
    this.job.progress('starting', `firmware update of ${this.device.endpoint}`);
    const registration = await this.device.registration();
    if (!registration) throw new Failure(`${this.device.endpoint} is not registered`, 'request-failed');
    try {
      await this.status.read();
    } catch (err) {
      if (err instanceof Lwm2mRequestError && /^4\.0[45]$/.test(err.code)) {
        throw new Failure(`the device has no Firmware Update object (/5/0/3: ${err.code})`, 'unsupported-delivery');
      }
      throw err;
    }
    this.method = await this.chooseMethod(registration);
    // A failure result left from an earlier attempt is cleared too, so that any failure seen later is this job's.
    const staleFailure = this.status.result !== undefined && this.status.result >= 2;
    if (this.status.state !== S.IDLE || staleFailure || this.options.alwaysReset) {
      const why = staleFailure
        ? `Update Result ${this.status.result} left from before`
        : `State is ${stateName(this.status.state)}`;
      this.job.progress('resetting', `${why}: resetting the firmware update state machine`);
      await this.resetDevice();
      await this.status.read();
      if (this.status.state !== S.IDLE) {
        throw new Failure(`the device stays in ${stateName(this.status.state)} after a reset`, 'unsupported-delivery');
      }
    }
    await this.status.observe();
  }

  private async chooseMethod(registration: FirmwareDeviceRegistration): Promise<'push' | 'pull'> {
    const asked = this.options.method ?? 'auto';
    if (asked !== 'auto') return asked;
    const delivery = await this.readOptional('/5/0/9');
    const protocols = await this.readOptional('/5/0/8');
    return chooseMethod(this.options, registration, delivery, protocols);
  }

  private async download(): Promise<void> {
    const started = Date.now();
    const image = this.options.image;
    const downloadMs =
      this.options.timeouts?.downloadMs ??
      (this.method === 'push' && image ? this.device.transferTimeoutMs(image.length) + 60_000 : 1_800_000);
    const deadline = started + downloadMs;
    const before = this.status.reports;
    if (this.method === 'push') {
      this.job.progress('downloading', `pushing ${image!.length} bytes to /5/0/0 (Block1)`, 0);
      // onProgress rides on the CoAP request of the write (OutgoingRequest.onProgress: one call per block).
      const writeOptions: FirmwareWriteOptions = {
        format: OPAQUE,
        timeoutMs: downloadMs,
        // A firmware package is meant to be large: the server's write size limit is for values from flows.
        maxWriteBytes: Number.POSITIVE_INFINITY,
        onProgress: (sent, total) => this.job.transfer('pushed', sent, total),
      };
      try {
        if (this.gate.requested) throw new Failure('cancelled by the caller', 'cancelled', 'downloading');
        this.pushing = this.device.write('/5/0/0', image!, writeOptions);
        await this.gate.race(this.pushing);
      } catch (err) {
        if (err instanceof Failure) throw err;
        await this.status.read().catch(() => undefined);
        if (this.status.result !== undefined && this.status.result >= 2) throw this.resultFailure('downloading');
        if (err instanceof Lwm2mRequestError && err.code === 'timeout') {
          throw new Failure(
            `pushing the package did not finish within ${downloadMs} ms`,
            'download-timeout',
            'downloading',
          );
        }
        throw new Failure(`pushing the package failed: ${(err as Error).message}`, 'request-failed', 'downloading');
      }
      this.job.progress('downloading', 'package written: waiting for the device to check it', 100);
    } else {
      const uri = this.options.uri ?? (await this.publish());
      this.job.progress('downloading', `the device pulls ${uri}`, 0);
      await this.request(() => this.device.write('/5/0/1', uri, { timeoutMs: this.options.timeouts?.requestMs }));
    }
    await this.status.waitUntil('downloading', deadline, () => {
      if (this.status.reports === before) return undefined;
      if (this.status.state === S.DOWNLOADED) return true;
      if (this.status.state === S.IDLE && this.status.result !== undefined && this.status.result >= 2) {
        throw this.resultFailure('downloading');
      }
      return undefined;
    });
    this.job.progress('downloaded', `the device has the package (${Date.now() - started} ms)`, 100);
  }

  /** Package name/version, when expected, before the update. */
  private async checkPackage(): Promise<void> {
    const checks: Array<[string, string | undefined, string]> = [
      ['/5/0/6', this.options.expectedPackageName, 'Package Name'],
      ['/5/0/7', this.options.expectedPackageVersion, 'Package Version'],
    ];
    for (const [path, expected, name] of checks) {
      if (expected === undefined) continue;
      const value = await this.readOptional(path);
      if (value !== expected) {
        await this.resetDevice().catch(() => undefined);
        throw new Failure(
          `${name} (${path}) is ${JSON.stringify(value ?? null)}, expected ${JSON.stringify(expected)}: not updating`,
          'verification-failed',
          'downloaded',
        );
      }
    }
  }

  /**
   * Executes Update (unless `execute` is false: a resumed job whose device updates already) and waits for the
   * device to come back with an Update Result; a deferral (Update Result 11) is waited out.
   */
  private async update(execute = true): Promise<string | undefined> {
    const updateMs = this.options.timeouts?.updateMs ?? 600_000;
    let deadline = Date.now() + updateMs;
    this.status.cameBack = false;
    this.status.sawUpdating = this.status.state === S.UPDATING;
    let deferral: 'no' | 'waiting' | 'applying' = 'no';
    const retryEvery = this.options.timeouts?.deferredRetryMs;
    let retryAt = Infinity;
    let deferredUntil = Infinity;
    if (execute) {
      // Cancelled at 'downloaded': fail in that phase, so that the package is cancelled on the device.
      if (this.gate.requested) throw new Failure('cancelled by the caller', 'cancelled', this.job.phase());
      this.job.progress('updating', 'executing Update (/5/0/2)');
      await this.request(() => this.device.execute('/5/0/2', this.options.timeouts?.requestMs));
      this.job.progress('updating', 'the device installs the package and reboots');
    }
    for (;;) {
      const phase: FirmwareJobState = deferral === 'waiting' ? 'deferred' : 'updating';
      const how = await this.status.waitUntil(phase, deadline, () => {
        if (this.status.cameBack) return 'back' as const;
        const result = this.status.result;
        if (deferral === 'no' && result === RESULT_DEFERRED) return 'deferred' as const;
        if (deferral === 'waiting' && this.status.state === S.UPDATING) return 'applying' as const;
        if (deferral === 'waiting' && Date.now() >= retryAt) return 'retry' as const;
        // Asked again, it started and deferred once more (Anjay does): back to waiting, within the same limit.
        if (deferral === 'applying' && result === RESULT_DEFERRED && this.status.state === S.DOWNLOADED)
          return 'deferred-again' as const;
        if (this.status.sawUpdating && this.status.updateEnded()) return 'reported' as const;
        return undefined;
      });
      if (how === 'deferred') {
        // Not a failure (object 5 v1.1): the device applies the package later, on its own terms.
        deferral = 'waiting';
        const deferredMs = this.options.timeouts?.deferredMs ?? 86_400_000;
        deadline = Date.now() + deferredMs;
        deferredUntil = deadline;
        if (retryEvery !== undefined && retryEvery > 0) retryAt = Date.now() + retryEvery;
        this.job.progress(
          'deferred',
          `the device deferred the update (Update Result 11): waiting up to ${deferredMs} ms for it to apply it`,
        );
        continue;
      }
      if (how === 'deferred-again') {
        deferral = 'waiting';
        deadline = deferredUntil;
        if (retryEvery !== undefined && retryEvery > 0) retryAt = Date.now() + retryEvery;
        this.job.progress('deferred', 'the device deferred the update again (Update Result 11)');
        continue;
      }
      if (how === 'retry') {
        retryAt = Date.now() + retryEvery!;
        this.job.progress('deferred', 'asking the device again: executing Update (/5/0/2)');
        // Refused (4.xx) or unanswered: the device still defers; the wait goes on until the deferral limit.
        await this.device.execute('/5/0/2', this.options.timeouts?.requestMs).catch(() => undefined);
        continue;
      }
      if (how === 'applying') {
        deferral = 'applying';
        deadline = Date.now() + updateMs;
        this.job.progress('updating', 'the device applies the deferred update');
        continue;
      }
      if (how === 'back') {
        this.status.cameBack = false;
        this.job.progress(phase, 'the device is back: reading its State and Update Result');
        try {
          await this.status.read();
        } catch {
          continue; // not answering yet: wait for the next sign of life or poll
        }
        if (!this.status.updateEnded()) continue;
      }
      break;
    }
    return this.verify();
  }

  /** The outcome: Update Result 1 and, when expected, the new /3/0/3. */
  private async verify(): Promise<string | undefined> {
    this.job.progress('verifying', `Update Result ${this.status.result}: ${resultText(this.status.result)}`);
    const version = await this.readOptional('/3/0/3').then((v) => (v === undefined ? undefined : String(v)));
    const expected = this.options.expectedFirmwareVersion;
    if (this.status.result === 1 || (this.status.result === 0 && expected !== undefined)) {
      if (expected !== undefined && version !== expected) {
        throw new Failure(
          `the device reports ${this.status.result === 1 ? 'success' : 'no result'} but runs ${JSON.stringify(version ?? null)}, ` +
            `expected ${JSON.stringify(expected)} (/3/0/3)`,
          'verification-failed',
          'verifying',
        );
      }
      return version;
    }
    throw this.resultFailure('updating');
  }

  /** Back to Idle: empty Package URI, else an empty Package. */
  private async resetDevice(): Promise<void> {
    const timeoutMs = this.options.timeouts?.requestMs;
    try {
      await this.device.write('/5/0/1', '', { timeoutMs });
    } catch (err) {
      if (err instanceof Lwm2mRequestError && (err.code === 'timeout' || err.code === 'not-registered')) throw err;
      await this.device.write('/5/0/0', Buffer.alloc(0), { format: OPAQUE, timeoutMs });
    }
  }

  /** Pull of the image: the package delivery serves it for this device; the URI to write to /5/0/1. */
  private async publish(): Promise<string> {
    const registration = await this.device.registration();
    if (!registration) throw new Failure(`${this.device.endpoint} is not registered`, 'request-failed', 'downloading');
    const { baseUri, pullVia, httpPort, httpsCertificate } = this.options;
    this.published = await this.packages.publish(this.options.image!, registration, {
      baseUri,
      pullVia,
      httpPort,
      httpsCertificate,
      onProgress: this.pullProgress,
    });
    return this.published.uri;
  }

  private async readOptional(path: string): Promise<unknown> {
    try {
      return await this.gate.race(this.device.read(path, this.options.timeouts?.requestMs));
    } catch (err) {
      if (err instanceof Lwm2mRequestError && /^4\.0[45]$/.test(err.code)) return undefined;
      throw err;
    }
  }

  /** One request: its failure becomes a 'request-failed' Failure (a cancel wins over it). */
  private async request<T>(send: () => Promise<T>): Promise<T> {
    // A cancel asked for in a progress listener of this very transition: nothing more may reach the device
    // (an Execute Update sent after it could not be taken back).
    if (this.gate.requested) throw new Failure('cancelled by the caller', 'cancelled', this.job.phase());
    try {
      return await this.gate.race(send());
    } catch (err) {
      if (err instanceof Failure) throw err;
      throw new Failure((err as Error).message, 'request-failed', this.job.phase());
    }
  }

  private resultFailure(phase: FirmwareJobState): Failure {
    const result = this.status.result;
    return new Failure(
      `Update Result ${result ?? '?'}: ${resultText(result)}`,
      result === undefined || result < 2 ? 'unknown-result' : causeOfResult(result),
      phase,
    );
  }

  /** A download of the served package moved (every Block2 block, every HTTP slice). */
  private readonly pullProgress = (sent: number, total: number): void => {
    if (this.job.phase() === 'downloading') this.job.transfer('the device fetched', sent, total);
  };

  /** Cancels on the device what this job left there (see FirmwareJob.cancel). */
  async cancelOnDevice(): Promise<void> {
    if (this.pushing) {
      this.job.progress('cancelling', 'waiting for the Block1 transfer of the package to end');
      await this.pushing.catch(() => undefined);
      await this.status.read().catch(() => undefined);
    }
    if (this.status.state === S.UPDATING) {
      this.job.progress('cancelling', 'the device is installing the package already: nothing to cancel on it');
      return;
    }
    this.job.progress('cancelling', 'cancelling on the device');
    const timeoutMs = this.options.timeouts?.requestMs;
    try {
      await this.device.execute('/5/0/10', timeoutMs);
    } catch {
      await this.resetDevice().catch(() => undefined);
    }
  }
}
