/**
 * Update Result 11 (deferred, object 5 v1.1): not a failure. The job reports 'deferred', keeps watching State
 * and Update Result, and succeeds when the device applies the package later by itself; it fails with cause
 * 'deferred' when the device does not within timeouts.deferredMs (or timeouts.totalMs), and a cancel while
 * deferred cancels on the device. The simulator defers its first Update with `deferOnceMs`.
 */
import { strict as assert } from 'node:assert';
import type { FirmwareJobOptions } from '../../lib/firmware';
import { Bench } from '../client/helpers';
import { failure, FAST_TIMEOUTS, fastJob, firmwareDevice, firmwarePackage, recorder } from './helpers';

describe('firmware: a deferred update (Update Result 11)', function () {
  let bench: Bench;

  beforeEach(async function () {
    bench = new Bench();
    await bench.startServer();
  });

  afterEach(async function () {
    await bench.close();
  });

  const job = (options: Partial<FirmwareJobOptions> & { endpoint: string }) =>
    fastJob(bench.server, options, { pollIntervalMs: 100 });

  for (const method of ['push', 'pull'] as const) {
    it(`waits for the device that deferred to apply the update later (${method})`, async function () {
      const device = await firmwareDevice(bench, `fw-defer-${method}`, { deferOnceMs: 300 }, '1.1');
      const { events, listener } = recorder();
      const j = job({
        endpoint: `fw-defer-${method}`,
        image: firmwarePackage('8.0.0'),
        method,
        expectedFirmwareVersion: '8.0.0',
      });
      j.on('progress', listener);
      const result = await j.run();
      assert.equal(result.ok, true);
      assert.equal(result.result, 1);
      assert.equal(device.get('/3/0/3'), '8.0.0');
      const states = [...new Set(events.map((e) => e.state))];
      assert.deepEqual(states, ['starting', 'downloading', 'downloaded', 'updating', 'deferred', 'verifying', 'done']);
      const deferred = events.find((e) => e.state === 'deferred')!;
      assert.match(deferred.detail, /deferred the update \(Update Result 11\): waiting up to 86400000 ms/);
      assert.ok(events.some((e) => e.state === 'updating' && /applies the deferred update/.test(e.detail)));
    });
  }

  it('asks the deferring device again every deferredRetryMs, as Anjay expects; it applies on the second Execute', async function () {
    const device = await firmwareDevice(bench, 'fw-defer-ask', { deferOnceMs: 60_000 }, '1.1');
    const { events, listener } = recorder();
    const j = job({
      endpoint: 'fw-defer-ask',
      image: firmwarePackage('8.2.0'),
      expectedFirmwareVersion: '8.2.0',
      timeouts: { ...FAST_TIMEOUTS, deferredMs: 10_000, deferredRetryMs: 200 },
    });
    j.on('progress', listener);
    const result = await j.run();
    assert.equal(result.ok, true);
    assert.equal(device.get('/3/0/3'), '8.2.0');
    assert.ok(events.some((e) => e.state === 'deferred' && /asking the device again/.test(e.detail)));
  });

  it('fails with cause deferred when the device does not apply it within deferredMs', async function () {
    const device = await firmwareDevice(bench, 'fw-defer-late', { deferOnceMs: 60_000 }, '1.1');
    const { events, listener } = recorder();
    const j = job({
      endpoint: 'fw-defer-late',
      image: firmwarePackage('8.1.0'),
      timeouts: { ...FAST_TIMEOUTS, deferredMs: 300 },
    });
    j.on('progress', listener);
    const err = await failure(j.run());
    assert.equal(err.cause, 'deferred');
    assert.equal(err.result.result, 11);
    assert.equal(err.result.phase, 'deferred');
    assert.match(err.message, /deferred the update \(Update Result 11\) and did not apply it in time/);
    assert.ok(events.some((e) => e.state === 'deferred'));
    // Left as it is: the device keeps the package and may still apply it (its owner postponed it).
    assert.equal(device.get('/5/0/3'), 2);
    // The simulated user's timer is left running unref'd; reset the device so that it is dropped.
    await bench.server.write('fw-defer-late', '/5/0/1', '');
  });

  it('the job timeout (totalMs) caps the deferral wait', async function () {
    await firmwareDevice(bench, 'fw-defer-total', { deferOnceMs: 60_000 }, '1.1');
    const j = job({
      endpoint: 'fw-defer-total',
      image: firmwarePackage('8.2.0'),
      timeouts: { ...FAST_TIMEOUTS, totalMs: 1500 },
    });
    const err = await failure(j.run());
    // Without the cap the job would wait a day (deferredMs) and mocha's timeout would end the test.
    assert.equal(err.cause, 'deferred');
    await bench.server.write('fw-defer-total', '/5/0/1', '');
  });

  it('a cancel while deferred cancels on the device (/5/0/10)', async function () {
    const device = await firmwareDevice(bench, 'fw-defer-cancel', { deferOnceMs: 60_000 }, '1.1');
    const j = job({ endpoint: 'fw-defer-cancel', image: firmwarePackage('8.3.0') });
    j.on('progress', (p) => {
      if (p.state === 'deferred') void j.cancel();
    });
    const err = await failure(j.run());
    assert.equal(err.cause, 'cancelled');
    assert.equal(err.result.phase, 'deferred');
    assert.equal(device.get('/5/0/3'), 0);
    assert.equal(device.get('/5/0/5'), 10);
    assert.equal(device.get('/3/0/3'), '1.0.0');
  });
});
