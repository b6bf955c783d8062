/**
 * FirmwareCampaign against 50 simulated devices: concurrency, retries of a failing device, the summary,
 * pause/resume and cancel.
 */
import { strict as assert } from 'node:assert';
import { FirmwareCampaign, type FirmwareCampaignOptions, type FirmwareProgress } from '../../lib/firmware';
import { Bench, sleep } from '../client/helpers';
import { FAST_TIMEOUTS, firmwareDevice, firmwarePackage } from './helpers';

describe('firmware: FirmwareCampaign', function () {
  let bench: Bench;

  beforeEach(async function () {
    bench = new Bench();
    await bench.startServer();
  });

  afterEach(async function () {
    await bench.close();
  });

  /** Counts the jobs running at once (from their start to their last progress, 'done' or 'failed'). */
  function concurrencyMeter(campaign: FirmwareCampaign): { max: () => number } {
    let running = 0;
    let max = 0;
    campaign.on('start', () => (max = Math.max(max, ++running)));
    campaign.on('progress', (p: FirmwareProgress) => {
      if (p.state === 'done' || p.state === 'failed') running--;
    });
    return { max: () => max };
  }

  function campaignOf(endpoints: string[], options: Partial<FirmwareCampaignOptions> = {}): FirmwareCampaign {
    return new FirmwareCampaign(bench.server, {
      endpoints,
      job: {
        image: firmwarePackage('2.0.0', 3000),
        expectedFirmwareVersion: '2.0.0',
        timeouts: FAST_TIMEOUTS,
        pollIntervalMs: 200,
      },
      concurrency: 10,
      retries: 1,
      retryDelayMs: 10,
      ...options,
    });
  }

  it('updates 50 devices 10 at a time; one failing device is retried once and counted by cause', async function () {
    this.timeout(60000);
    const endpoints: string[] = [];
    for (let i = 0; i < 50; i++) {
      const name = `fleet-${i}`;
      endpoints.push(name);
      await firmwareDevice(bench, name, i === 17 ? { failure: 'integrity' } : {});
    }
    const campaign = campaignOf(endpoints);
    const meter = concurrencyMeter(campaign);
    const retried: string[] = [];
    campaign.on('retry', (r) => retried.push(r.endpoint));
    const summary = await campaign.run();
    assert.equal(summary.total, 50);
    assert.equal(summary.succeeded, 49);
    assert.equal(summary.failed, 1);
    assert.deepEqual(summary.byCause, { 'integrity-failure': 1 });
    assert.equal(summary.cancelled, false);
    const bad = summary.devices.find((d) => !d.ok);
    assert.equal(bad?.endpoint, 'fleet-17');
    assert.equal(bad?.attempts, 2);
    assert.deepEqual(retried, ['fleet-17']);
    assert.ok(meter.max() <= 10, `at most 10 at once (saw ${meter.max()})`);
    assert.ok(meter.max() >= 5, `several at once (saw ${meter.max()})`);
    for (const client of bench.clients) {
      assert.equal(client.get('/3/0/3'), client.endpointName === 'fleet-17' ? '1.0.0' : '2.0.0');
    }
  });

  it('retries a device that failed once (its state machine reset first) and counts it as a success', async function () {
    let checks = 0;
    await firmwareDevice(bench, 'r-0', { verify: () => checks++ > 0 });
    await firmwareDevice(bench, 'r-1');
    const summary = await campaignOf(['r-0', 'r-1']).run();
    assert.equal(summary.succeeded, 2);
    assert.equal(summary.failed, 0);
    assert.deepEqual(summary.byCause, {});
    assert.equal(summary.devices.find((d) => d.endpoint === 'r-0')?.attempts, 2);
  });

  it('starts nothing while paused, goes on after resume', async function () {
    for (let i = 0; i < 3; i++) await firmwareDevice(bench, `p-${i}`);
    const campaign = campaignOf(['p-0', 'p-1', 'p-2'], { concurrency: 1 });
    campaign.pause();
    const running = campaign.run();
    await sleep(200);
    assert.deepEqual(campaign.counts, { waiting: 3, running: 0, finished: 0 });
    campaign.resume();
    const summary = await running;
    assert.equal(summary.succeeded, 3);
  });

  it('cancels: running jobs are cancelled, waiting devices are not started', async function () {
    for (let i = 0; i < 3; i++) await firmwareDevice(bench, `c-${i}`);
    // Nobody answers at this URI: the first device stays Downloading.
    const campaign = campaignOf(['c-0', 'c-1', 'c-2'], {
      concurrency: 1,
      job: { uri: 'coap://127.0.0.1:9/none.bin', timeouts: FAST_TIMEOUTS, pollIntervalMs: 200 },
    });
    campaign.on('progress', (p) => {
      if (p.state === 'downloading' && p.detail.startsWith('device: State 1')) void campaign.cancel();
    });
    const summary = await campaign.run();
    assert.equal(summary.cancelled, true);
    assert.equal(summary.succeeded, 0);
    assert.equal(summary.failed, 3);
    assert.deepEqual(summary.byCause, { cancelled: 3 });
    assert.equal(bench.clients[0].get('/5/0/5'), 10, 'cancelled on the device');
    assert.equal(bench.clients[1].get('/5/0/3'), 0, 'never started');
  });
});
