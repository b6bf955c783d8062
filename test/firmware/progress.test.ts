/**
 * Progress within a transfer. The CoAP endpoint's hooks: OutgoingRequest.onProgress (each Block1 block the
 * peer took, with loss and duplicates too) and OutgoingResponse.onProgress (each Block2 block served, the
 * follow-ups from the endpoint's cache included). Then the jobs: a pull over coap:// tells what the device has
 * fetched, throttled to every 5% (or every second); a push tells what it has pushed, block by block.
 */
import { strict as assert } from 'node:assert';
import { FirmwareJob, type FirmwareProgress } from '../../lib/firmware';
import { endpoints } from '../coap/helpers';
import { Bench } from '../client/helpers';
import { FAST_TIMEOUTS, firmwareDevice, firmwarePackage, recorder } from './helpers';

function body(size: number): Buffer {
  const data = Buffer.alloc(size);
  for (let i = 0; i < size; i++) data[i] = (i * 13 + 5) & 255;
  return data;
}

/** Strictly rising, each step at most `step`, never above `total`. */
function assertSteps(calls: Array<[number, number]>, total: number, step: number): void {
  let previous = 0;
  for (const [sent, of] of calls) {
    assert.equal(of, total);
    assert.ok(sent > previous && sent - previous <= step && sent <= total, `${previous} -> ${sent}`);
    previous = sent;
  }
}

describe('firmware: progress hooks of the CoAP endpoint', function () {
  for (const [label, net] of [
    ['a clean link', {}],
    ['a lossy link (20% lost, 10% duplicated)', { loss: 0.2, duplicate: 0.1, seed: 7 }],
  ] as const) {
    it(`Block1: onProgress after each block the peer took, on ${label}`, async function () {
      const setup = await endpoints(net, { maxRetransmit: 8 });
      try {
        const payload = body(10_000);
        let received: Buffer | undefined;
        setup.server.setRequestHandler((request) => {
          received = request.payload;
          return { code: '2.04' };
        });
        const calls: Array<[number, number]> = [];
        const response = await setup.client.request(setup.serverPeer, {
          method: 'PUT',
          pathSegments: ['5', '0', '0'],
          payload,
          blockSize: 512,
          onProgress: (sent, total) => calls.push([sent, total]),
        });
        assert.equal(response.code, '2.04');
        assert.ok(received?.equals(payload));
        assertSteps(calls, payload.length, 512);
        // Every block but the last is acknowledged with 2.31; the last one with the 2.04 itself.
        assert.equal(calls.length, Math.ceil(payload.length / 512) - 1);
        assert.equal(calls.at(-1)![0], Math.floor(payload.length / 512) * 512);
      } finally {
        await setup.close();
      }
    });
  }

  it('Block2: the response onProgress is told of every block served, from the cache too', async function () {
    const setup = await endpoints({ loss: 0.1, seed: 3 }, { maxRetransmit: 8 });
    try {
      const payload = body(20_000);
      const calls: Array<[number, number]> = [];
      let handled = 0;
      setup.server.setRequestHandler(() => {
        handled++;
        return { code: '2.05', payload, onProgress: (sent, total) => calls.push([sent, total]) };
      });
      const response = await setup.client.request(setup.serverPeer, { method: 'GET', pathSegments: ['fw', 'x'] });
      assert.ok(response.payload.equals(payload));
      assert.equal(handled, 1, 'the handler saw the first block only');
      const size = 1024; // the endpoints' default block size
      // A lost response makes the client ask again: the block is served (and told) again.
      const distinct = [...new Set(calls.map(([sent]) => sent))];
      assert.equal(distinct.length, Math.ceil(payload.length / size));
      assert.equal(distinct.at(-1), payload.length);
      assert.ok(calls.every(([, total]) => total === payload.length));
    } finally {
      await setup.close();
    }
  });

  it('a throwing onProgress goes to onError and the transfer goes on', async function () {
    const setup = await endpoints();
    try {
      const errors: unknown[] = [];
      setup.client.onError = (err) => errors.push(err);
      setup.server.setRequestHandler(() => ({ code: '2.04' }));
      const response = await setup.client.request(setup.serverPeer, {
        method: 'PUT',
        pathSegments: ['x'],
        payload: body(3000),
        blockSize: 1024,
        onProgress: () => {
          throw new Error('listener bug');
        },
      });
      assert.equal(response.code, '2.04');
      assert.equal(errors.length, 2);
      assert.match(String(errors[0]), /listener bug/);
    } finally {
      await setup.close();
    }
  });
});

describe('firmware: transfer progress of jobs', function () {
  let bench: Bench;

  beforeEach(async function () {
    bench = new Bench();
    await bench.startServer();
  });

  afterEach(async function () {
    await bench.close();
  });

  function transfer(events: FirmwareProgress[]): FirmwareProgress[] {
    return events.filter((e) => e.state === 'downloading' && e.percent !== undefined);
  }

  it('pull over coap://: what the device has fetched, every 5% at most', async function () {
    await firmwareDevice(bench, 'fw-pull-progress');
    const { events, listener } = recorder();
    const image = firmwarePackage('7.0.0', 200_000);
    const job = new FirmwareJob(bench.server, {
      endpoint: 'fw-pull-progress',
      image,
      method: 'pull',
      expectedFirmwareVersion: '7.0.0',
      timeouts: { ...FAST_TIMEOUTS, downloadMs: 20_000 },
      pollIntervalMs: 200,
    });
    job.on('progress', listener);
    assert.equal((await job.run()).ok, true);
    const percents = transfer(events).map((e) => e.percent!);
    assert.equal(percents[0], 0);
    assert.equal(events.find((e) => e.state === 'downloaded')?.percent, 100, '100 once the device has it');
    const between = percents.slice(1);
    assert.ok(between.every((p) => p > 0 && p < 100));
    // 196 blocks of 1 KiB: throttled to about every 5% (1 s rarely passes on loopback, but may on a busy host).
    assert.ok(between.length >= 10 && between.length <= 99, `progress told ${between.length} times`);
    for (let i = 1; i < between.length; i++) assert.ok(between[i] > between[i - 1], 'rising');
    assert.match(
      transfer(events).find((e) => e.percent === between[0])!.detail,
      /^the device fetched \d+ of 200000 bytes$/,
    );
  });

  it('push: what has been pushed, block by block (Lwm2mServer.write passes onProgress on)', async function () {
    await firmwareDevice(bench, 'fw-push-progress');
    const { events, listener } = recorder();
    const job = new FirmwareJob(bench.server, {
      endpoint: 'fw-push-progress',
      image: firmwarePackage('7.1.0', 100_000),
      method: 'push',
      expectedFirmwareVersion: '7.1.0',
      timeouts: { ...FAST_TIMEOUTS, downloadMs: 20_000 },
      pollIntervalMs: 200,
    });
    job.on('progress', listener);
    assert.equal((await job.run()).ok, true);
    const between = transfer(events).filter((e) => e.percent! > 0 && e.percent! < 100);
    assert.ok(between.length >= 10, `progress told ${between.length} times`);
    assert.match(between[0].detail, /^pushed \d+ of 100000 bytes$/);
  });
});
