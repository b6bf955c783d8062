/**
 * Our firmware update (FirmwareJob) against LwM2M client stacks we did not write. Optional: each client runs
 * only when its env var names the binary, otherwise its tests skip.
 *
 *   ANJAY_DEMO      AVSystem Anjay's demo client (`output/bin/demo`, -DWITH_DEMO=ON). Its Firmware Update object
 *                   is real: a package is a header (magic "ANJAY_FW", header version 2, a forced error case, the
 *                   CRC-32 of the body, the package version "1.0") and a body it execv()s on Update; our body is a
 *                   shell script that starts the demo again with the same arguments, so the "new firmware" registers
 *                   again and reports Update Result 1 (kept in --fw-updated-marker-path across the exec).
 *   WAKAAMA_CLIENT  Eclipse Wakaama's example client (`lwm2mclient`, examples/client). Its object 5 is a stub:
 *                   State starts at 1 (Downloading) and writes change nothing, so a job must refuse it cleanly; a
 *                   Block1 write of a package is still a block-wise peer we did not write.
 *
 *   npm run build:test && ANJAY_DEMO=/path/demo WAKAAMA_CLIENT=/path/lwm2mclient \
 *     npx mocha --no-config --timeout 120000 build/test/interop/firmware-clients.test.js
 */
import { strict as assert } from 'node:assert';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  FirmwareJob,
  FirmwareJobError,
  type FirmwareJobOptions,
  type FirmwareJobResult,
  type FirmwareProgress,
} from '../../lib/firmware';
import { Bench } from '../client/helpers';
import { ClientProcess } from './client-process';

const anjay = process.env.ANJAY_DEMO;
const wakaama = process.env.WAKAAMA_CLIENT;
const available = (binary: string | undefined): boolean => binary !== undefined && existsSync(binary);

/** Resolves when `endpoint` registers with `bench.server`; rejects after `timeoutMs` with the client's output. */
function registration(bench: Bench, endpoint: string, client: () => ClientProcess | undefined): Promise<void> {
  return new Promise((resolve, reject) => {
    const onRegistered = (registration: { endpoint: string }): void => {
      if (registration.endpoint !== endpoint) return;
      clearTimeout(timer);
      bench.server.off('registered', onRegistered);
      resolve();
    };
    const timer = setTimeout(() => {
      bench.server.off('registered', onRegistered);
      reject(new Error(`${endpoint} did not register; client output:\n${client()?.tail() ?? ''}`));
    }, 20_000);
    bench.server.on('registered', onRegistered);
  });
}

/** Anjay's timing is the default CoAP one (ACK_TIMEOUT 2 s): generous limits, no hurry on loopback. */
const TIMEOUTS = { requestMs: 10_000, downloadMs: 60_000, updateMs: 60_000 };

function crc32(data: Buffer): number {
  let crc = 0xffffffff;
  for (const byte of data) {
    crc ^= byte;
    for (let bit = 0; bit < 8; bit++) crc = crc & 1 ? (crc >>> 1) ^ 0xedb88320 : crc >>> 1;
  }
  return (crc ^ 0xffffffff) >>> 0;
}

/** Anjay demo's forced error cases (its test framework's PackageForcedError.Firmware). */
const FORCE = { none: 0, outOfMemory: 1, failedUpdate: 2, defer: 8 };

/**
 * An Anjay demo firmware package: the header, then a shell script that runs `demo` again with the arguments it
 * is given (execv passes the old ones), padded to `size` bytes so that it goes block-wise.
 */
function anjayPackage(demo: string, options: { force?: number; size?: number; badCrc?: boolean } = {}): Buffer {
  const script = Buffer.from(`#!/bin/sh\nexec '${demo}' "$@"\n`);
  const padding = Buffer.from('#'.repeat(Math.max(0, (options.size ?? 0) - script.length - 40)) + '\n');
  const body = Buffer.concat([script, padding]);
  const version = Buffer.from('1.0');
  const header = Buffer.alloc(17);
  header.write('ANJAY_FW', 0, 'latin1');
  header.writeUInt16BE(2, 8);
  header.writeUInt16BE(options.force ?? FORCE.none, 10);
  header.writeUInt32BE((crc32(body) ^ (options.badCrc ? 1 : 0)) >>> 0, 12);
  header.writeUInt8(version.length, 16);
  return Buffer.concat([header, version, body]);
}

