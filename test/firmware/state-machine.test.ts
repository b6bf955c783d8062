/**
 * The firmware state machine against a fake device (a FirmwareDevice and a PackageDelivery in a few lines, no
 * server, no CoAP): push and pull through every phase, a device without object 5, a cancel while the device
 * downloads, a deferral applied later, and the record a store gets. Shows the job needs nothing of the server.
 */
import { strict as assert } from 'node:assert';
import {
  FirmwareJob,
  FirmwareJobError,
  MemoryFirmwareJobStore,
  type FirmwareDevice,
  type FirmwareDeviceListener,
  type FirmwareDeviceRegistration,
  type FirmwareJobOptions,
  type FirmwareProgress,
  type FirmwareWriteOptions,
  type PackageDelivery,
  type PackagePublication,
  type PackagePublishOptions,
} from '../../lib/firmware';
import { Lwm2mRequestError } from '../../lib/server/errors';

/** An object-5 device in memory: it downloads at once, updates after a reboot (a registration), or defers. */
class FakeDevice implements FirmwareDevice {
  readonly calls: string[] = [];
  readonly values = new Map<string, unknown>([
    ['/5/0/3', 0],
    ['/5/0/5', 0],
    ['/3/0/3', '1.0.0'],
  ]);
  registered = true;
  hasObject5 = true;
  /** Stay in Downloading after the package arrives (a download that never ends). */
  stuckDownloading = false;
  /** Answer Update with Update Result 11, then apply it when asked again. */
  defersOnce = false;
  /** Called when a URI is written to /5/0/1: the device fetches the package. */
  fetch?: () => void;
  private readonly listeners = new Set<FirmwareDeviceListener>();
  private readonly observed = new Set<string>();

  constructor(
    readonly endpoint: string,
    private readonly newVersion: string,
  ) {}

  async registration(): Promise<FirmwareDeviceRegistration | undefined> {
    return this.registered ? { endpoint: this.endpoint, address: '127.0.0.1' } : undefined;
  }

  async read(path: string): Promise<unknown> {
    this.calls.push(`read ${path}`);
    if (!this.hasObject5 && path.startsWith('/5/'))
      throw new Lwm2mRequestError('no object 5', '4.04', this.endpoint, path);
    if (!this.values.has(path)) throw new Lwm2mRequestError('not found', '4.04', this.endpoint, path);
    return this.values.get(path);
  }

  async write(path: string, value: string | Buffer, options: FirmwareWriteOptions): Promise<unknown> {
    this.calls.push(`write ${path}`);
    if (value.length === 0) {
      this.set('/5/0/3', 0);
      this.set('/5/0/5', 0);
      return undefined;
    }
    if (path === '/5/0/0') options.onProgress?.(value.length, value.length);
    if (path === '/5/0/1') this.fetch?.();
    this.set('/5/0/3', 1);
    if (!this.stuckDownloading) setImmediate(() => this.set('/5/0/3', 2));
    return undefined;
  }

  async execute(path: string): Promise<unknown> {
    this.calls.push(`execute ${path}`);
    if (path === '/5/0/10') {
      this.set('/5/0/3', 0);
      this.set('/5/0/5', 10);
    } else if (path === '/5/0/2' && this.defersOnce) {
      this.defersOnce = false;
      setImmediate(() => this.set('/5/0/5', 11));
    } else if (path === '/5/0/2') {
      this.set('/5/0/3', 3);
      setImmediate(() => this.reboot());
    }
    return undefined;
  }

  async observe(path: string, owner: string): Promise<unknown> {
    this.calls.push(`observe ${path} for ${owner}`);
    this.observed.add(path);
    return undefined;
  }

  async releaseObservations(owner: string): Promise<void> {
    this.calls.push(`release ${owner}`);
    this.observed.clear();
  }

  watch(listener: FirmwareDeviceListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  transferTimeoutMs(bytes: number): number {
    return 1000 + bytes;
  }

  get watchers(): number {
    return this.listeners.size;
  }

  /** Runs the new firmware, and says so the way a rebooted device does: it registers again. */
  private reboot(): void {
    this.observed.clear();
    this.values.set('/3/0/3', this.newVersion);
    this.values.set('/5/0/3', 0);
    this.values.set('/5/0/5', 1);
    for (const listener of this.listeners) listener.back();
  }

  private set(path: string, value: number): void {
    this.values.set(path, value);
    if (!this.observed.has(path)) return;
    for (const listener of this.listeners) listener.notified(path, value);
  }
}

class FakePackages implements PackageDelivery {
  readonly published: Array<{ size: number; expired: boolean }> = [];
  /** How far the device got fetching the last package: tell the job. */
  fetched?: (sentBytes: number, totalBytes: number) => void;

