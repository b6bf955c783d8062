/**
 * The registration interface from the device side: periodic Update before the lifetime ends, Update
 * after a lifetime / binding / object change, re-registration when the server forgot us (4.04),
 * De-register, retries while the server is down, reboot, Disable, queue mode.
 */
import { strict as assert } from 'node:assert';
import { Lwm2mClient } from '../../lib/client';
import type { Registration } from '../../lib/server/registration';
import { Lwm2mServer } from '../../lib/server/lwm2m-server';
import { Bench, FAST_COAP, ask, nextEvent, sleep, waitFor } from './helpers';

describe('client: registration', function () {
  let bench: Bench;

  beforeEach(async function () {
    bench = new Bench();
    await bench.startServer();
  });

  afterEach(async function () {
    await bench.close();
  });

  it('sends an Update before the lifetime ends, again and again', async function () {
    const updates: Registration[] = [];
    bench.server.on('updated', (registration) => updates.push(registration));
    const client = await bench.registered({ endpointName: 'lt-1', lifetime: 2 });
    const registeredAt = Date.now();
    await waitFor(() => updates.length >= 2, 4000, 'two Updates');
    // lifetime 2 s: the Update goes out 1 s before the end (at least 10 % of the lifetime, at most 10 s)
    assert.ok(Date.now() - registeredAt < 2900, 'the registration never came close to expiring');
    await waitFor(() => client.stats().updates >= 2, 1000, 'the client counted its Updates');
    assert.equal((await bench.server.getRegistration('lt-1'))?.id, updates[0].id, 'the same registration');
  });

  it("a 'registered' listener that throws is the client's 'error' (no unhandled rejection), and start() resolves", async function () {
    const client = bench.client({ endpointName: 'throwing-listener' });
    client.on('registered', () => {
      throw new Error('listener failed');
    });
    const reported = nextEvent<Error>(client, 'error');
    await client.start();
    assert.equal((await reported).message, 'listener failed');
    assert.equal(client.state, 'registered');
  });

  it('registers again when the server answers an Update with 4.04', async function () {
    const client = await bench.registered({ endpointName: 'forgot-1', lifetime: 60 });
    const first = (await bench.server.getRegistration('forgot-1'))!;
    await bench.server.registrations.remove(first.id);
    const again = nextEvent<Registration>(bench.server, 'registered');
    const reRegistered = nextEvent<{ reRegistration: boolean }>(client, 'registered');
    await client.update();
    const registration = await again;
    assert.notEqual(registration.id, first.id);
    assert.equal((await reRegistered).reRegistration, true);
    assert.equal(client.stats().reRegistrations, 1);
    assert.equal(client.registrationLocation, `/rd/${registration.id}`);
  });

  it('sends lt= when the server writes the lifetime, and Update on the trigger resource', async function () {
    const client = await bench.registered({ endpointName: 'lt-2', lifetime: 60 });
    // The server adopts the lifetime it wrote at once ('updated', lifetimeSource 'written'); the client's own Update
    // with lt=120 then states it (lifetimeSource absent again).
    const stated = new Promise<Registration>((resolve) => {
      const onUpdated = (registration: Registration) => {
        if (registration.lifetimeSource !== undefined) return;
        bench.server.off('updated', onUpdated);
        resolve(registration);
      };
      bench.server.on('updated', onUpdated);
    });
    await bench.server.write('lt-2', '/1/0/1', 120);
    assert.equal((await stated).lifetime, 120);
    const triggered = nextEvent<Registration>(bench.server, 'updated');
    await bench.server.execute('lt-2', '/1/0/8');
    await triggered;
    await waitFor(() => client.stats().updates === 2, 1000, 'two Updates counted');
  });

  it('announces objects added after registration with an Update', async function () {
    const client = await bench.registered({ endpointName: 'obj-1' });
    const updated = nextEvent<Registration>(bench.server, 'updated');
    client.addObject('3304*2');
    const registration = await updated;
    assert.deepEqual(registration.objects[3304], { instances: [0, 1], version: '1.1' });
    const again = nextEvent<Registration>(bench.server, 'updated');
    client.removeInstance(3304, 1);
    assert.deepEqual((await again).objects[3304].instances, [0]);
  });

  it('de-registers on stop and closes its socket', async function () {
    const client = await bench.registered({ endpointName: 'bye-1' });
    const gone = nextEvent<Registration>(bench.server, 'deregistered');
    await client.stop();
    assert.equal((await gone).endpoint, 'bye-1');
    assert.equal(client.localAddress(), undefined);
    assert.equal(await bench.server.getRegistration('bye-1'), undefined);
    assert.equal(client.state, 'stopped');
  });

  it('keeps trying until the server is up', async function () {
    const port = bench.port;
    await bench.server.stop();
    const client = bench.client({ endpointName: 'late-1', coap: { ackTimeoutMs: 50, maxRetransmit: 1 } });
    const failures: Error[] = [];
    client.on('registrationFailed', (err) => failures.push(err));
    const started = client.start();
    await waitFor(() => failures.length >= 1, 3000, 'a failed Register');
    const server = new Lwm2mServer({ address: '127.0.0.1', port, coap: FAST_COAP });
    bench.onClose(() => server.stop());
    await server.start();
    await started;
    assert.ok(await server.getRegistration('late-1'));
  });

  it('gives up after maxAttempts and rejects start()', async function () {
    await bench.server.stop();
    const client = bench.client({
      endpointName: 'never-1',
      coap: { ackTimeoutMs: 30, maxRetransmit: 0 },
      registerRetry: { maxAttempts: 2, initialDelayMs: 10 },
    });
    await assert.rejects(client.start(), /registration failed/);
    assert.equal(client.state, 'failed');
    assert.equal(client.stats().registrationFailures, 2);
  });

  it('reports a refused registration with its code', async function () {
    const client = bench.client({
      endpointName: 'x'.repeat(300), // the server refuses names over 256 characters
      registerRetry: { maxAttempts: 1 },
    });
    const failed = nextEvent<Error & { code: string }>(client, 'registrationFailed');
    await assert.rejects(client.start());
    assert.equal((await failed).code, '4.00');
  });

  it('reboots on /3/0/4 and registers again', async function () {
    const client = await bench.registered({ endpointName: 'boot-1' });
    const first = (await bench.server.getRegistration('boot-1'))!;
    const replaced = new Promise<[Registration, Registration | undefined]>((resolve) =>
      bench.server.once('registered', (registration, previous) => resolve([registration, previous])),
    );
    const rebooted = nextEvent(client, 'reboot');
    const back = nextEvent(client, 'registered');
    await bench.server.execute('boot-1', '/3/0/4');
    await rebooted;
    const [registration, previous] = await replaced;
    await back;
    assert.equal(previous?.id, first.id);
    assert.equal(client.stats().registrations, 2);
    assert.equal(registration.endpoint, 'boot-1');
  });

  it('disables itself on /1/0/4 for the Disable Timeout, then registers again', async function () {
    const client = await bench.registered({ endpointName: 'off-1' });
    await bench.server.write('off-1', '/1/0/5', 1);
    const deregistered = nextEvent(bench.server, 'deregistered');
    await bench.server.execute('off-1', '/1/0/4');
    await deregistered;
    assert.equal(client.state, 'disabled');
    await nextEvent(client, 'registered', 3000);
    assert.equal(client.state, 'registered');
  });

  it('registers in queue mode (1.1 Q, 1.0 UQ) and sleeps between exchanges', async function () {
    const client = await bench.registered({ endpointName: 'q-1', queueMode: true, queueAwakeMs: 200 });
    const registration = (await bench.server.getRegistration('q-1'))!;
    assert.equal(registration.queueMode, true);
    assert.equal(registration.binding, 'U');
    await bench.registered({ endpointName: 'q-0', lwm2mVersion: '1.0', queueMode: true });
    const old = (await bench.server.getRegistration('q-0'))!;
    assert.equal(old.queueMode, true);
    assert.equal(old.binding, 'UQ');
    // awake: answers at once
    const raw = await bench.rawEndpoint();
    const get = (timeoutMs?: number) => ask(raw, client, { method: 'GET', pathSegments: ['3', '0', '9'], timeoutMs });
    assert.equal((await get()).payload.toString(), '100');
    // asleep: hears nothing (the server has to wait for it, whatever it does meanwhile)
    await nextEvent(client, 'sleep', 2000);
    await assert.rejects(get(300), /no response|no ACK|timeout/);
    // an Update (or a notification) wakes it up
    const woke = nextEvent(client, 'wake');
    await client.update();
    await woke;
    assert.equal((await get()).payload.toString(), '100');
  });

  it('runs on a transport it is given (the seam for DTLS)', async function () {
    const { UdpTransport } = await import('../../lib/transport/udp');
    const made: Array<{ address: string; port: number }> = [];
    const client = await bench.registered({
      endpointName: 'seam-1',
      transport: (local) => {
        made.push(local);
        return new UdpTransport({ address: '127.0.0.1', port: 0 });
      },
    });
    assert.deepEqual(made, [{ address: '127.0.0.1', port: 0 }]);
    assert.equal((await bench.server.getRegistration('seam-1'))?.port, client.localAddress()!.port);
  });

  it('is created with every object id given, rejects unknown ones', function () {
    assert.throws(() => new Lwm2mClient({ endpointName: 'bad', objects: [99999] }), /invalid object|not in the model/);
    assert.throws(() => new Lwm2mClient({ endpointName: 'bad', objects: [4242] }), /not in the model/);
    const client = new Lwm2mClient({ endpointName: 'ok', objects: ['3303*3', '3304@1.1', { id: 5 }] });
    assert.deepEqual(client.objectIds(), [0, 1, 3, 5, 3303, 3304]);
    assert.deepEqual(client.instanceIds(3303), [0, 1, 2]);
  });

  it('waits politely: nothing runs after stop even in the middle of a retry', async function () {
    await bench.server.stop();
    const client = bench.client({ endpointName: 'quit-1', coap: { ackTimeoutMs: 30, maxRetransmit: 0 } });
    const started = client.start().catch((err: Error) => err);
    await sleep(100);
    await client.stop();
    assert.match(String(await started), /stopped/);
  });
});
