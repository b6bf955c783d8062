/**
 * FOTA for one device and one image: the LwM2M Firmware Update (object 5) state machine driven from the server.
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
 *
 * A job resolves with a FirmwareJobResult (ok) or rejects with a FirmwareJobError (its cause, the phase,
 * the Update Result and its text). Every transition is a 'progress' event, and, with a store, a saved
 * FirmwareJobRecord (removed when the job ends); `resumeFrom` continues a job interrupted by a restart.
 */
import { createSocket } from 'node:dgram';
import { createHash, randomBytes, type KeyObject } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { isIPv6 } from 'node:net';
import { requestTimeoutFor } from '../coap/timeouts';
import { Lwm2mRequestError } from '../server/errors';
import type { Lwm2mServer } from '../server/lwm2m-server';
import type { Notification } from '../server/observation-service';
import type { Registration } from '../server/registration';
import type { WriteOptions } from '../server/lwm2m-server';
import { packageServerFor, type HttpPublishedPackage, type PublishedPackage } from './package-server';
import type { FirmwareJobRecord, FirmwareJobStore } from './store';
import {
  causeOfResult,
  FirmwareUpdateState as S,
  PROTOCOL_SCHEMES,
  resultText,
  STATE_TEXT,
  type FirmwareFailureCause,
} from './results';

const OPAQUE = 42;
/** /5/0/5 Update Result 11: the device deferred the update (object 5 v1.1+). */
const RESULT_DEFERRED = 11;

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

export class FirmwareJobError extends Error {
  override name = 'FirmwareJobError';
  constructor(
    message: string,
    override readonly cause: FirmwareFailureCause,
    readonly result: FirmwareJobResult,
  ) {
    super(message);
  }
}

/** A failure inside the job, before it is given its result. */
class Failure extends Error {
  constructor(
    message: string,
    override readonly cause: FirmwareFailureCause,
    readonly phase?: FirmwareJobState,
  ) {
    super(message);
  }
}

export interface FirmwareJobEvents {
  progress: [progress: FirmwareProgress];
  done: [result: FirmwareJobResult];
  failed: [error: FirmwareJobError];
  /** Saving or removing the job's record failed (the job goes on). */
  storeError: [error: Error];
}

/** Transfer progress is told every this many percent, or after this long when it moved at all. */
const PROGRESS_STEP = 5;
const PROGRESS_EVERY_MS = 1000;

export class FirmwareJob extends EventEmitter<FirmwareJobEvents> {
  readonly endpoint: string;
  readonly id: string;
  private readonly options: FirmwareJobOptions;
  private phase: FirmwareJobState = 'starting';
  private running?: Promise<FirmwareJobResult>;
  private startedAt = 0;
  private method?: 'push' | 'pull';

  /** What the device last reported. */
  private deviceState?: number;
  private deviceResult?: number;
  /** Bumped on every State/Result report, to tell fresh reports from old ones. */
  private reports = 0;
  private observing = false;
  private cameBack = false;
  /** The device was seen in Updating (3) since the Update was executed. */
  private sawUpdating = false;
  private wake?: () => void;
  private cancelRequested = false;
  private cancelReject?: (err: Error) => void;
  private readonly cancelGate: Promise<never>;
  private published?: PublishedPackage;
  /** The Block1 write of a push, while it runs (a cancel waits for it: an exchange cannot be aborted). */
  private pushing?: Promise<unknown>;
  private readonly cleanups: Array<() => void> = [];
  /** The last transfer progress told (percent, when), to throttle per-block progress. */
  private lastPercent = -1;
  private lastPercentAt = 0;
  /** The device deferred the update (Update Result 11) since Execute Update. */
  private deferredSince?: number;
  /** Every wait ends by then (timeouts.totalMs). */
  private overallDeadline = Infinity;
  private record?: FirmwareJobRecord;
  private saving: Promise<void> = Promise.resolve();