  async publish(
    image: Buffer,
    device: FirmwareDeviceRegistration,
    options: PackagePublishOptions,
  ): Promise<PackagePublication> {
    const entry = { size: image.length, expired: false };
    this.published.push(entry);
    this.fetched = options.onProgress;
    return { uri: `coap://${device.address}:5683/fw/0123`, expire: () => (entry.expired = true) };
  }
}

function fakeJob(
  device: FakeDevice,
  options: Partial<FirmwareJobOptions>,
  packages = new FakePackages(),
): { job: FirmwareJob; packages: FakePackages; events: FirmwareProgress[] } {
  const job = new FirmwareJob({ device, packages }, {
    endpoint: device.endpoint,
    image: Buffer.from('new firmware'),
    pollIntervalMs: 20,
    timeouts: { requestMs: 200, downloadMs: 2000, updateMs: 2000 },
    ...options,
  } as FirmwareJobOptions);
  const events: FirmwareProgress[] = [];
  job.on('progress', (event) => events.push(event));
  return { job, packages, events };
}

const phases = (events: FirmwareProgress[]): string[] => [...new Set(events.map((e) => e.state))];

describe('firmware: the state machine against a fake device', function () {
  it('push: every phase, the version checked, observations released, nothing left listening', async function () {
    const device = new FakeDevice('fake-push', '2.0.0');
    const { job, events } = fakeJob(device, { expectedFirmwareVersion: '2.0.0' });
    const result = await job.run();
    assert.equal(result.ok, true);
    assert.equal(result.method, 'push');
    assert.equal(result.firmwareVersion, '2.0.0');
    assert.deepEqual(phases(events), ['starting', 'downloading', 'downloaded', 'updating', 'verifying', 'done']);
    assert.deepEqual(
      device.calls.filter((call) => !call.startsWith('read')),
      [
        `observe /5/0/3 for ${job.id}`,
        `observe /5/0/5 for ${job.id}`,
        'write /5/0/0',
        'execute /5/0/2',
        `release ${job.id}`,
      ],
    );
    assert.equal(device.watchers, 0);
  });

  it('pull: the delivery serves the image, /5/0/1 gets its URI, the package expires with the job', async function () {
    const device = new FakeDevice('fake-pull', '3.0.0');
    const { job, packages, events } = fakeJob(device, { method: 'pull' });
    device.fetch = () => packages.fetched?.(6, 12);
    const result = await job.run();
    assert.equal(result.ok, true);
    assert.equal(result.method, 'pull');
    assert.ok(device.calls.includes('write /5/0/1'));
    assert.deepEqual(packages.published, [{ size: 12, expired: true }]);
    assert.ok(
      events.some((e) => e.state === 'downloading' && e.percent === 50),
      'the delivery tells progress',
    );
  });

  it('a device without object 5: unsupported-delivery before anything is written', async function () {
    const device = new FakeDevice('fake-none', '2.0.0');
    device.hasObject5 = false;
    const { job } = fakeJob(device, {});
    const err = await job.run().then(
      () => assert.fail('the job succeeded'),
      (e: unknown) => e,
    );
    assert.ok(err instanceof FirmwareJobError);
    assert.equal(err.cause, 'unsupported-delivery');
    assert.equal(err.result.phase, 'starting');
    assert.ok(!device.calls.some((call) => call.startsWith('write')));
  });

  it('an unregistered device: request-failed', async function () {
    const device = new FakeDevice('fake-gone', '2.0.0');
    device.registered = false;
    const err = await fakeJob(device, {})
      .job.run()
      .then(
        () => assert.fail('the job succeeded'),
        (e: unknown) => e,
      );
    assert.ok(err instanceof FirmwareJobError);
    assert.equal(err.cause, 'request-failed');
  });

  it('a cancel while the device downloads: Cancel (/5/0/10) on it, cause cancelled', async function () {
    const device = new FakeDevice('fake-cancel', '2.0.0');
    device.stuckDownloading = true;
    const { job, events } = fakeJob(device, {});
    job.on('progress', (event) => {
      if (event.state === 'downloading' && event.percent === 100) void job.cancel();
    });
    const err = await job.run().then(
      () => assert.fail('the job succeeded'),
      (e: unknown) => e,
    );
    assert.ok(err instanceof FirmwareJobError);
    assert.equal(err.cause, 'cancelled');
    assert.equal(err.result.phase, 'downloading');
    assert.ok(device.calls.includes('execute /5/0/10'));
    assert.ok(events.some((e) => e.state === 'cancelling'));
  });

  it('a deferral (Update Result 11) asked again later: the device applies it and the job succeeds', async function () {
    const device = new FakeDevice('fake-defer', '4.0.0');
    device.defersOnce = true;
    const { job, events } = fakeJob(device, {
      timeouts: { requestMs: 200, downloadMs: 2000, updateMs: 2000, deferredMs: 2000, deferredRetryMs: 50 },
    });
    const result = await job.run();
    assert.equal(result.ok, true);
    assert.equal(result.firmwareVersion, '4.0.0');
    assert.ok(events.some((e) => e.state === 'deferred'));
    assert.equal(device.calls.filter((call) => call === 'execute /5/0/2').length, 2);
  });

  it('saves its record through the transitions and removes it at the end', async function () {
    const device = new FakeDevice('fake-store', '2.0.0');
    const store = new MemoryFirmwareJobStore();
    const saved: string[] = [];
    const save = store.save.bind(store);
    store.save = async (record) => {
      saved.push(record.state);
      await save(record);
    };
    const { job } = fakeJob(device, { store, imageSource: '/tmp/fw.bin' });
    await job.run();
    assert.equal(store.size, 0);
    assert.deepEqual([...new Set(saved)], ['starting', 'downloading', 'downloaded', 'updating', 'verifying']);
  });

  it("refuses a device whose endpoint is not the job's", function () {
    const device = new FakeDevice('fake-a', '2.0.0');
    assert.throws(
      () => new FirmwareJob({ device, packages: new FakePackages() }, { endpoint: 'fake-b', image: Buffer.from('x') }),
      /fake-a/,
    );
  });
});
