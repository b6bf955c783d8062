/**
 * FirmwareJob against the simulator: push and pull succeed and the version changes, a rejected image
 * (integrity, result 5), a reboot into the old version (verification fails), a device that never comes back
 * (update timeout), a 1 MiB push, a reset first when the device is not Idle, and a cancel.
 */
import { strict as assert } from 'node:assert';
import { FirmwareJob, packageServerFor, type FirmwareJobOptions } from '../../lib/firmware';
import { Bench, sleep, waitFor } from '../client/helpers';
import { failure, fastJob, firmwareDevice, firmwarePackage, recorder } from './helpers';

const OPAQUE = 42;

describe('firmware: FirmwareJob', function () {
  let bench: Bench;

  beforeEach(async function () {
    bench = new Bench();
    await bench.startServer();
  });

  afterEach(async function () {
    await bench.close();
  });

  const job = (options: Partial<FirmwareJobOptions> & { endpoint: string }) => fastJob(bench.server, options);

  it('pushes an image (auto picks push), updates, and the device runs the new version', async function () {
    const device = await firmwareDevice(bench, 'fw-push');
    const { events, listener } = recorder();
    const j = job({ endpoint: 'fw-push', image: firmwarePackage('2.0.0'), expectedFirmwareVersion: '2.0.0' });
    j.on('progress', listener);
    const result = await j.run();
    assert.equal(result.ok, true);
    assert.equal(result.result, 1);
    assert.equal(result.resultText, 'firmware updated successfully');
    assert.equal(result.firmwareVersion, '2.0.0');
    assert.equal(result.method, 'push');
    assert.ok(result.durationMs >= 0);
    assert.equal(device.get('/3/0/3'), '2.0.0');
    const states = [...new Set(events.map((e) => e.state))];
    assert.deepEqual(states, ['starting', 'downloading', 'downloaded', 'updating', 'verifying', 'done']);
    assert.ok(events.every((e) => e.endpoint === 'fw-push' && typeof e.detail === 'string'));
    assert.deepEqual(await bench.server.listObservations('fw-push'), [], 'its observations are released');
  });

  it('lets the device pull the image over coap:// from the server, then expires the path', async function () {
    const device = await firmwareDevice(bench, 'fw-pull');
    const { events, listener } = recorder();
    const j = job({
      endpoint: 'fw-pull',
      image: firmwarePackage('3.1.0', 20000),
      method: 'pull',
      expectedPackageVersion: '3.1.0',
      expectedFirmwareVersion: '3.1.0',
    });
    j.on('progress', listener);
    const result = await j.run();
    assert.equal(result.ok, true);
    assert.equal(result.method, 'pull');
    assert.equal(result.firmwareVersion, '3.1.0');
    assert.equal(device.get('/3/0/3'), '3.1.0');
    const uri = String(device.get('/5/0/1'));
    assert.match(uri, /^coap:\/\/127\.0\.0\.1:\d+\/fw\/[0-9a-f]{32}$/);
    assert.equal(packageServerFor(bench.server).size, 0, 'nothing served any more');
    const endpoint = await bench.rawEndpoint();
    const url = new URL(uri);
    const after = await endpoint.request(
      { address: '127.0.0.1', port: Number(url.port) },
      { method: 'GET', pathSegments: url.pathname.split('/').filter(Boolean) },
    );
    assert.equal(after.code, '4.04', 'the path expired with the job');
    assert.ok(events.some((e) => e.state === 'downloading' && e.detail.includes(uri)));
  });

  it('uses the given base URI for pull', async function () {
    await firmwareDevice(bench, 'fw-base');
    const j = job({
      endpoint: 'fw-base',
      image: firmwarePackage('3.2.0'),
      method: 'pull',
      baseUri: `coap://localhost:${bench.port}/`,
    });
    const result = await j.run();
    assert.equal(result.ok, true);
    assert.equal(result.firmwareVersion, '3.2.0');
  });

  it('fails with Update Result 5 when the device rejects the image (integrity check)', async function () {
    await firmwareDevice(bench, 'fw-bad', { failure: 'integrity' });
    const err = await failure(job({ endpoint: 'fw-bad', image: firmwarePackage('4.0') }).run());
    assert.equal(err.cause, 'integrity-failure');
    assert.equal(err.result.ok, false);
    assert.equal(err.result.result, 5);
    assert.equal(err.result.resultText, 'integrity check failure for the new firmware package');
    assert.equal(err.result.phase, 'downloading');
    assert.match(err.message, /integrity/);
  });

  it('fails verification when the device reports success but still runs the old version', async function () {
    // The device calls every package "1.0.0": it reboots into the version it had.
    const device = await firmwareDevice(bench, 'fw-old', { versionOf: () => '1.0.0' });
    const err = await failure(
      job({ endpoint: 'fw-old', image: firmwarePackage('5.0'), expectedFirmwareVersion: '5.0' }).run(),
    );
    assert.equal(err.cause, 'verification-failed');
    assert.equal(err.result.result, 1);
    assert.equal(err.result.phase, 'verifying');
    assert.match(err.message, /runs "1\.0\.0", expected "5\.0"/);
    assert.equal(device.get('/3/0/3'), '1.0.0');
  });

  it('fails with Update Result 8 when the device rolls back', async function () {
    await firmwareDevice(bench, 'fw-rollback', { failure: 'rollback' });
    const err = await failure(job({ endpoint: 'fw-rollback', image: firmwarePackage('5.1') }).run());
    assert.equal(err.cause, 'update-failed');
    assert.equal(err.result.result, 8);
  });

  it('fails with Update Result 8 when the update fails in place (back to Downloaded, no reboot)', async function () {
    // Anjay does this: Updating -> Downloaded with result 8, the package kept for another try.
    const device = await firmwareDevice(bench, 'fw-fail-in-place', { failure: 'fail-in-place' });
    const err = await failure(job({ endpoint: 'fw-fail-in-place', image: firmwarePackage('5.2') }).run());
    assert.equal(err.cause, 'update-failed');
    assert.equal(err.result.result, 8);
    assert.equal(err.result.phase, 'updating');
    assert.equal(device.get('/5/0/3'), 2);
  });

  it('refuses to update a package whose version is not the expected one (and resets the device)', async function () {
    const device = await firmwareDevice(bench, 'fw-pkg');
    const err = await failure(
      job({ endpoint: 'fw-pkg', image: firmwarePackage('6.0'), expectedPackageVersion: '6.1' }).run(),
    );
    assert.equal(err.cause, 'verification-failed');
    assert.equal(err.result.phase, 'downloaded');
    assert.equal(device.get('/5/0/3'), 0, 'back to Idle');
    assert.equal(device.get('/3/0/3'), '1.0.0');
  });

  it('times out when the device never comes back after the update', async function () {
    await firmwareDevice(bench, 'fw-gone', { failure: 'no-return' });
    const started = Date.now();
    const err = await failure(
      job({
        endpoint: 'fw-gone',
        image: firmwarePackage('7.0'),
        timeouts: { requestMs: 300, downloadMs: 3000, updateMs: 1000 },
      }).run(),
    );
    assert.equal(err.cause, 'update-timeout');
    assert.equal(err.result.phase, 'updating');
    assert.ok(Date.now() - started < 5000);
  });

  it('pushes a 1 MiB image block-wise', async function () {
    this.timeout(60000);
    const device = await firmwareDevice(bench, 'fw-big');
    const image = firmwarePackage('8.0.0', 1024 * 1024);
    const result = await job({
      endpoint: 'fw-big',
      image,
      expectedFirmwareVersion: '8.0.0',
      timeouts: { requestMs: 2000, downloadMs: 50000, updateMs: 5000 },
    }).run();
    assert.equal(result.ok, true);
    assert.equal(device.get('/3/0/3'), '8.0.0');
  });

  it('resets the state machine first when the device is not Idle', async function () {
    const device = await firmwareDevice(bench, 'fw-busy');
    await bench.server.write('fw-busy', '/5/0/0', firmwarePackage('0.9'), { format: OPAQUE });
    await waitFor(() => device.get('/5/0/3') === 2, 2000, 'Downloaded');
    const { events, listener } = recorder();
    const j = job({ endpoint: 'fw-busy', image: firmwarePackage('9.0'), expectedFirmwareVersion: '9.0' });
    j.on('progress', listener);
    const result = await j.run();
    assert.equal(result.ok, true);
    assert.ok(events.some((e) => e.state === 'resetting'));
  });

  it('polls when Observe is off, with a 1.0 device', async function () {
    const device = await firmwareDevice(bench, 'fw-poll', {}, '1.0');
    const result = await job({ endpoint: 'fw-poll', image: firmwarePackage('10.0'), observe: false }).run();
    assert.equal(result.ok, true);
    assert.equal(device.get('/3/0/3'), '10.0');
  });

  it('cancels: Cancel (/5/0/10) on the device, the job fails with cause cancelled', async function () {
    const device = await firmwareDevice(bench, 'fw-cancel', { downloadTimeoutMs: 3000 });
    // A URI nobody answers: the device stays Downloading until we cancel.
    const j = job({ endpoint: 'fw-cancel', uri: 'coap://127.0.0.1:9/nothing.bin' });
    j.on('progress', (p) => {
      if (p.state === 'downloading' && p.detail.startsWith('device: State 1')) void j.cancel();
    });
    const err = await failure(j.run());
    assert.equal(err.cause, 'cancelled');
    assert.equal(device.get('/5/0/3'), 0);
    assert.equal(device.get('/5/0/5'), 10);
  });

  it('cancels during a push: the device ends Idle, without the package', async function () {
    const device = await firmwareDevice(bench, 'fw-cancel-push');
    const j = job({
      endpoint: 'fw-cancel-push',
      image: firmwarePackage('13.0', 512 * 1024),
      timeouts: { requestMs: 2000, downloadMs: 30000, updateMs: 5000 },
    });
    j.on('progress', (p) => {
      if (p.state === 'downloading' && p.percent === 0) void j.cancel();
    });
    const err = await failure(j.run());
    assert.equal(err.cause, 'cancelled');
    await sleep(50);
    assert.equal(device.get('/5/0/3'), 0);
    assert.equal(device.get('/3/0/3'), '1.0.0');
  });

  it('times out a download that does not finish, and resets the device', async function () {
    const device = await firmwareDevice(bench, 'fw-slow', { downloadTimeoutMs: 5000 });
    const err = await failure(
      job({
        endpoint: 'fw-slow',
        uri: 'coap://127.0.0.1:9/nothing.bin',
        timeouts: { requestMs: 1000, downloadMs: 400, updateMs: 1000 },
      }).run(),
    );
    assert.equal(err.cause, 'download-timeout');
    assert.equal(err.result.phase, 'downloading');
    assert.equal(device.get('/5/0/3'), 0, 'back to Idle');
  });

  it('refuses a URI whose protocol the device does not support (/5/0/8), before touching it', async function () {
    const device = await firmwareDevice(bench, 'fw-ftp');
    const err = await failure(job({ endpoint: 'fw-ftp', uri: 'ftp://127.0.0.1/fw.bin' }).run());
    assert.equal(err.cause, 'unsupported-protocol');
    assert.equal(err.result.phase, 'starting');
    assert.equal(device.get('/5/0/1'), '', 'nothing written');
  });

  it('clears a failure left by an earlier attempt, then succeeds', async function () {
    let checks = 0;
    const device = await firmwareDevice(bench, 'fw-flaky', { verify: () => checks++ > 0 });
    const first = await failure(job({ endpoint: 'fw-flaky', image: firmwarePackage('11.0') }).run());
    assert.equal(first.cause, 'integrity-failure');
    assert.equal(device.get('/5/0/5'), 5);
    const { events, listener } = recorder();
    const second = job({ endpoint: 'fw-flaky', image: firmwarePackage('11.0'), expectedFirmwareVersion: '11.0' });
    second.on('progress', listener);
    assert.equal((await second.run()).ok, true);
    assert.ok(events.some((e) => e.state === 'resetting' && e.detail.includes('Update Result 5 left from before')));
  });

  it('waits for a queue-mode device to wake up', async function () {
    await bench.close();
    bench = new Bench();
    await bench.startServer({ queueAwakeWindowMs: 150 });
    const device = await bench.registered({
      endpointName: 'fw-sleepy',
      objects: [5],
      queueMode: true,
      queueAwakeMs: 150,
      firmware: { updateDelayMs: 20 },
    });
    await sleep(400); // asleep now, for the device and for the server
    const j = job({
      endpoint: 'fw-sleepy',
      image: firmwarePackage('12.0'),
      expectedFirmwareVersion: '12.0',
      timeouts: { requestMs: 3000, downloadMs: 5000, updateMs: 5000 },
    });
    const running = j.run();
    await sleep(300);
    assert.equal(j.state, 'starting', 'its first read waits in the queue');
    await device.update(); // wakes: the queued requests go out, and the job goes on
    const result = await running;
    assert.equal(result.ok, true);
    assert.equal(device.get('/3/0/3'), '12.0');
  });

  it('cancelled before it runs: fails at once and leaves the device alone', async function () {
    const device = await firmwareDevice(bench, 'fw-early');
    const j = job({ endpoint: 'fw-early', image: firmwarePackage('14.0') });
    await j.cancel();
    const err = await failure(j.run());
    assert.equal(err.cause, 'cancelled');
    assert.equal(err.result.phase, 'starting');
    assert.equal(device.get('/5/0/5'), 0);
  });

  it('checks its input', function () {
    assert.throws(() => new FirmwareJob(bench.server, { endpoint: 'x' } as FirmwareJobOptions), /image .* or a uri/);
    assert.throws(
      () => new FirmwareJob(bench.server, { endpoint: 'x', uri: 'coap://a/b', method: 'push' }),
      /method push needs an image/,
    );
    assert.throws(() => new FirmwareJob(bench.server, { endpoint: 'x', image: Buffer.alloc(0) }), /empty/);
  });
});
