/**
 * The persistence seam: a job saves a plain-JSON FirmwareJobRecord at each transition (the image by SHA-256,
 * size and source, never its bytes) and removes it when it ends; a campaign's jobs carry its id and their
 * attempt. A restart is simulated with a store that stops taking writes at a chosen moment (what a crash
 * leaves behind) while the job objects are dropped (cancelled where that leaves the device alone); then
 * resumeJobs reports the interrupted jobs and continues those whose image can be loaded again.
 */
import { strict as assert } from 'node:assert';
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  FirmwareCampaign,
  MemoryFirmwareJobStore,
  resumeJobs,
  type FirmwareJobOptions,
  type FirmwareJobRecord,
  type FirmwareProgress,
} from '../../lib/firmware';
import { Bench, waitFor } from '../client/helpers';
import { FAST_TIMEOUTS, fastJob, firmwareDevice, firmwarePackage, recorder } from './helpers';

const OPAQUE = 42;

/** Keeps every save; after crashAfter(), takes no more writes once it saved the matching record (a crash). */
class CrashingStore extends MemoryFirmwareJobStore {
  readonly saves: FirmwareJobRecord[] = [];
  crashed = false;
  private crashAt?: (record: FirmwareJobRecord) => boolean;

  crashAfter(match: (record: FirmwareJobRecord) => boolean): void {
    this.crashAt = match;
  }

  /** The process is back: the store takes writes again. */
  restart(): void {
    this.crashAt = undefined;
    this.crashed = false;
  }

  override async save(record: FirmwareJobRecord): Promise<void> {
    if (this.crashed) return;
    this.saves.push(structuredClone(record));
    await super.save(record);
    if (this.crashAt?.(record)) this.crashed = true;
  }

  override async remove(id: string): Promise<void> {
    if (!this.crashed) await super.remove(id);
  }
}

