import assert from 'node:assert/strict';
import { fork } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Notification } from '../../lib/server/observation-service';
import { Bench, nextEvent, sleep, waitFor } from '../client/helpers';
import { RedisRecordStore } from '../../lib/store/redis';
import { clusterInstance, haveRedisServer, startRedis } from './redis-helpers';
import { UdpBalancer } from './udp-balancer';

describe('two server instances on one Redis (redis-server)', function () {
  this.timeout(60_000);
  let redis: Awaited<ReturnType<typeof startRedis>> | undefined;
  const prefix = `test${process.pid}:`;
  const benchA = new Bench();
  const benchB = new Bench();
  let a: ReturnType<typeof clusterInstance>;
  let childB: ChildProcess | undefined;
  const notificationsOnB: Array<{ endpoint: string; path: string; value: unknown }> = [];
  let portB = 0;
  let balancer: UdpBalancer | undefined;

  before(async function () {
    if (!haveRedisServer()) {
      // .ci/run installs redis-server; a machine without it cannot run this test.
      console.warn('    redis-server not installed: skipped');
      this.skip();
    }
    redis = await startRedis();
    a = clusterInstance(redis.url, prefix, 'instance-A');
    benchA.port = await a.start();
    childB = fork(path.join(__dirname, 'cluster-instance.js'), [redis.url, prefix, 'instance-B'], {
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    });
    portB = await new Promise<number>((resolve, reject) => {
      childB!.on('message', (message: { port?: number; notification?: (typeof notificationsOnB)[number] }) => {
        if (message.port !== undefined) resolve(message.port);
        if (message.notification) notificationsOnB.push(message.notification);
      });
      childB!.once('exit', (code) => reject(new Error(`instance B exited (${code})`)));
    });
  });

  after(async () => {
    await benchA.close();
    await benchB.close();
    await balancer?.close();
    await a?.stop().catch(() => undefined);
    if (childB && childB.exitCode === null && childB.signalCode === null) {
      childB.kill('SIGKILL');
      await new Promise((resolve) => childB!.once('exit', resolve));
    }
    await redis?.stop();
  });

  it('shares registrations; a read from A reaches a device registered through B (through B)', async () => {
    await benchA.registered({ endpointName: 'meter-a', lifetime: 3600 });
    // meter-b reaches the cluster through the balancer, which sends it to B while B lives, then to A.
    balancer = new UdpBalancer([portB, benchA.port]);
    benchB.port = await balancer.start();
    const deviceB = await benchB.registered({ endpointName: 'meter-b', lifetime: 3600 });
    await waitFor(() => a.registrationStore.getByEndpointSync('meter-b') !== undefined, 5000, 'meter-b on A');
    assert.equal(a.link.ownerOf(a.registrationStore.getByEndpointSync('meter-b')!.id), 'instance-B');
    assert.deepEqual((await a.server.listRegistrations()).map((r) => r.endpoint).sort(), ['meter-a', 'meter-b']);

    deviceB.set('/3/0/1', 'model-through-B');
    const read = await a.server.read('meter-b', '/3/0/1');
    assert.equal(read.value, 'model-through-B');
    // What crosses Redis between the instances is sealed: a forwarded Write may carry a device's keys.
    const spy = new (await import('ioredis')).default(redis!.url);
    const seen: string[] = [];
    spy.on('pmessage', (_pattern: string, _channel: string, text: string) => seen.push(text));
    await spy.psubscribe(`${prefix}calls:*`);
    try {
      const written = await a.server.write('meter-b', '/3/0/15', 'Europe/Secret_Zone');
      assert.equal(written.code, '2.04');
      assert.equal(deviceB.get('/3/0/15'), 'Europe/Secret_Zone');
      assert.ok(seen.length >= 2, 'a call and its answer went over Redis');
      const clear = Buffer.from('Europe/Secret_Zone').toString('base64');
      assert.ok(
        !seen.some((text) => text.includes('Secret_Zone') || text.includes(clear) || text.includes('pathSegments')),
      );
    } finally {
      spy.disconnect();
    }
  });

  it('an Observe from A on a device of B: its notifications are emitted by B, where the device talks', async () => {
    const deviceB = benchB.clients[0];
    const result = await a.server.observe('meter-b', '/3/0/9', { owner: 'flow-node' });
    assert.equal(result.joined, false);
    deviceB.set('/3/0/9', 42);
    await waitFor(
      () => notificationsOnB.some((n) => n.endpoint === 'meter-b' && n.value === 42),
      5000,
      'notification on B',
    );
    // A's own devices notify on A.
    const deviceA = benchA.clients[0];
    await a.server.observe('meter-a', '/3/0/9', { owner: 'flow-node' });
    deviceA.set('/3/0/9', 17);
    const local = await nextEvent<Notification>(a.server, 'notification');
    assert.equal(local.value, 17);
    // Cancelled from A: the device of B is told through B.
    let cancelled = false;
    deviceB.once('observeCancelled', () => (cancelled = true));
    assert.equal(await a.server.cancelObservation('meter-b', '/3/0/9', 'flow-node'), true);
    await waitFor(() => cancelled, 5000, 'cancel reaches the device of B');
  });

  it('B killed mid-run (SIGKILL): A reaches its devices, owns them from their next Update, and expires them once', async () => {
    const deviceB = benchB.clients[0];
    childB!.kill('SIGKILL');
    await new Promise((resolve) => childB!.once('exit', resolve));
    // The balancer's health check sees B gone: what the device sends now goes to A.
    balancer!.markDown(portB);
    // A reaches the device of B at once, itself (B is not there to route through).
    deviceB.set('/3/0/1', 'after-B-died');
    const read = await a.server.read('meter-b', '/3/0/1');
    assert.equal(read.value, 'after-B-died');
    // The device's next Update reaches A, which becomes its owner.
    const updated = new Promise((resolve) => a.server.once('updated', resolve));
    await deviceB.update();
    await updated;
    assert.equal(a.link.ownerOf(a.registrationStore.getByEndpointSync('meter-b')!.id), 'instance-A');

    // A short-lived device of B that nobody updates: A expires it (B is not there to).
    const registration = a.registrationStore.getByEndpointSync('meter-b')!;
    await a.registrationStore.update({ ...registration, lifetime: 1, lastUpdateAt: Date.now() - 5000 });
    const expired = new Promise((resolve) => a.server.once('expired', resolve));
    await (
      a.server as unknown as { registrationService: { sweep(now?: number): Promise<void> } }
    ).registrationService.sweep(Date.now() + 20_000);
    await expired;
    assert.equal(a.registrationStore.getByEndpointSync('meter-b'), undefined);
    await sleep(10);
  });
});