describe('interop: firmware update of Anjay demo', function () {
  let bench: Bench;
  let client: ClientProcess | undefined;
  let workdir: string | undefined;

  before(function () {
    if (!available(anjay)) this.skip();
  });

  beforeEach(async function () {
    bench = new Bench();
    await bench.startServer({ coap: {} }); // the client's timing (2 s) is the default: ours too
  });

  /** The demo keeps each package it receives in /tmp/anjay-fw-XXXXXX (hard-coded there) and leaves some behind. */
  let packagesBefore = new Set<string>();
  const anjayPackages = (): string[] => readdirSync('/tmp').filter((name) => name.startsWith('anjay-fw-'));

  afterEach(async function () {
    await client?.stop();
    client = undefined;
    await bench.close();
    if (workdir) rmSync(workdir, { recursive: true, force: true });
    workdir = undefined;
    // Ours only: new since the test began, and the script our packages carry.
    for (const name of anjayPackages()) {
      if (packagesBefore.has(name)) continue;
      const path = join('/tmp', name);
      const head = readFileSync(path).subarray(0, 200).toString('latin1');
      if (head.startsWith(`#!/bin/sh\nexec '${anjay}'`)) rmSync(path, { force: true });
    }
  });

  async function start(endpoint: string): Promise<void> {
    packagesBefore = new Set(anjayPackages());
    workdir = mkdtempSync(join(tmpdir(), 'fw-anjay-'));
    const args = ['-e', endpoint, '-u', `coap://127.0.0.1:${bench.port}`, '-l', '60'];
    args.push('--fw-updated-marker-path', join(workdir, 'fw-updated'));
    const registered = registration(bench, endpoint, () => client);
    client = new ClientProcess(anjay!, args, workdir);
    await registered;
  }

  async function update(
    options: Partial<FirmwareJobOptions> & { endpoint: string; image: Buffer },
  ): Promise<{ result?: FirmwareJobResult; error?: FirmwareJobError; events: FirmwareProgress[] }> {
    const events: FirmwareProgress[] = [];
    const job = new FirmwareJob(bench.server, { timeouts: TIMEOUTS, pollIntervalMs: 1000, ...options });
    job.on('progress', (p) => events.push(p));
    try {
      return { result: await job.run(), events };
    } catch (err) {
      assert.ok(err instanceof FirmwareJobError, String(err));
      return { error: err, events };
    }
  }

  const outcome = (run: { result?: FirmwareJobResult; error?: FirmwareJobError }, output: string): string =>
    JSON.stringify(run.result ?? run.error?.result) + '\n' + output.split('\n').slice(-30).join('\n');

  it('push (Block1, 200 KB): Downloaded, Update, the new image registers, Update Result 1', async function () {
    await start('fw-anjay-push');
    const run = await update({
      endpoint: 'fw-anjay-push',
      image: anjayPackage(anjay!, { size: 200_000 }),
      method: 'push',
    });
    assert.equal(run.result?.ok, true, outcome(run, client!.output));
    assert.equal(run.result.result, 1);
    assert.equal(run.result.method, 'push');
    assert.ok(
      run.events.some((e) => /the device is back/.test(e.detail)),
      'it registered again',
    );
  });

  it('pull over coap:// (Block2, 200 KB): the demo fetches from our package server, progress on the way', async function () {
    await start('fw-anjay-pull');
    const run = await update({
      endpoint: 'fw-anjay-pull',
      image: anjayPackage(anjay!, { size: 200_000 }),
      method: 'pull',
    });
    assert.equal(run.result?.ok, true, outcome(run, client!.output));
    assert.equal(run.result.method, 'pull');
    const fetched = run.events.filter((e) => e.state === 'downloading' && e.percent! > 0 && e.percent! < 100);
    assert.ok(fetched.length >= 2, `download progress: ${fetched.length}`);
  });

  it('a package whose CRC does not match: integrity-failure (Update Result 5)', async function () {
    await start('fw-anjay-crc');
    const run = await update({ endpoint: 'fw-anjay-crc', image: anjayPackage(anjay!, { badCrc: true }) });
    assert.equal(run.error?.cause, 'integrity-failure', outcome(run, client!.output));
    assert.equal(run.error.result.result, 5);
    assert.equal(run.error.result.phase, 'downloading');
  });

  it('a deferred update (Update Result 11): the job waits in deferred, then gives up with cause deferred', async function () {
    await start('fw-anjay-defer');
    const run = await update({
      endpoint: 'fw-anjay-defer',
      image: anjayPackage(anjay!, { force: FORCE.defer }),
      timeouts: { ...TIMEOUTS, deferredMs: 3000 },
    });
    assert.equal(run.error?.cause, 'deferred', outcome(run, client!.output));
    assert.equal(run.error.result.result, 11);
    assert.ok(run.events.some((e) => e.state === 'deferred'));
  });

  it('asked again while it defers (deferredRetryMs): Anjay takes the Execute and, forced to defer, defers again', async function () {
    await start('fw-anjay-defer-ask');
    const run = await update({
      endpoint: 'fw-anjay-defer-ask',
      image: anjayPackage(anjay!, { force: FORCE.defer }),
      timeouts: { ...TIMEOUTS, deferredMs: 3000, deferredRetryMs: 700 },
    });
    assert.equal(run.error?.cause, 'deferred', outcome(run, client!.output));
    assert.ok(
      run.events.filter((e) => /asking the device again/.test(e.detail)).length >= 2,
      outcome(run, client!.output),
    );
  });

  it('a failing update (forced): update-failed (Update Result 8)', async function () {
    await start('fw-anjay-fail');
    const run = await update({ endpoint: 'fw-anjay-fail', image: anjayPackage(anjay!, { force: FORCE.failedUpdate }) });
    assert.equal(run.error?.cause, 'update-failed', outcome(run, client!.output));
    assert.equal(run.error.result.result, 8);
  });
});

