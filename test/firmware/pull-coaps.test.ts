/**
 * Pull over coaps:// for a device registered over DTLS: the default Package URI is the server's DTLS listener,
 * and the simulator fetches it through its DTLS session; a plain device still gets coap://.
 */
import { strict as assert } from 'node:assert';
import type { Lwm2mClient } from '../../lib/client';
import { FirmwareJob, FirmwareJobError, packageServerFor } from '../../lib/firmware';
import { Bench } from '../client/helpers';
import { FAST_TIMEOUTS, firmwareDevice, firmwarePackage } from './helpers';

const KEY = Buffer.from('fw-dtls-key-0123');

describe('firmware: pull over coaps:// for DTLS devices', function () {
  let bench: Bench;

  beforeEach(async function () {
    bench = new Bench();
    await bench.startServer({ dtls: { port: 0 } });
    await bench.server.securityStore.add({ endpoint: 'fw-dtls', mode: 'psk', identity: 'fw-dtls', key: KEY });
  });

  afterEach(async function () {
    await bench.close();
  });

  function dtlsDevice(): Promise<Lwm2mClient> {
    return bench.registered({
      endpointName: 'fw-dtls',
      serverUri: `coaps://127.0.0.1:${bench.server.secureAddress!.port}`,
      psk: { identity: 'fw-dtls', key: KEY },
      objects: [5],
      firmware: { updateDelayMs: 20, downloadTimeoutMs: 3000 },
    });
  }

  it('writes coaps://<address>:<DTLS port>/fw/<id>, the device pulls it over DTLS and updates', async function () {
    const device = await dtlsDevice();
    const registration = await bench.server.getRegistration('fw-dtls');
    assert.ok(registration?.security, 'registered over DTLS');
    const job = new FirmwareJob(bench.server, {
      endpoint: 'fw-dtls',
      image: firmwarePackage('4.2.0', 20000),
      method: 'pull',
      expectedPackageVersion: '4.2.0',
      expectedFirmwareVersion: '4.2.0',
      timeouts: FAST_TIMEOUTS,
      pollIntervalMs: 200,
    });
    const result = await job.run();
    assert.equal(result.ok, true);
    assert.equal(result.method, 'pull');
    assert.equal(result.firmwareVersion, '4.2.0');
    assert.equal(device.get('/3/0/3'), '4.2.0');
    const uri = String(device.get('/5/0/1'));
    const port = bench.server.secureAddress!.port;
    assert.match(uri, new RegExp(`^coaps://127\\.0\\.0\\.1:${port}/fw/[0-9a-f]{32}$`));
    assert.notEqual(port, bench.port);
    assert.equal(packageServerFor(bench.server).size, 0, 'the path expired with the job');
  });

  it('a plain device of the same server still gets coap:// on the plain port', async function () {
    const device = await firmwareDevice(bench, 'fw-plain');
    const job = new FirmwareJob(bench.server, {
      endpoint: 'fw-plain',
      image: firmwarePackage('4.3.0'),
      method: 'pull',
      expectedFirmwareVersion: '4.3.0',
      timeouts: FAST_TIMEOUTS,
      pollIntervalMs: 200,
    });
    assert.equal((await job.run()).ok, true);
    assert.match(String(device.get('/5/0/1')), new RegExp(`^coap://127\\.0\\.0\\.1:${bench.port}/fw/`));
  });
});

describe('firmware: pull for a DTLS device without a DTLS listener', function () {
  it('fails with unsupported-delivery when the server has no secure address (and no baseUri)', async function () {
    const bench = new Bench();
    await bench.startServer({ dtls: { port: 0 } });
    await bench.server.securityStore.add({ endpoint: 'fw-dtls', mode: 'psk', identity: 'fw-dtls', key: KEY });
    try {
      await bench.registered({
        endpointName: 'fw-dtls',
        serverUri: `coaps://127.0.0.1:${bench.server.secureAddress!.port}`,
        psk: { identity: 'fw-dtls', key: KEY },
        objects: [5],
      });
      // The listener's address is gone (as if it were never bound): the job must not guess.
      Object.defineProperty(bench.server, 'secureAddress', { get: () => undefined, configurable: true });
      const job = new FirmwareJob(bench.server, {
        endpoint: 'fw-dtls',
        image: firmwarePackage('4.4.0'),
        method: 'pull',
        timeouts: FAST_TIMEOUTS,
      });
      await assert.rejects(job.run(), (err: unknown) => {
        assert.ok(err instanceof FirmwareJobError);
        assert.equal(err.cause, 'unsupported-delivery');
        assert.match(err.message, /no DTLS listener/);
        return true;
      });
    } finally {
      delete (bench.server as unknown as Record<string, unknown>).secureAddress;
      await bench.close();
    }
  });
});
