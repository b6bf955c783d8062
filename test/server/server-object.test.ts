import { strict as assert } from 'node:assert';
import type { Registration } from '../../lib/server/registration';
import type { SendReport } from '../../lib/server/send';
import { Bench, nextEvent, waitFor } from '../client/helpers';

describe('Server object actions and Send with our simulated device', function () {
  let bench: Bench;

  beforeEach(async function () {
    bench = new Bench();
    await bench.startServer();
  });
  afterEach(async () => bench.close());

  it('finds the Server account, triggers an Update, sets default periods and Mute Send', async function () {
    const client = await bench.registered({
      endpointName: 'acct',
      lwm2mVersion: '1.1',
      objects: [3303],
      defaultPmin: 1,
      defaultPmax: 60,
    });
    const server = bench.server;
    assert.equal(await server.serverAccountPath('acct'), '/1/0');
    assert.equal(await server.serverAccountPath('acct', 1), '/1/0');
    await assert.rejects(server.serverAccountPath('acct', 99), /no Server account with Short Server ID 99/);

    const updated = nextEvent<Registration>(server, 'updated');
    const triggered = await server.triggerRegistrationUpdate('acct');
    assert.equal(triggered.code, '2.04');
    assert.equal((await updated).endpoint, 'acct');

    await server.setDefaultPeriods('acct', { pmin: 5, pmax: 120 });
    assert.equal((await server.read('acct', '/1/0/2')).value, 5);
    assert.equal((await server.read('acct', '/1/0/3')).value, 120);
    assert.equal(client.get('/1/0/3'), 120);

    await server.setMuteSend('acct', false);
    assert.equal((await server.read('acct', '/1/0/23')).value, false);
  });

  it('Send from the device reaches the server as a send event', async function () {
    const client = await bench.registered({ endpointName: 'pusher', lwm2mVersion: '1.1', objects: [3303] });
    client.set('/3303/0/5700', 31.5);
    const sent = nextEvent<SendReport>(bench.server, 'send');
    await client.send(['/3303/0/5700', '/3/0/9']);
    const report = await sent;
    assert.equal(report.endpoint, 'pusher');
    assert.equal(report.values.find((entry) => entry.path === '/3303/0/5700')?.value, 31.5);
    assert.ok(report.values.some((entry) => entry.path === '/3/0/9'));
  });

  it('Disable: the device de-registers (not an error) and comes back after its Disable Timeout', async function () {
    await bench.registered({ endpointName: 'napper', lwm2mVersion: '1.1' });
    const server = bench.server;
    const deregistered = nextEvent<Registration>(server, 'deregistered');
    const result = await server.disable('napper', { timeoutSeconds: 1 });
    assert.equal(result.code, '2.04');
    assert.equal((await deregistered).endpoint, 'napper');
    const back = await nextEvent<Registration>(server, 'registered', 5000);
    assert.equal(back.endpoint, 'napper');
  });
});

describe('large values through the server API', function () {
  let bench: Bench;
  beforeEach(async function () {
    bench = new Bench();
    await bench.startServer();
  });
  afterEach(async () => bench.close());

  it('writes a 1 MiB firmware image (Block1) and the device has every byte', async function () {
    const image = Buffer.alloc(1024 * 1024);
    for (let i = 0; i < image.length; i++) image[i] = (i * 31 + 7) & 0xff;
    let received: Buffer | undefined;
    const client = await bench.registered({
      endpointName: 'big',
      lwm2mVersion: '1.1',
      objects: [5],
      firmware: { verify: (pkg) => ((received = Buffer.from(pkg)), true) },
    });
    const written = await bench.server.write('big', '/5/0/0', image, { format: 42 });
    assert.equal(written.code, '2.04');
    // The Firmware Update object moved to Downloaded (2) with the whole package.
    assert.equal((await bench.server.read('big', '/5/0/3')).value, 2);
    assert.equal(client.get('/5/0/3'), 2);
    // Verification runs when the update is executed: the package it checks is the image, byte for byte.
    await bench.server.execute('big', '/5/0/2');
    await waitFor(() => received !== undefined, 10_000, 'the firmware package on the device');
    assert.ok(received?.equals(image), 'the device received every byte');
  });
});
