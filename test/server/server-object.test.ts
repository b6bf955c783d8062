import { strict as assert } from 'node:assert';
import type { Registration } from '../../lib/server/registration';
import type { SendReport } from '../../lib/server/send';
import { Bench, nextEvent } from '../client/helpers';

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