  constructor(
    private readonly server: Lwm2mServer,
    options: FirmwareJobOptions,
  ) {
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
    this.cancelGate = new Promise<never>((_resolve, reject) => (this.cancelReject = reject));
    this.cancelGate.catch(() => undefined);
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
      this.cancelRequested = true;
      return;
    }
    if (!this.cancelRequested) {
      this.cancelRequested = true;
      this.cancelReject?.(new Failure('cancelled by the caller', 'cancelled'));
      this.wake?.();
    }
    await this.running.catch(() => undefined);
  }

  // ---- the state machine -------------------------------------------------------------------------

  private async execute(): Promise<FirmwareJobResult> {
    this.startedAt = Date.now();
    const totalMs = this.options.timeouts?.totalMs;
    if (totalMs !== undefined) this.overallDeadline = this.startedAt + totalMs;
    this.listen();
    try {
      if (this.cancelRequested) throw new Failure('cancelled before it started', 'cancelled');
      const resumeFrom = this.options.resumeFrom;
      const version = resumeFrom === undefined ? await this.deliverAndUpdate() : await this.resume(resumeFrom);
      const result: FirmwareJobResult = {
        endpoint: this.endpoint,
        ok: true,
        result: this.deviceResult,
        resultText: resultText(this.deviceResult),
        firmwareVersion: version,
        method: this.method,
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
      await this.stopListening();
      await this.forget();
    }
  }

  private async deliverAndUpdate(): Promise<string | undefined> {
    await this.prepare();
    await this.download();
    await this.checkPackage();
    return this.update();
  }

  /** Continues an interrupted job from what the device says now (see resumeFrom). */
  private async resume(from: FirmwareJobState): Promise<string | undefined> {
    this.progress('starting', `resuming the firmware update of ${this.endpoint}, interrupted while ${from}`);
    const registration = await this.server.getRegistration(this.endpoint);
    if (!registration) throw new Failure(`${this.endpoint} is not registered`, 'request-failed');
    await this.readStatus();
    const asked = this.options.method;
    if (asked === 'push' || asked === 'pull') this.method = asked;
    const afterUpdate = from === 'updating' || from === 'deferred' || from === 'verifying';
    if (afterUpdate && this.updateEnded()) {
      // The update ended while nobody watched: its Update Result is the outcome.
      return this.verify();
    }
    if (this.deviceState === S.DOWNLOADED) {
      await this.startObserving();
      if (this.deviceResult === RESULT_DEFERRED) {
        // It deferred the update we executed before the restart: executing it again would not change that.
        return this.update(false);
      }
      this.progress('downloaded', 'the device has the package already: on with Update');
      await this.checkPackage();
      return this.update();
    }
    if (this.deviceState === S.UPDATING) {
      // No Observe now: the reboot that comes ends observations; the registration and the polls tell.
      this.progress('updating', 'the device is installing the package: waiting for it to come back');
      return this.update(false);
    }
    this.progress('starting', `the device is ${stateName(this.deviceState)}: delivering the package again`);
    return this.deliverAndUpdate();
  }

  private async prepare(): Promise<void> {
    this.progress('starting', `firmware update of ${this.endpoint}`);
    const registration = await this.server.getRegistration(this.endpoint);
    if (!registration) throw new Failure(`${this.endpoint} is not registered`, 'request-failed');
    try {
      await this.readStatus();
    } catch (err) {
      if (err instanceof Lwm2mRequestError && /^4\.0[45]$/.test(err.code)) {
        throw new Failure(`the device has no Firmware Update object (/5/0/3: ${err.code})`, 'unsupported-delivery');
      }
      throw err;
    }
    this.method = await this.chooseMethod(registration);
    // A failure result left from an earlier attempt is cleared too, so that any failure seen later is this job's.
    const staleFailure = this.deviceResult !== undefined && this.deviceResult >= 2;
    if (this.deviceState !== S.IDLE || staleFailure || this.options.alwaysReset) {
      const why = staleFailure
        ? `Update Result ${this.deviceResult} left from before`
        : `State is ${stateName(this.deviceState)}`;
      this.progress('resetting', `${why}: resetting the firmware update state machine`);
      await this.resetDevice();
      await this.readStatus();
      if (this.deviceState !== S.IDLE) {
        throw new Failure(`the device stays in ${stateName(this.deviceState)} after a reset`, 'unsupported-delivery');
      }
    }
    await this.startObserving();
  }

  private async chooseMethod(registration: Registration): Promise<'push' | 'pull'> {
    const asked = this.options.method ?? 'auto';
    if (asked !== 'auto') return asked;
    const delivery = await this.readOptional('/5/0/9');
    const protocols = toNumbers(await this.readOptional('/5/0/8'));
    const canPush = delivery === undefined || delivery === 1 || delivery === 2;
    const canPull = delivery === undefined || delivery === 0 || delivery === 2;
    const scheme =
      this.options.uri !== undefined
        ? safeScheme(this.options.uri)
        : this.options.pullVia === 'http' || this.options.pullVia === 'https'
          ? `${this.options.pullVia}:`
          : registration.security
            ? 'coaps:'
            : 'coap:';
    const protocolOk =
      protocols === undefined ||
      protocols.some((p) => PROTOCOL_SCHEMES[p] === scheme) ||
      (protocols.length === 0 && scheme === 'coap:');
    if (this.options.uri !== undefined) {
      if (!canPull)
        throw new Failure(
          'the device takes pushed packages only (/5/0/9), and a URI was given',
          'unsupported-delivery',
        );
      if (!protocolOk) {
        throw new Failure(
          `the device does not support ${scheme} downloads (/5/0/8 ${JSON.stringify(protocols)})`,
          'unsupported-protocol',
        );
      }
      return 'pull';
    }
    if (canPush) return 'push';
    if (!protocolOk) {
      throw new Failure(
        `the device pulls only, and not over ${scheme} (/5/0/8 ${JSON.stringify(protocols)})`,
        'unsupported-protocol',
      );
    }
    return 'pull';
  }

  private async download(): Promise<void> {
    const started = Date.now();
    const image = this.options.image;
    const downloadMs =
      this.options.timeouts?.downloadMs ??
      (this.method === 'push' && image
        ? requestTimeoutFor(image.length, this.server.options.coap) + 60_000
        : 1_800_000);
    const deadline = started + downloadMs;
    const before = this.reports;
    if (this.method === 'push') {
      this.progress('downloading', `pushing ${image!.length} bytes to /5/0/0 (Block1)`, 0);
      // onProgress rides on the CoAP request of the write (OutgoingRequest.onProgress: one call per block).
      const writeOptions: WriteOptions = {
        format: OPAQUE,
        timeoutMs: downloadMs,
        // A firmware package is meant to be large: the server's write size limit is for values from flows.
        maxWriteBytes: Number.POSITIVE_INFINITY,
        onProgress: (sent, total) => this.transferProgress('pushed', sent, total),
      };
      try {
        if (this.cancelRequested) throw new Failure('cancelled by the caller', 'cancelled', 'downloading');
        this.pushing = this.server.write(this.endpoint, '/5/0/0', image!, writeOptions);
        await this.race(this.pushing);
      } catch (err) {
        if (err instanceof Failure) throw err;
        await this.readStatus().catch(() => undefined);
        if (this.deviceResult !== undefined && this.deviceResult >= 2) throw this.resultFailure('downloading');
        if (err instanceof Lwm2mRequestError && err.code === 'timeout') {
          throw new Failure(
            `pushing the package did not finish within ${downloadMs} ms`,
            'download-timeout',
            'downloading',
          );
        }
        throw new Failure(`pushing the package failed: ${(err as Error).message}`, 'request-failed', 'downloading');
      }
      this.progress('downloading', 'package written: waiting for the device to check it', 100);
    } else {
      const uri = this.options.uri ?? (await this.publish());
      this.progress('downloading', `the device pulls ${uri}`, 0);
      await this.request(() =>
        this.server.write(this.endpoint, '/5/0/1', uri, { timeoutMs: this.options.timeouts?.requestMs }),
      );
    }
    await this.waitUntil('downloading', deadline, () => {
      if (this.reports === before) return undefined;
      if (this.deviceState === S.DOWNLOADED) return true;
      if (this.deviceState === S.IDLE && this.deviceResult !== undefined && this.deviceResult >= 2) {
        throw this.resultFailure('downloading');
      }
      return undefined;
    });
    this.progress('downloaded', `the device has the package (${Date.now() - started} ms)`, 100);
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
    this.cameBack = false;
    this.sawUpdating = this.deviceState === S.UPDATING;
    let deferral: 'no' | 'waiting' | 'applying' = 'no';
    const retryEvery = this.options.timeouts?.deferredRetryMs;
    let retryAt = Infinity;
    let deferredUntil = Infinity;
    if (execute) {
      // Cancelled at 'downloaded': fail in that phase, so that the package is cancelled on the device.
      if (this.cancelRequested) throw new Failure('cancelled by the caller', 'cancelled', this.phase);
      this.progress('updating', 'executing Update (/5/0/2)');
      await this.request(() =>
        this.server.execute(this.endpoint, '/5/0/2', undefined, { timeoutMs: this.options.timeouts?.requestMs }),
      );
      this.progress('updating', 'the device installs the package and reboots');
    }
    for (;;) {
      const phase: FirmwareJobState = deferral === 'waiting' ? 'deferred' : 'updating';
      const how = await this.waitUntil(phase, deadline, () => {
        if (this.cameBack) return 'back' as const;
        const result = this.deviceResult;
        if (deferral === 'no' && result === RESULT_DEFERRED) return 'deferred' as const;
        if (deferral === 'waiting' && this.deviceState === S.UPDATING) return 'applying' as const;
        if (deferral === 'waiting' && Date.now() >= retryAt) return 'retry' as const;
        // Asked again, it started and deferred once more (Anjay does): back to waiting, within the same limit.
        if (deferral === 'applying' && result === RESULT_DEFERRED && this.deviceState === S.DOWNLOADED)
          return 'deferred-again' as const;
        if (this.sawUpdating && this.updateEnded()) return 'reported' as const;
        return undefined;
      });
      if (how === 'deferred') {
        // Not a failure (object 5 v1.1): the device applies the package later, on its own terms.
        deferral = 'waiting';
        const deferredMs = this.options.timeouts?.deferredMs ?? 86_400_000;
        deadline = Date.now() + deferredMs;
        deferredUntil = deadline;
        if (retryEvery !== undefined && retryEvery > 0) retryAt = Date.now() + retryEvery;
        this.progress(
          'deferred',
          `the device deferred the update (Update Result 11): waiting up to ${deferredMs} ms for it to apply it`,
        );
        continue;
      }
      if (how === 'deferred-again') {
        deferral = 'waiting';
        deadline = deferredUntil;
        if (retryEvery !== undefined && retryEvery > 0) retryAt = Date.now() + retryEvery;
        this.progress('deferred', 'the device deferred the update again (Update Result 11)');
        continue;
      }
      if (how === 'retry') {
        retryAt = Date.now() + retryEvery!;
        this.progress('deferred', 'asking the device again: executing Update (/5/0/2)');
        // Refused (4.xx) or unanswered: the device still defers; the wait goes on until the deferral limit.
        await this.server
          .execute(this.endpoint, '/5/0/2', undefined, { timeoutMs: this.options.timeouts?.requestMs })
          .catch(() => undefined);
        continue;
      }
      if (how === 'applying') {
        deferral = 'applying';
        deadline = Date.now() + updateMs;
        this.progress('updating', 'the device applies the deferred update');
        continue;
      }
      if (how === 'back') {
        this.cameBack = false;
        this.progress(phase, 'the device is back: reading its State and Update Result');
        try {
          await this.readStatus();
        } catch {
          continue; // not answering yet: wait for the next sign of life or poll
        }
        if (!this.updateEnded()) continue;
      }
      break;
    }
    return this.verify();
  }

  /**
   * The device reports how its update ended: Idle with a result (1 success, or a failure after a reboot into
   * the old firmware), or back in Downloaded with a failure (the package kept for another try: Anjay does this).
   */
  private updateEnded(): boolean {
    const result = this.deviceResult;
    if (result === undefined || result === 0 || result === RESULT_DEFERRED) return false;
    return this.deviceState === S.IDLE || (this.deviceState === S.DOWNLOADED && result >= 2);
  }

  /** The outcome: Update Result 1 and, when expected, the new /3/0/3. */
  private async verify(): Promise<string | undefined> {
    this.progress('verifying', `Update Result ${this.deviceResult}: ${resultText(this.deviceResult)}`);
    const version = await this.readOptional('/3/0/3').then((v) => (v === undefined ? undefined : String(v)));
    const expected = this.options.expectedFirmwareVersion;
    if (this.deviceResult === 1 || (this.deviceResult === 0 && expected !== undefined)) {
      if (expected !== undefined && version !== expected) {
        throw new Failure(
          `the device reports ${this.deviceResult === 1 ? 'success' : 'no result'} but runs ${JSON.stringify(version ?? null)}, ` +
            `expected ${JSON.stringify(expected)} (/3/0/3)`,
          'verification-failed',
          'verifying',
        );
      }
      return version;
    }
    throw this.resultFailure('updating');
  }

  // ---- device status -----------------------------------------------------------------------------

  private listen(): void {
    const onNotification = (n: Notification): void => {
      if (n.endpoint !== this.endpoint || n.value === undefined) return;
      if (n.path === '/5/0/3') this.report(Number(n.value), undefined);
      else if (n.path === '/5/0/5') this.report(undefined, Number(n.value));
    };
    const onBack = (registration: Registration): void => {
      if (registration.endpoint !== this.endpoint) return;
      this.cameBack = true;
      this.wake?.();
    };
    this.server.on('notification', onNotification);
    this.server.on('registered', onBack);
    this.server.on('updated', onBack);
    this.cleanups.push(() => {
      this.server.off('notification', onNotification);
      this.server.off('registered', onBack);
      this.server.off('updated', onBack);
    });
  }

  private async stopListening(): Promise<void> {
    for (const cleanup of this.cleanups.splice(0)) cleanup();
    this.published?.expire();
    if (!this.observing) return;
    this.observing = false;
    // Bounded: a device that never came back must not hold the job (the server gives up on its own later).
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([
      this.server.releaseOwner(this.id).catch(() => undefined),
      new Promise<void>((resolve) => (timer = setTimeout(resolve, this.options.timeouts?.requestMs ?? 2000))),
    ]);
    clearTimeout(timer);
  }

  private report(state: number | undefined, result: number | undefined): void {
    const changed =
      (state !== undefined && state !== this.deviceState) || (result !== undefined && result !== this.deviceResult);
    if (state !== undefined) this.deviceState = state;
    if (state === S.UPDATING) this.sawUpdating = true;
    if (result !== undefined) this.deviceResult = result;
    this.reports++;
    if (changed && this.running) {
      this.progress(
        this.phase,
        `device: State ${stateName(this.deviceState)}, Update Result ${this.deviceResult ?? '?'}`,
      );
    }
    this.wake?.();
  }

  private async readStatus(): Promise<void> {
    const timeoutMs = this.options.timeouts?.requestMs;
    const state = await this.race(this.server.read(this.endpoint, '/5/0/3', { timeoutMs }));
    const result = await this.race(this.server.read(this.endpoint, '/5/0/5', { timeoutMs }));
    this.report(Number(state.value), Number(result.value));
  }

  private async startObserving(): Promise<void> {
    if (this.options.observe === false) return;
    try {
      const timeoutMs = this.options.timeouts?.requestMs;
      await this.race(this.server.observe(this.endpoint, '/5/0/3', { owner: this.id, timeoutMs }));
      this.observing = true;
      await this.race(this.server.observe(this.endpoint, '/5/0/5', { owner: this.id, timeoutMs }));
    } catch (err) {
      if (err instanceof Failure) throw err;
      this.progress(this.phase, `Observe failed (${(err as Error).message}): polling State and Update Result`);
      if (this.observing) {
        this.observing = false;
        await this.server.releaseOwner(this.id).catch(() => undefined);
      }
    }
  }

  /**
   * Waits until `check` returns a value (it may throw a Failure), re-checking on every report, registration
   * and poll; a Failure with cause download-/update-timeout at `deadline`.
   */
  private async waitUntil<T>(phase: FirmwareJobState, until: number, check: () => T | undefined): Promise<T> {
    const interval = this.options.pollIntervalMs ?? 5000;
    const deadline = Math.min(until, this.overallDeadline);
    let nextPoll = Date.now() + (this.observing && phase === 'downloading' ? interval * 4 : interval);
    for (;;) {
      if (this.cancelRequested) throw new Failure('cancelled by the caller', 'cancelled', phase);
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
          `${what} in time (State ${stateName(this.deviceState)}, Update Result ${this.deviceResult ?? '?'})`,
          cause,
          phase,
        );
      }
      if (now >= nextPoll) {
        await this.readStatus().catch((err: unknown) => {
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

  // ---- helpers -----------------------------------------------------------------------------------

  /** Back to Idle: empty Package URI, else an empty Package. */
  private async resetDevice(): Promise<void> {
    const timeoutMs = this.options.timeouts?.requestMs;
    try {
      await this.server.write(this.endpoint, '/5/0/1', '', { timeoutMs });
    } catch (err) {
      if (err instanceof Lwm2mRequestError && (err.code === 'timeout' || err.code === 'not-registered')) throw err;
      await this.server.write(this.endpoint, '/5/0/0', Buffer.alloc(0), { format: OPAQUE, timeoutMs });
    }
  }

  private async publish(): Promise<string> {
    const registration = await this.server.getRegistration(this.endpoint);
    if (!registration) throw new Failure(`${this.endpoint} is not registered`, 'request-failed', 'downloading');
    const via = this.options.pullVia;
    if (via === 'http' || via === 'https') return this.publishHttp(registration, via);
    const base = await this.baseUri(registration);
    this.published = packageServerFor(this.server).publish(this.options.image!, { onProgress: this.pullProgress });
    return base.replace(/\/+$/, '') + this.published.path;
  }

  /** Pull over HTTP(S): the image on the HTTP(S) server of this Lwm2mServer (started when none runs). */
  private async publishHttp(registration: Registration, via: 'http' | 'https'): Promise<string> {
    const bound = this.server.address;
    if (!bound) throw new Failure('the LwM2M server is not running', 'request-failed', 'downloading');
    let published: HttpPublishedPackage;
    const packages = packageServerFor(this.server);
    const options = { port: this.options.httpPort ?? 0, address: bound.address, onProgress: this.pullProgress };
    try {
      published =
        via === 'https'
          ? await packages.publishHttps(this.options.image!, {
              ...options,
              ...(this.options.httpsCertificate ? { certificate: this.options.httpsCertificate } : {}),
            })
          : await packages.publishHttp(this.options.image!, options);
    } catch (err) {
      throw new Failure(
        `the ${via.toUpperCase()} package server does not start: ${(err as Error).message}`,
        'request-failed',
      );
    }
    this.published = published;
    const base =
      this.options.baseUri ?? `${via}://${await hostToward(published.address, registration.address)}:${published.port}`;
    return base.replace(/\/+$/, '') + published.path;
  }

  private async baseUri(registration: Registration): Promise<string> {
    if (this.options.baseUri) return this.options.baseUri;
    // A DTLS device pulls over coaps:// from the server's DTLS listener (it serves /fw like the plain one).
    const secure = registration.security !== undefined;
    const bound = secure ? this.server.secureAddress : this.server.address;
    if (!bound) {
      throw new Failure(
        secure
          ? `${this.endpoint} talks DTLS but the server has no DTLS listener: set baseUri`
          : 'the LwM2M server is not running',
        secure ? 'unsupported-delivery' : 'request-failed',
        'downloading',
      );
    }
    return `${secure ? 'coaps' : 'coap'}://${await hostToward(bound.address, registration.address)}:${bound.port}`;
  }

  private async readOptional(path: string): Promise<unknown> {
    try {
      return (await this.race(this.server.read(this.endpoint, path, { timeoutMs: this.options.timeouts?.requestMs })))
        .value;
    } catch (err) {
      if (err instanceof Lwm2mRequestError && /^4\.0[45]$/.test(err.code)) return undefined;
      throw err;
    }
  }

  /** One request: its failure becomes a 'request-failed' Failure (a cancel wins over it). */
  private async request<T>(send: () => Promise<T>): Promise<T> {
    // A cancel asked for in a progress listener of this very transition: nothing more may reach the device
    // (an Execute Update sent after it could not be taken back).
    if (this.cancelRequested) throw new Failure('cancelled by the caller', 'cancelled', this.phase);
    try {
      return await this.race(send());
    } catch (err) {
      if (err instanceof Failure) throw err;
      throw new Failure((err as Error).message, 'request-failed', this.phase);
    }
  }

  private race<T>(promise: Promise<T>): Promise<T> {
    promise.catch(() => undefined);
    return Promise.race([promise, this.cancelGate]);
  }

  private resultFailure(phase: FirmwareJobState): Failure {
    const result = this.deviceResult;
    return new Failure(
      `Update Result ${result ?? '?'}: ${resultText(result)}`,
      result === undefined || result < 2 ? 'unknown-result' : causeOfResult(result),
      phase,
    );
  }

  private progress(state: FirmwareJobState, detail: string, percent?: number): void {
    this.phase = state;
    const event: FirmwareProgress = { endpoint: this.endpoint, state, detail };
    if (percent !== undefined) event.percent = percent;
    this.emit('progress', event);
    this.persist(event);
  }

  /** A download of the served package moved (every Block2 block, every HTTP slice). */
  private readonly pullProgress = (sent: number, total: number): void => {
    if (this.phase === 'downloading') this.transferProgress('the device fetched', sent, total);
  };

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

  // ---- the job's record in the store -------------------------------------------------------------

  /** Saves the record after a transition (in order: saves are chained). 'done' and 'failed' are not saved. */
  private persist(event: FirmwareProgress): void {
    const store = this.options.store;
    if (!store || this.startedAt === 0) return;
    const now = Date.now();
    const record = (this.record ??= this.newRecord(now));
    record.state = event.state;
    record.detail = event.detail;
    if (event.percent !== undefined) record.percent = event.percent;
    record.updatedAt = now;
    if (this.method) record.deliveredBy = this.method;
    if (this.deviceState !== undefined) record.deviceState = this.deviceState;
    if (this.deviceResult !== undefined) record.deviceResult = this.deviceResult;
    if (event.state === 'done' || event.state === 'failed') return;
    const snapshot = structuredClone(record);
    this.saving = this.saving
      .then(() => store.save(snapshot))
      .catch((err: unknown) => void this.emit('storeError', err as Error));
  }

  /** The job ended: its record goes. */
  private async forget(): Promise<void> {
    const store = this.options.store;
    if (!store) return;
    this.saving = this.saving
      .then(() => store.remove(this.id))
      .catch((err: unknown) => void this.emit('storeError', err as Error));
    await this.saving;
  }

  private newRecord(now: number): FirmwareJobRecord {
    const o = this.options;
    const record: FirmwareJobRecord = {
      id: this.id,
      endpoint: this.endpoint,
      method: o.method ?? 'auto',
      state: this.phase,
      detail: '',
      attempts: o.attempt ?? 1,
      startedAt: this.startedAt || now,
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
      await this.cancelOnDevice();
    }
    const result: FirmwareJobResult = {
      endpoint: this.endpoint,
      ok: false,
      result: this.deviceResult,
      resultText: resultText(this.deviceResult),
      method: this.method,
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

  private async cancelOnDevice(): Promise<void> {
    if (this.pushing) {
      this.progress('cancelling', 'waiting for the Block1 transfer of the package to end');
      await this.pushing.catch(() => undefined);
      await this.readStatus().catch(() => undefined);
    }
    if (this.deviceState === S.UPDATING) {
      this.progress('cancelling', 'the device is installing the package already: nothing to cancel on it');
      return;
    }
    this.progress('cancelling', 'cancelling on the device');
    const timeoutMs = this.options.timeouts?.requestMs;
    try {
      await this.server.execute(this.endpoint, '/5/0/10', undefined, { timeoutMs });
    } catch {
      await this.resetDevice().catch(() => undefined);
    }
  }
}

function stateName(state: number | undefined): string {
  return state === undefined ? 'unknown' : `${state} ${STATE_TEXT[state] ?? '?'}`;
}

function safeScheme(uri: string): string {
  try {
    return new URL(uri).protocol;
  } catch {
    return '';
  }
}

/** A multiple resource's values (`{ 0: 0, 1: 2 }`), a single value, or undefined. */
function toNumbers(value: unknown): number[] | undefined {
  if (value === undefined || value === null) return undefined;
  if (typeof value === 'object') return Object.values(value as Record<string, unknown>).map(Number);
  return [Number(value)];
}

/** `bound` as a URI host: for a wildcard bind, the local address that routes to `peer`. */
async function hostToward(bound: string, peer: string): Promise<string> {
  let host = bound;
  if (host === '::' || host === '0.0.0.0' || host === '') host = await localAddressToward(peer);
  if (host.startsWith('::ffff:')) host = host.slice(7);
  return isIPv6(host) ? `[${host}]` : host;
}

/** The local address the kernel would use to reach `address` (a connected UDP socket sends nothing). */
function localAddressToward(address: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = createSocket(isIPv6(address) ? 'udp6' : 'udp4');
    socket.on('error', (err) => {
      socket.close();
      reject(
        new Failure(`no route to ${address}: set baseUri (${err.message})`, 'unsupported-delivery', 'downloading'),
      );
    });
    socket.connect(9, address, () => {
      const local = socket.address().address;
      socket.close();
      resolve(local);
    });
  });
}
