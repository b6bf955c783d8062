/**
 * Firmware Update (object 5) with a real state machine (LwM2M Core Appendix E.6):
 *
 *   Idle(0) --write Package (push, Block1) / Package URI (pull)--> Downloading(1) --> Downloaded(2)
 *   Downloaded(2) --execute Update--> Updating(3) --reboot--> Idle(0) with Update Result 1 and the new
 *   firmware version in /3/0/3 (the device registers again after its simulated reboot).
 *
 * Writing an empty Package or Package URI, or executing Cancel (1.1+), returns to Idle. Failure modes
 * for tests: 'integrity' (the package fails verification: Idle, result 5), 'rollback' (reboots into
 * the old version: result 8), 'no-return' (the device never comes back after the update), 'fail-in-place' (the
 * update fails without a reboot: back to Downloaded with result 8, the package kept, as Anjay does). `deferOnceMs`
 * defers the first Update (Update Result 11, State stays Downloaded) and applies it by itself later.
 */
import { createHash } from 'node:crypto';
import { DownloadError, UpdateResult, type DownloadTls } from '../download';
import { ClientError } from '../errors';
import { EMPTY_BUFFER } from '../object-tree';
import type { ObjectContext, ObjectImplementation } from './types';

export type FirmwareFailureMode = 'integrity' | 'rollback' | 'no-return' | 'fail-in-place';

export interface FirmwareOptions {
  /** Make updates fail on purpose (tests). */
  failure?: FirmwareFailureMode;
  /**
   * The firmware version a package installs. Default: a package that is text and starts with
   * `version=X` (or `version: X`) installs X; any other one `fw-` and the first 8 hex digits of its SHA-256.
   */
  versionOf?: (pkg: Buffer) => string;
  /** Checks a downloaded package; false is an integrity failure. Default: any non-empty package is fine. */
  verify?: (pkg: Buffer) => boolean;
  /** How long the device stays in Updating (3) before it reboots, ms (default 200). */
  updateDelayMs?: number;
  /** Largest package accepted, bytes (default 8 MiB). */
  maxPackageSize?: number;
  /** Limit for a pull download, ms (default 60000). */
  downloadTimeoutMs?: number;
  /** Whom an https:// pull trusts (default: the system's CAs). */
  tls?: DownloadTls;
  /**
   * Defer the first Execute Update (Update Result 11 of object 5 v1.1; State stays Downloaded), then apply it
   * by itself after this many ms (Updating, reboot) as if its user had allowed it. Default: never defers.
   */
  deferOnceMs?: number;
}

export const FirmwareState = { IDLE: 0, DOWNLOADING: 1, DOWNLOADED: 2, UPDATING: 3 } as const;

export function defaultVersionOf(pkg: Buffer): string {
  const head = pkg.subarray(0, 200).toString('latin1');
  const match = /^version\s*[=:]\s*([\x21-\x7e]{1,64})/.exec(head);
  if (match) return match[1];
  return 'fw-' + createHash('sha256').update(pkg).digest('hex').slice(0, 8);
}

