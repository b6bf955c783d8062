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
 * - verifying: Update Result 1 and, when expected, the new /3/0/3 Firmware Version.
 *
 * A job resolves with a FirmwareJobResult (ok) or rejects with a FirmwareJobError (its cause, the phase,
 * the Update Result and its text). Every transition is a 'progress' event.
 */
import { createSocket } from 'node:dgram';
import { randomBytes } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { isIPv6 } from 'node:net';
import { requestTimeoutFor } from '../coap/timeouts';
import { Lwm2mRequestError } from '../server/errors';
import type { Lwm2mServer } from '../server/lwm2m-server';
import type { Notification } from '../server/observation-service';
import type { Registration } from '../server/registration';
import { packageServerFor, type HttpPublishedPackage, type PublishedPackage } from './package-server';
import {
  causeOfResult,
  FirmwareUpdateState as S,
  PROTOCOL_SCHEMES,
  resultText,
  STATE_TEXT,
  type FirmwareFailureCause,
} from './results';

const OPAQUE = 42;

export type FirmwareMethod = 'push' | 'pull' | 'auto';

export type FirmwareJobState =
  'starting' | 'resetting' | 'downloading' | 'downloaded' | 'updating' | 'verifying' | 'cancelling' | 'done' | 'failed';

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
}

interface FirmwareJobCommon {
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
   * device) or by a small HTTP server of this Lwm2mServer ('http': `http://<address>:<port>/fw/<random>`),
   * started on first use and closed when no package is served over it any more.
   */
  pullVia?: 'coap' | 'http';
  /**
   * pullVia 'http': the HTTP server's port when this job starts it (0, the default: a free port); it binds to
   * the CoAP listener's address. A running HTTP server is reused as it is.
   */
  httpPort?: number;
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
}

export class FirmwareJob extends EventEmitter<FirmwareJobEvents> {
  readonly endpoint: string;
  readonly id = 'fota-' + randomBytes(6).toString('hex');
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
    if (options.pullVia !== undefined && options.pullVia !== 'coap' && options.pullVia !== 'http')
      throw new TypeError(`pullVia is 'coap' or 'http', not ${JSON.stringify(options.pullVia)}`);
    const port = options.httpPort;
    if (port !== undefined && !(Number.isInteger(port) && port >= 0 && port <= 65535))
      throw new TypeError(`httpPort ${String(port)} is not a port (0 to 65535)`);
    this.endpoint = options.endpoint;
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
    this.listen();
    try {
      if (this.cancelRequested) throw new Failure('cancelled before it started', 'cancelled');
      await this.prepare();
      await this.download();
      await this.checkPackage();
      const version = await this.update();
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
    }
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
        : this.options.pullVia === 'http'
          ? 'http:'
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
      try {
        this.pushing = this.server.write(this.endpoint, '/5/0/0', image!, { format: OPAQUE, timeoutMs: downloadMs });
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

  private async update(): Promise<string | undefined> {
    const updateMs = this.options.timeouts?.updateMs ?? 600_000;
    const deadline = Date.now() + updateMs;
    this.cameBack = false;
    this.sawUpdating = false;
    this.progress('updating', 'executing Update (/5/0/2)');
    await this.request(() =>
      this.server.execute(this.endpoint, '/5/0/2', undefined, { timeoutMs: this.options.timeouts?.requestMs }),
    );
    this.progress('updating', 'the device installs the package and reboots');
    for (;;) {
      const how = await this.waitUntil('updating', deadline, () => {
        if (this.cameBack) return 'back' as const;
        if (
          this.sawUpdating &&
          this.deviceState === S.IDLE &&
          this.deviceResult !== undefined &&
          this.deviceResult !== 0
        ) {
          return 'reported' as const;
        }
        return undefined;
      });
      if (how === 'back') {
        this.cameBack = false;
        this.progress('updating', 'the device is back: reading its State and Update Result');
        try {
          await this.readStatus();
        } catch {
          continue; // not answering yet: wait for the next sign of life or poll
        }
        if (this.deviceState !== S.IDLE) continue;
      }
      break;
    }
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
  private async waitUntil<T>(phase: FirmwareJobState, deadline: number, check: () => T | undefined): Promise<T> {
    const interval = this.options.pollIntervalMs ?? 5000;
    let nextPoll = Date.now() + (this.observing && phase === 'downloading' ? interval * 4 : interval);
    for (;;) {
      if (this.cancelRequested) throw new Failure('cancelled by the caller', 'cancelled', phase);
      const value = check();
      if (value !== undefined) return value;
      const now = Date.now();
      if (now >= deadline) {
        const cause = phase === 'downloading' ? 'download-timeout' : 'update-timeout';
        const what =
          phase === 'downloading'
            ? 'the device did not report Downloaded'
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
    if (this.options.pullVia === 'http') return this.publishHttp(registration);
    const base = await this.baseUri(registration);
    this.published = packageServerFor(this.server).publish(this.options.image!);
    return base.replace(/\/+$/, '') + this.published.path;
  }

  /** Pull over HTTP: the image on the HTTP server of this Lwm2mServer (started when none runs). */
  private async publishHttp(registration: Registration): Promise<string> {
    const bound = this.server.address;
    if (!bound) throw new Failure('the LwM2M server is not running', 'request-failed', 'downloading');
    let published: HttpPublishedPackage;
    try {
      published = await packageServerFor(this.server).publishHttp(this.options.image!, {
        port: this.options.httpPort ?? 0,
        address: bound.address,
      });
    } catch (err) {
      throw new Failure(`the HTTP package server does not start: ${(err as Error).message}`, 'request-failed');
    }
    this.published = published;
    const base =
      this.options.baseUri ?? `http://${await hostToward(published.address, registration.address)}:${published.port}`;
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
    // (Before the download nothing of this job is on the device; once it updates, nothing can be cancelled.)
    const touched = phase === 'downloading' || phase === 'downloaded';
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