describe('Redis going away and coming back', function () {
  this.timeout(60_000);
  let dataDir: string;
  let redis: Awaited<ReturnType<typeof startRedis>> | undefined;
  let instance: ReturnType<typeof clusterInstance> | undefined;
  const bench = new Bench();

  before(function () {
    if (!haveRedisServer()) this.skip();
    dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'lwm2m-redis-'));
  });
  after(async () => {
    await bench.close();
    await instance?.stop().catch(() => undefined);
    await redis?.stop();
    if (dataDir) fs.rmSync(dataDir, { recursive: true, force: true });
  });

  it('says so (down), keeps serving reads from memory, refuses writes with an error, and reads everything back when Redis returns', async () => {
    redis = await startRedis({ dataDir });
    instance = clusterInstance(redis.url, 'outage:', 'solo');
    bench.port = await instance.start();
    const first = await bench.registered({ endpointName: 'pump-1', lifetime: 3600 });
    first.set('/3/0/1', 'pump model');
    const downs: Error[] = [];
    instance.link.on('down', (err: Error) => downs.push(err));
    const resynced = new Promise((resolve) => instance!.link.once('restored', resolve));

    await redis.stop('SIGTERM');
    await waitFor(() => downs.length > 0, 5000, 'the link to report Redis down');
    // Reads go on: the registration is in this instance's memory.
    assert.equal((await instance.server.read('pump-1', '/3/0/1')).value, 'pump model');
    // A registration cannot be stored: the device is told (5.00) and will try again; nothing is half-written.
    await assert.rejects(
      instance.registrationStore.add({
        ...(await instance.server.getRegistration('pump-1'))!,
        id: 'x',
        endpoint: 'pump-2',
      }),
    );

    redis = await startRedis({ dataDir, port: redis.port });
    await resynced;
    assert.ok(await instance.server.getRegistration('pump-1'), 'pump-1 read back');
    const second = await bench.registered({ endpointName: 'pump-2', lifetime: 3600 });
    assert.ok(second);
    await waitFor(() => instance!.registrationStore.getByEndpointSync('pump-2') !== undefined, 5000, 'pump-2 stored');
    const keys = await instance.link.client.hkeys('outage:registrations');
    assert.equal(keys.length, 2);
  });
});