describe('interop: firmware update of Wakaama lwm2mclient', function () {
  let bench: Bench;
  let client: ClientProcess | undefined;

  before(function () {
    if (!available(wakaama)) this.skip();
  });

  beforeEach(async function () {
    bench = new Bench();
    await bench.startServer({ coap: {} });
    const registered = registration(bench, 'fw-wakaama', () => client);
    const args = ['-4', '-h', '127.0.0.1', '-p', String(bench.port), '-l', '0', '-t', '60', '-n', 'fw-wakaama'];
    client = new ClientProcess(wakaama!, args);
    await registered;
  });

  afterEach(async function () {
    await client?.stop();
    client = undefined;
    await bench.close();
  });

  it('takes a 100 KB package written block-wise (Block1) to /5/0/0', async function () {
    const written = await bench.server.write('fw-wakaama', '/5/0/0', Buffer.alloc(100_000, 7), {
      format: 42,
      timeoutMs: 60_000,
    });
    assert.equal(written.code, '2.04');
  });

  it('a job refuses its stub object cleanly: unsupported-delivery (it stays Downloading after a reset)', async function () {
    const job = new FirmwareJob(bench.server, {
      endpoint: 'fw-wakaama',
      image: Buffer.alloc(5000, 1),
      timeouts: TIMEOUTS,
      pollIntervalMs: 1000,
    });
    const err = await job.run().then(
      () => assert.fail('the job succeeded'),
      (e: unknown) => e,
    );
    assert.ok(err instanceof FirmwareJobError);
    assert.equal(err.cause, 'unsupported-delivery');
    assert.match(err.message, /stays in 1 Downloading after a reset/);
  });
});
