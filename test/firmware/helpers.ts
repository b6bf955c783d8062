import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Lwm2mClient } from '../../lib/client';
import type { FirmwareOptions } from '../../lib/client/objects/firmware';
import { strict as assert } from 'node:assert';
import { FirmwareJob, FirmwareJobError, type FirmwareJobOptions, type FirmwareProgress } from '../../lib/firmware';
import type { Lwm2mServer } from '../../lib/server/lwm2m-server';
import type { Bench } from '../client/helpers';

/** A package the simulator installs as `version` (it reads `version=X` at its start). */
export function firmwarePackage(version: string, size = 6000): Buffer {
  const head = Buffer.from(`version=${version}\n`);
  const body = Buffer.alloc(Math.max(0, size - head.length));
  for (let i = 0; i < body.length; i++) body[i] = (i * 31 + 7) & 255;
  return Buffer.concat([head, body]);
}

/** Short timeouts for loopback devices that answer at once. */
export const FAST_TIMEOUTS = { requestMs: 1000, downloadMs: 5000, updateMs: 5000 };

/** A job with loopback timing (`defaults` for a test file, `options` for one test), not started. */
export function fastJob(
  server: Lwm2mServer,
  options: Partial<FirmwareJobOptions> & { endpoint: string },
  defaults: Partial<FirmwareJobOptions> = {},
): FirmwareJob {
  return new FirmwareJob(server, {
    timeouts: FAST_TIMEOUTS,
    pollIntervalMs: 200,
    ...defaults,
    ...options,
  } as FirmwareJobOptions);
}

/** The FirmwareJobError a job's run() rejects with (fails the test when it succeeds). */
export async function failure(promise: Promise<unknown>): Promise<FirmwareJobError> {
  const err = await promise.then(
    () => assert.fail('the job succeeded'),
    (e: unknown) => e,
  );
  assert.ok(err instanceof FirmwareJobError, `a FirmwareJobError, not ${String(err)}`);
  return err;
}

/** A registered simulated device with the Firmware Update object, quick to update and to reboot. */
export function firmwareDevice(
  bench: Bench,
  endpointName: string,
  firmware: FirmwareOptions = {},
  lwm2mVersion?: '1.0' | '1.1' | '1.2',
): Promise<Lwm2mClient> {
  return bench.registered({
    endpointName,
    objects: [5],
    firmware: { updateDelayMs: 20, downloadTimeoutMs: 3000, ...firmware },
    ...(lwm2mVersion ? { lwm2mVersion } : {}),
  });
}

/** Collects a job's or a campaign's progress events. */
export function recorder(): { events: FirmwareProgress[]; listener: (p: FirmwareProgress) => void } {
  const events: FirmwareProgress[] = [];
  return { events, listener: (p) => events.push(p) };
}

/** Test certificates made with the openssl CLI, in a temporary directory that `remove()` deletes. */
export interface HttpsPki {
  dir: string;
  path(file: string): string;
  /** PEM text of a file. */
  read(file: string): string;
  remove(): void;
}

/**
 * Two CAs ('ca', 'other-ca') and a server certificate from each ('server', 'other-server') for 127.0.0.1 (an
 * IP subjectAltName: https clients check it) with P-256 keys, as a DTLS listener would have them too.
 */
export function createHttpsPki(): HttpsPki {
  const dir = mkdtempSync(join(tmpdir(), 'fw-https-pki-'));
  const path = (file: string): string => join(dir, file);
  const openssl = (...args: string[]): void => {
    const result = spawnSync('openssl', args, { cwd: dir });
    if (result.status !== 0) throw new Error(`openssl ${args.join(' ')}: ${result.stderr.toString()}`);
  };
  writeFileSync(path('server.ext'), 'basicConstraints=CA:FALSE\nsubjectAltName=IP:127.0.0.1,DNS:localhost\n');
  const key = (name: string): void =>
    openssl('ecparam', '-name', 'prime256v1', '-genkey', '-noout', '-out', `${name}.key`);
  for (const [ca, server] of [
    ['ca', 'server'],
    ['other-ca', 'other-server'],
  ]) {
    key(ca);
    openssl(
      'req',
      '-x509',
      '-new',
      '-key',
      `${ca}.key`,
      '-subj',
      `/CN=fw test ${ca}`,
      '-days',
      '2',
      '-out',
      `${ca}.pem`,
    );
    key(server);
    openssl('req', '-new', '-key', `${server}.key`, '-subj', '/CN=127.0.0.1', '-out', `${server}.csr`);
    openssl(
      'x509',
      '-req',
      '-in',
      `${server}.csr`,
      '-CA',
      `${ca}.pem`,
      '-CAkey',
      `${ca}.key`,
      '-CAcreateserial',
      '-days',
      '1',
      '-extfile',
      'server.ext',
      '-out',
      `${server}.pem`,
    );
  }
  return {
    dir,
    path,
    read: (file) => readFileSync(path(file), 'utf8'),
    remove: () => rmSync(dir, { recursive: true, force: true }),
  };
}

/** Runs a command to completion; resolves with its exit code, stdout and stderr (never rejects). */
export function runCommand(
  command: string,
  args: string[],
  timeoutMs = 15000,
): Promise<{ code: number | null; stdout: Buffer; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(command, args, { timeout: timeoutMs });
    const out: Buffer[] = [];
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => out.push(chunk));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    child.on('error', (err) => resolve({ code: -1, stdout: Buffer.alloc(0), stderr: err.message }));
    child.on('close', (code) => resolve({ code, stdout: Buffer.concat(out), stderr }));
  });
}

/** Whether an executable is on the PATH (tests skip without it). */
export function hasBinary(name: string): boolean {
  return spawnSync('sh', ['-c', `command -v ${name}`], { stdio: 'ignore' }).status === 0;
}