describe('expiry shared by instances (Redis)', function () {
  this.timeout(30_000);
  let redis: Awaited<ReturnType<typeof startRedis>> | undefined;
  const links: Array<ReturnType<typeof clusterInstance>> = [];

  before(async function () {
    if (!haveRedisServer()) this.skip();
    redis = await startRedis();
  });
  after(async () => {
    for (const instance of links) await instance.link.close();
    await redis?.stop();
  });

  it('mirrors end equal to Redis when two instances write the same registration at once', async () => {
    const [one, two] = await Promise.all(
      ['mirror-a', 'mirror-b'].map(async (id) => {
        const instance = clusterInstance(redis!.url, 'race:', id);
        await instance.link.connect();
        await instance.registrationStore.load();
        links.push(instance);
        return instance;
      }),
    );
    const base = {
      id: 'race-1',
      endpoint: 'race-device',
      lifetime: 60,
      lwm2mVersion: '1.1' as const,
      binding: 'U',
      queueMode: false,
      address: '127.0.0.1',
      port: 1,
      peerKey: '127.0.0.1:1',
      rootPath: '',
      objects: {},
      supportedContentFormats: [],
      additionalAttributes: {},
      registeredAt: 1,
      lastUpdateAt: 1,
    };
    await one.registrationStore.add(base);
    await waitFor(() => two.registrationStore.getByIdSync('race-1') !== undefined, 5000, 'mirror');
    for (let round = 0; round < 100; round++) {
      await Promise.all([
        one.registrationStore.update({ ...base, lastUpdateAt: 1000 + round * 2 }),
        two.registrationStore.update({ ...base, lastUpdateAt: 1001 + round * 2 }),
      ]);
    }
    const inRedis = async () => {
      const text = await one.link.client.hget('race:registrations', 'race-1');
      return JSON.parse(text!) as { r: { lastUpdateAt: number }; o: string };
    };
    const truth = await inRedis(); // every update above is written: Redis holds the last word
    const mirrors = [one, two];
    await waitFor(
      () =>
        mirrors.every(
          (instance) =>
            instance.registrationStore.getByIdSync('race-1')!.lastUpdateAt === truth.r.lastUpdateAt &&
            instance.link.ownerOf('race-1') === truth.o,
        ),
      5000,
      'both mirrors to hold what Redis holds',
    );
    for (const instance of mirrors) {
      assert.equal(instance.registrationStore.getByIdSync('race-1')!.lastUpdateAt, truth.r.lastUpdateAt);
      assert.equal(instance.link.ownerOf('race-1'), truth.o);
    }
  });

  it('a record removed while its save is on its way is gone from Redis too (a held request is not sent twice)', async () => {
    const instance = links[0];
    const records = new RedisRecordStore<{ id: string }>(instance.link, 'held-test', (record) => record.id);
    const saving = records.save({ id: 'r1' });
    const removing = records.remove('r1');
    await Promise.all([saving, removing]);
    assert.deepEqual(await instance.link.client.hkeys(instance.link.key('held-test')), []);
    assert.equal(instance.link.key('held-test'), 'race:held-test');
  });

  it('a registration is removed by exactly one of the instances that find it expired, and not after an Update', async () => {
    const claimers: typeof links = [];
    for (const id of ['one', 'two', 'three']) {
      const instance = clusterInstance(redis!.url, 'expiry:', id);
      await instance.link.connect();
      await instance.registrationStore.load();
      links.push(instance);
      claimers.push(instance);
    }
    const [first] = claimers;
    const registration = {
      id: 'r1',
      endpoint: 'soil-probe-9',
      lifetime: 60,
      lwm2mVersion: '1.1' as const,
      binding: 'U',
      queueMode: false,
      address: '127.0.0.1',
      port: 1234,
      peerKey: '127.0.0.1:1234',
      rootPath: '',
      objects: {},
      supportedContentFormats: [],
      additionalAttributes: {},
      registeredAt: 1000,
      lastUpdateAt: 1000,
    };
    await first.registrationStore.add(registration);
    await waitFor(() => claimers.every((l) => l.registrationStore.getByIdSync('r1') !== undefined), 5000, 'mirrors');
    // An Update since: the stale expiry is refused everywhere.
    await first.registrationStore.update({ ...registration, lastUpdateAt: 2000 });
    assert.equal(await claimers[1].registrationStore.removeIfUnchanged('r1', 1000), undefined);
    // A lifetime written since (the device accepted a Write of /1/x/1): a claim made on the old record is refused.
    await first.registrationStore.update({
      ...registration,
      lastUpdateAt: 2000,
      lifetime: 300,
      lifetimeWrittenAt: 2500,
    });
    assert.equal(await claimers[1].registrationStore.removeIfUnchanged('r1', 2000), undefined);
    const claims = await Promise.all(claimers.map((l) => l.registrationStore.removeIfUnchanged('r1', 2000, 2500)));
    assert.equal(claims.filter((claim) => claim !== undefined).length, 1);
    await waitFor(
      () => claimers.every((l) => l.registrationStore.getByIdSync('r1') === undefined),
      5000,
      'gone everywhere',
    );
  });
});