describe('firmware: job records and resuming after a restart', function () {
  let bench: Bench;
  let dir: string;

  before(() => (dir = mkdtempSync(join(tmpdir(), 'fw-store-'))));
  after(() => rmSync(dir, { recursive: true, force: true }));

  beforeEach(async function () {
    bench = new Bench();
    await bench.startServer();
  });

  afterEach(async function () {
    await bench.close();
  });

  const job = (options: Partial<FirmwareJobOptions> & { endpoint: string }) =>
    fastJob(bench.server, options, { pollIntervalMs: 100 });

  /** An image in a file, as the node reads it: the source a resumed job loads it from again. */
  function imageFile(name: string, version: string, size = 6000): { image: Buffer; file: string } {
    const image = firmwarePackage(version, size);
    const file = join(dir, name);
    writeFileSync(file, image);
    return { image, file };
  }

  /**
   * Runs a job until the progress `at` matches: the store crashes once it has saved that transition, and the
   * job is dropped there and then (a cancel that the crashed store does not see). Then the store restarts.
   */
  async function crashDuring(
    options: Partial<FirmwareJobOptions> & { endpoint: string },
    at: (progress: FirmwareProgress) => boolean,
  ): Promise<CrashingStore> {
    const store = new CrashingStore();
    const first = job({ ...options, store });
    first.on('progress', (p) => {
      if (store.crashed || !at(p)) return;
      store.crashAfter((r) => r.state === p.state && r.detail === p.detail);
      void first.cancel();
    });
    await first.run().then(
      () => assert.fail('the first job should have been dropped'),
      () => undefined,
    );
    assert.equal(store.crashed, true);
    assert.equal(store.size, 1, 'its record outlived it');
    store.restart();
    return store;
  }

  it('saves a JSON record at each transition (the image by reference) and removes it at the end', async function () {
    await firmwareDevice(bench, 'fw-rec');
    const store = new CrashingStore();
    const { image, file } = imageFile('rec.bin', '9.0.0');
    const j = job({ endpoint: 'fw-rec', image, imageSource: file, expectedFirmwareVersion: '9.0.0', store });
    const result = await j.run();
    assert.equal(result.ok, true);
    assert.equal(store.size, 0, 'removed at the end');
    const states = [...new Set(store.saves.map((r) => r.state))];
    assert.deepEqual(states, ['starting', 'downloading', 'downloaded', 'updating', 'verifying']);
    const last = store.saves.at(-1)!;
    assert.deepEqual(JSON.parse(JSON.stringify(last)), last, 'plain JSON');
    assert.equal(last.id, j.id);
    assert.equal(last.endpoint, 'fw-rec');
    assert.equal(last.method, 'auto');
    assert.equal(last.deliveredBy, 'push');
    assert.equal(last.attempts, 1);
    assert.deepEqual(last.image, {
      sha256: createHash('sha256').update(image).digest('hex'),
      size: image.length,
      source: file,
    });
    assert.equal(last.options.expectedFirmwareVersion, '9.0.0');
    assert.deepEqual(last.options.timeouts, FAST_TIMEOUTS);
    assert.ok(last.startedAt <= last.updatedAt);
    assert.equal(store.saves.find((r) => r.state === 'downloaded')?.percent, 100);
    assert.ok(store.saves.every((r) => !('image' in r) || !Buffer.isBuffer(r.image)));
  });

  it('a campaign gives its jobs its id and their attempt; nothing is left after it', async function () {
    await Promise.all(['fw-rc-1', 'fw-rc-2', 'fw-rc-3'].map((name) => firmwareDevice(bench, name)));
    const store = new CrashingStore();
    const campaign = new FirmwareCampaign(bench.server, {
      endpoints: ['fw-rc-1', 'fw-rc-2', 'fw-rc-3'],
      job: { image: firmwarePackage('9.1.0'), timeouts: FAST_TIMEOUTS, pollIntervalMs: 100 },
      concurrency: 2,
      store,
    });
    const summary = await campaign.run();
    assert.equal(summary.succeeded, 3);
    assert.equal(store.size, 0);
    assert.deepEqual([...new Set(store.saves.map((r) => r.endpoint))].sort(), ['fw-rc-1', 'fw-rc-2', 'fw-rc-3']);
    assert.ok(store.saves.every((r) => r.campaignId === campaign.id && r.attempts === 1));
    assert.match(campaign.id, /^campaign-[0-9a-f]{12}$/);
  });

  it('interrupted while the device updates: the resumed job waits for it to come back and verifies', async function () {
    const device = await firmwareDevice(bench, 'fw-res-upd', { updateDelayMs: 300 });
    const { image, file } = imageFile('upd.bin', '9.2.0');
    const store = await crashDuring(
      { endpoint: 'fw-res-upd', image, imageSource: file, expectedFirmwareVersion: '9.2.0' },
      (r) => r.state === 'updating' && /reboots/.test(r.detail),
    );
    const [interrupted, ...others] = await resumeJobs(bench.server, store);
    assert.equal(others.length, 0);
    assert.equal(interrupted.result.ok, false);
    assert.equal(interrupted.result.cause, 'interrupted');
    assert.equal(interrupted.result.phase, 'updating');
    assert.equal(interrupted.result.method, 'push');
    assert.ok(interrupted.job, interrupted.reason);
    assert.equal(interrupted.job.id, interrupted.record.id, 'the same job, continued');
    const { events, listener } = recorder();
    interrupted.job.on('progress', listener);
    const result = await interrupted.job.run();
    assert.equal(result.ok, true);
    assert.equal(result.firmwareVersion, '9.2.0');
    assert.equal(device.get('/3/0/3'), '9.2.0');
    assert.ok(!events.some((e) => e.state === 'downloading'), 'not delivered again');
    assert.ok(!events.some((e) => /executing Update/.test(e.detail)), 'Update not executed again');
    assert.equal(store.size, 0);
  });

  it('interrupted with the package on the device (Downloaded): the resumed job executes Update', async function () {
    const device = await firmwareDevice(bench, 'fw-res-dl');
    const { image, file } = imageFile('dl.bin', '9.3.0');
    const store = await crashDuring(
      { endpoint: 'fw-res-dl', image, imageSource: file, expectedFirmwareVersion: '9.3.0' },
      (r) => r.state === 'downloaded',
    );
    // Dropping the first job cancelled on the device; the crash would have left the package there.
    await bench.server.write('fw-res-dl', '/5/0/0', image, { format: OPAQUE });
    await waitFor(() => device.get('/5/0/3') === 2, 5000, 'Downloaded');
    const [interrupted] = await resumeJobs(bench.server, store);
    assert.equal(interrupted.result.phase, 'downloaded');
    const { events, listener } = recorder();
    interrupted.job!.on('progress', listener);
    const result = await interrupted.job!.run();
    assert.equal(result.ok, true);
    assert.equal(device.get('/3/0/3'), '9.3.0');
    assert.ok(!events.some((e) => e.state === 'downloading'), 'not delivered again');
    assert.ok(events.some((e) => /executing Update/.test(e.detail)));
  });

  it('interrupted while downloading, the device Idle: the image is loaded from its file and delivered again', async function () {
    const device = await firmwareDevice(bench, 'fw-res-idle');
    const { image, file } = imageFile('idle.bin', '9.4.0', 30_000);
    const store = await crashDuring(
      { endpoint: 'fw-res-idle', image, imageSource: file, method: 'pull', expectedFirmwareVersion: '9.4.0' },
      (r) => r.state === 'downloading',
    );
    assert.equal(device.get('/5/0/3'), 0);
    const [interrupted] = await resumeJobs(bench.server, store);
    assert.equal(interrupted.result.phase, 'downloading');
    const { events, listener } = recorder();
    interrupted.job!.on('progress', listener);
    const result = await interrupted.job!.run();
    assert.equal(result.ok, true);
    assert.equal(result.method, 'pull');
    assert.equal(device.get('/3/0/3'), '9.4.0');
    assert.ok(events.some((e) => /delivering the package again/.test(e.detail)));
    assert.ok(events.some((e) => e.state === 'downloading'));
  });

  it('reports but does not resume records whose image is gone, changed, or came from a msg', async function () {
    const gone = imageFile('gone.bin', '9.5.0');
    const changed = imageFile('changed.bin', '9.5.0');
    const base = (id: string, image: FirmwareJobRecord['image']): FirmwareJobRecord => ({
      id,
      endpoint: `dev-${id}`,
      method: 'push',
      state: 'downloading',
      detail: 'pushing',
      attempts: 1,
      startedAt: 1000,
      updatedAt: 4000,
      ...(image ? { image } : {}),
      options: {},
    });
    const ref = (image: Buffer, source?: string) => ({
      sha256: createHash('sha256').update(image).digest('hex'),
      size: image.length,
      ...(source ? { source } : {}),
    });
    const store = new MemoryFirmwareJobStore();
    await store.save(base('gone', ref(gone.image, gone.file)));
    await store.save(base('changed', ref(changed.image, changed.file)));
    await store.save(base('msg', ref(changed.image)));
    await store.save({ ...base('uri', undefined), uri: 'coap://fota.example.com/fw.bin', deliveredBy: 'pull' });
    await store.save({ ...base('cancelling', ref(changed.image, changed.file)), state: 'cancelling' });
    rmSync(gone.file);
    writeFileSync(changed.file, firmwarePackage('9.5.1'));
    const out = await resumeJobs(bench.server, store);
    const byId = new Map(out.map((entry) => [entry.record.id, entry]));
    for (const entry of out) {
      assert.equal(entry.result.cause, 'interrupted');
      assert.equal(entry.result.durationMs, 3000);
    }
    assert.match(byId.get('gone')!.reason!, /the image is gone from .*gone\.bin/);
    assert.match(byId.get('changed')!.reason!, /changed/);
    assert.match(byId.get('msg')!.reason!, /a msg payload/);
    assert.match(byId.get('cancelling')!.reason!, /being cancelled/);
    assert.ok(byId.get('uri')!.job, 'a URI the device pulls itself needs no image');
    assert.equal(byId.get('uri')!.reason, undefined);
    assert.deepEqual(
      (await store.list()).map((r) => r.id),
      ['uri'],
      'the records not resumed are removed; the resumed one is its job’s now',
    );
    const reported = await resumeJobs(bench.server, store, { resume: false });
    assert.equal(reported.length, 1);
    assert.equal(reported[0].job, undefined);
    assert.equal(store.size, 0);
  });
});
