/**
 * Fleets: many devices, one socket each, against our server; the command line on top of them.
 * (No timing assertions: speed is measured outside the tests.)
 */
import { strict as assert } from 'node:assert';
import { Fleet, parseAddressList, parsePortRange, startFleet } from '../../lib/client';
import { main, parseCommandLine, parseDuration } from '../../lib/client/cli';
import type { Notification } from '../../lib/server/observation-service';
import { Bench, FAST_COAP, sleep, waitFor } from './helpers';

describe('client: fleet', function () {
  this.timeout(60000);
  let bench: Bench;

  beforeEach(async function () {
    bench = new Bench();
    // a fleet on one address sends more than the server's default 1000 requests/s per address
    await bench.startServer({ coap: { ...FAST_COAP, maxRequestsPerSecondPerAddress: 0 } });
  });

  afterEach(async function () {
    await bench.close();
  });

  it('registers 200 devices and de-registers every one of them', async function () {
    let registered = 0;
    let deregistered = 0;
    bench.server.on('registered', () => registered++);
    bench.server.on('deregistered', () => deregistered++);
    const fleet = await startFleet({
      serverUri: bench.serverUri,
      count: 200,
      prefix: 'fleet-',
      objects: [3303, 3342],
      bindAddresses: '127.0.0.1',
      registrationRate: 2000,
      coap: FAST_COAP,
    });
    bench.onClose(async () => void (await fleet.stop()));
    const stats = await fleet.whenRegistered({ timeoutMs: 30000 });
    assert.equal(stats.everRegistered, 200);
    assert.equal(stats.failed, 0);
    assert.equal((await bench.server.listRegistrations()).length, 200);
    const ports = new Set(fleet.devices.map((device) => device.localAddress()!.port));
    assert.equal(ports.size, 200, 'one socket per device');
    assert.ok(await bench.server.getRegistration('fleet-1'));
    assert.ok(await bench.server.getRegistration('fleet-200'));
    const stopped = await fleet.stop();
    assert.equal(stopped.deregistrations, 200);
    await waitFor(() => deregistered === 200, 5000, 'every De-register at the server');
    assert.equal((await bench.server.listRegistrations()).length, 0);
    assert.equal(registered, 200);
    assert.ok(
      fleet.devices.every((device) => device.localAddress() === undefined),
      'every socket closed',
    );
  });

  it('spreads devices over loopback addresses and a port range', async function () {
    const fleet = await startFleet({
      serverUri: bench.serverUri,
      count: 12,
      bindAddresses: '127.0.0.2-127.0.0.4',
      portRange: '23000-23999',
      coap: FAST_COAP,
    });
    bench.onClose(async () => void (await fleet.stop()));
    await fleet.whenRegistered({ timeoutMs: 10000 });
    const registrations = await bench.server.listRegistrations();
    const byAddress = new Map<string, number>();
    for (const registration of registrations) {
      byAddress.set(registration.address, (byAddress.get(registration.address) ?? 0) + 1);
      assert.ok(registration.port >= 23000 && registration.port <= 23999, `port ${registration.port}`);
    }
    assert.deepEqual([...byAddress.entries()].sort(), [
      ['127.0.0.2', 4],
      ['127.0.0.3', 4],
      ['127.0.0.4', 4],
    ]);
  });

  it('changes values across the fleet and observers hear of it', async function () {
    const fleet = await startFleet({
      serverUri: bench.serverUri,
      count: 5,
      objects: [3303],
      changeEveryMs: 200,
      seed: 7,
      coap: FAST_COAP,
    });
    bench.onClose(async () => void (await fleet.stop()));
    await fleet.whenRegistered({ timeoutMs: 10000 });
    const seen: Notification[] = [];
    bench.server.on('notification', (n) => seen.push(n));
    for (const device of fleet.devices) await bench.server.observe(device.endpointName, '/3303/0/5700');
    await waitFor(() => new Set(seen.map((n) => n.endpoint)).size === 5, 5000, 'notifications from every device');
    assert.equal(fleet.changeValues(), 5 * 2, 'one change of /3/0 and one of /3303/0 on each device');
    const stats = fleet.stats();
    assert.equal(stats.observations, 5);
    assert.ok(stats.notifications >= 5);
    assert.ok(stats.valueChanges > 0);
  });

  it('reports devices that cannot register', async function () {
    const port = bench.port;
    await bench.server.stop();
    const fleet = new Fleet({
      serverUri: `coap://127.0.0.1:${port}`,
      count: 3,
      coap: { ackTimeoutMs: 20, maxRetransmit: 0 },
      registerRetry: { maxAttempts: 1 },
    });
    const failed: string[] = [];
    fleet.on('failed', (client) => failed.push(client.endpointName));
    fleet.launch();
    await assert.rejects(fleet.whenRegistered(), /failed/);
    await waitFor(() => failed.length === 3, 3000, 'three failures');
    assert.equal(fleet.stats().failed, 3);
    await fleet.stop();
  });

  it('parses address lists and port ranges', function () {
    assert.deepEqual(parseAddressList('127.0.0.1'), ['127.0.0.1']);
    assert.deepEqual(parseAddressList('127.0.1.254-127.0.2.2'), ['127.0.1.254', '127.0.2.1', '127.0.2.2']);
    assert.deepEqual(parseAddressList('127.0.0.5-7, ::1'), ['127.0.0.5', '127.0.0.6', '127.0.0.7', '::1']);
    assert.throws(() => parseAddressList('127.0.0.9-127.0.0.1'), /empty/);
    assert.deepEqual(parsePortRange('20000-20010'), [20000, 20010]);
    assert.deepEqual(parsePortRange('5000'), [5000, 5000]);
    assert.throws(() => parsePortRange('9-1'), /invalid/);
  });
});