export function firmwareObject(ctx: ObjectContext, options: FirmwareOptions = {}): ObjectImplementation {
  const maxSize = options.maxPackageSize ?? 8 * 1024 * 1024;
  let state: number = FirmwareState.IDLE;
  let pkg: Buffer | undefined;
  /** Bumped on every reset, so a download finishing after a cancel is ignored. */
  let generation = 0;
  let deferred = false;

  const setState = (next: number, result?: number): void => {
    state = next;
    ctx.set('/5/0/3', next);
    if (result !== undefined) ctx.set('/5/0/5', result);
    if (ctx.lwm2mVersion !== '1.0') ctx.set('/5/0/12', new Date());
    ctx.emit('firmware', { state: next, result: Number(ctx.get('/5/0/5')) });
  };

  const reset = (result: number = UpdateResult.INITIAL): void => {
    generation++;
    pkg = undefined;
    setState(FirmwareState.IDLE, result);
  };

  const downloaded = (data: Buffer, gen: number): void => {
    if (gen !== generation) return;
    const ok = options.failure !== 'integrity' && data.length > 0 && (options.verify?.(data) ?? true);
    if (!ok) {
      reset(UpdateResult.INTEGRITY_FAILURE);
      return;
    }
    pkg = data;
    const version = (options.versionOf ?? defaultVersionOf)(data);
    ctx.set('/5/0/6', 'firmware');
    ctx.set('/5/0/7', version);
    setState(FirmwareState.DOWNLOADED, UpdateResult.INITIAL);
  };

  /** Updating (3), then the reboot into `version` (or the failure asked for). */
  const install = (version: string, gen: number): void => {
    setState(FirmwareState.UPDATING);
    setTimeout(() => {
      if (gen !== generation) return;
      if (options.failure === 'fail-in-place') {
        setState(FirmwareState.DOWNLOADED, UpdateResult.UPDATE_FAILED);
        return;
      }
      ctx.reboot(() => {
        pkg = undefined;
        state = FirmwareState.IDLE;
        if (options.failure === 'no-return') return 'stay-down';
        if (options.failure === 'rollback') {
          setState(FirmwareState.IDLE, UpdateResult.UPDATE_FAILED);
          return;
        }
        ctx.set('/3/0/3', version);
        setState(FirmwareState.IDLE, UpdateResult.SUCCESS);
      });
    }, options.updateDelayMs ?? 200);
  };

  const refuseWhileBusy = (): void => {
    if (state !== FirmwareState.IDLE) {
      throw new ClientError('4.00', `a firmware update is already in progress (state ${state})`);
    }
  };

  const spec = {
    0: {
      value: EMPTY_BUFFER,
      write: (value: unknown) => {
        const data = value as Buffer;
        if (data.length === 0) {
          reset();
          return false;
        }
        refuseWhileBusy();
        if (data.length > maxSize) throw new ClientError('4.13', `package larger than ${maxSize} bytes`);
        const gen = ++generation;
        setState(FirmwareState.DOWNLOADING, UpdateResult.INITIAL);
        setImmediate(() => downloaded(data, gen));
        return false; // the package is not kept in the resource
      },
    },
    1: {
      value: '',
      write: (value: unknown) => {
        const uri = String(value);
        if (uri === '') {
          reset();
          return;
        }
        refuseWhileBusy();
        const gen = ++generation;
        setState(FirmwareState.DOWNLOADING, UpdateResult.INITIAL);
        setImmediate(() => {
          if (gen !== generation) return;
          ctx.download(uri, options.downloadTimeoutMs ?? 60_000, maxSize, options.tls).then(
            (data) => downloaded(data, gen),
            (err: unknown) => {
              if (gen !== generation) return;
              reset(err instanceof DownloadError ? err.result : UpdateResult.CONNECTION_LOST);
            },
          );
        });
      },
    },
    2: {
      execute: () => {
        if (state !== FirmwareState.DOWNLOADED || pkg === undefined) {
          throw new ClientError('4.00', `no firmware package downloaded (state ${state})`);
        }
        const version = String(ctx.get('/5/0/7'));
        const gen = generation;
        if (options.deferOnceMs !== undefined && !deferred) {
          deferred = true;
          setState(FirmwareState.DOWNLOADED, UpdateResult.DEFERRED);
          // unref: a simulated user who never comes back must not keep the process alive.
          setTimeout(() => {
            if (gen === generation && state === FirmwareState.DOWNLOADED) install(version, gen);
          }, options.deferOnceMs).unref();
          return;
        }
        install(version, gen);
      },
    },
    3: FirmwareState.IDLE,
    5: UpdateResult.INITIAL,
    6: '',
    7: '',
    8: [0, 2, 3], // CoAP, HTTP 1.1, HTTPS 1.1
    9: 2, // push and pull
  } as Record<number, unknown>;
  if (ctx.lwm2mVersion !== '1.0') {
    spec[10] = {
      execute: () => {
        if (state !== FirmwareState.DOWNLOADING && state !== FirmwareState.DOWNLOADED) {
          throw new ClientError('4.00', `nothing to cancel (state ${state})`);
        }
        reset(UpdateResult.CANCELLED);
      },
    };
    spec[12] = new Date();
  }
  return { creatable: false, instance: () => spec };
}