describe('client: lwm2m-sim command line', function () {
  this.timeout(30000);
  let bench: Bench;

  beforeEach(async function () {
    bench = new Bench();
    await bench.startServer();
  });

  afterEach(async function () {
    await bench.close();
  });

  it('parses its options', function () {
    const parsed = parseCommandLine([
      '--server',
      'coap://10.0.0.1:5683',
      '--count',
      '1000',
      '--prefix',
      'x-',
      '--objects',
      '3,3303,3342*2',
      '--change-every',
      '5s',
      '--lifetime',
      '60',
      '--lwm2m',
      '1.2',
      '--queue',
      '--formats',
      '110,112',
      '--bind',
      '127.0.1.1-127.0.1.10',
      '--ports',
      '20000-29999',
      '--rate',
      '300',
      '--duration',
      '2m',
    ])!;
    assert.deepEqual(parsed.fleet, {
      serverUri: 'coap://10.0.0.1:5683',
      count: 1000,
      lwm2mVersion: '1.2',
      prefix: 'x-',
      objects: ['3303', '3342*2'],
      changeEveryMs: 5000,
      lifetime: 60,
      queueMode: true,
      contentFormats: [110, 112],
      bindAddresses: '127.0.1.1-127.0.1.10',
      portRange: '20000-29999',
      registrationRate: 300,
    });
    assert.equal(parsed.durationMs, 120000);
    assert.equal(parseCommandLine(['-h']), undefined);
    assert.throws(() => parseCommandLine(['--lwm2m', '2.0']), /1\.0, 1\.1 or 1\.2/);
    assert.throws(() => parseCommandLine(['--nope']));
    assert.equal(parseDuration('500ms'), 500);
    assert.equal(parseDuration('1.5'), 1500);
    assert.equal(parseDuration('1h'), 3600000);
  });

  it('runs a fleet for a while, then de-registers and prints a summary', async function () {
    let deregistered = 0;
    bench.server.on('deregistered', () => deregistered++);
    let out = '';
    let err = '';
    const code = await main(
      [
        '--server',
        bench.serverUri,
        '--count',
        '5',
        '--objects',
        '3303,3304',
        '--change-every',
        '100ms',
        '--duration',
        '1500ms',
        '--bind',
        '127.0.0.1',
      ],
      { out: (text) => (out += text), err: (text) => (err += text), isTTY: false },
    );
    assert.equal(code, 0, err);
    assert.match(out, /all 5 device\(s\) registered/);
    assert.match(out, /de-registrations\s+5/);
    assert.equal(deregistered, 5);
    assert.equal((await bench.server.listRegistrations()).length, 0);
  });

  it('prints JSON and rejects bad options with exit code 2', async function () {
    let out = '';
    let err = '';
    const io = { out: (text: string) => (out += text), err: (text: string) => (err += text) };
    assert.equal(await main(['--count', 'many'], io), 2);
    assert.match(err, /--count must be a whole number/);
    const code = await main(['--server', bench.serverUri, '--count', '2', '--duration', '300ms', '--json'], io);
    assert.equal(code, 0);
    const summary = JSON.parse(out.trim().split('\n').pop()!) as { everRegistered: number; deregistrations: number };
    assert.equal(summary.everRegistered, 2);
    assert.equal(summary.deregistrations, 2);
    await sleep(10);
  });
});
