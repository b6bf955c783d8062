/**
 * A Redis outage under a cluster of two server instances: redis-server is stopped (SIGKILL) and started again by
 * the test while registrations come due. Nothing may crash, expiry waits and then grants a grace, a request for
 * another instance's device fails at once naming Redis, and the read-back after the outage is tried until it works.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { CoapEndpoint } from '../../lib/coap/endpoint';
import type { IncomingResponse } from '../../lib/coap/types';
import { getMaxAge } from '../../lib/coap/codec';
import { ContentFormat } from '../../lib/content/types';
import type { Lwm2mRequestError } from '../../lib/server/errors';
import type { Lwm2mServer } from '../../lib/server/lwm2m-server';
import type { Registration } from '../../lib/server/registration';
import type { StoreOutage } from '../../lib/server/stores';
import { Bench, waitFor } from '../client/helpers';
import { openServerStores } from '../../nodes/shared/persistence';
import type { ServerStores } from '../../nodes/shared/persistence';
import type { RedisRegistrationStore } from '../../lib/store/redis';
import {
  clusterInstance,
  haveRedisServer,
  startRedis,
  storedRegistration,
  unhandledRejectionsCrash,
} from './redis-helpers';
import { UdpBalancer } from './udp-balancer';

type RedisServer = Awaited<ReturnType<typeof startRedis>>;

/** The times at which the server's expiry sweep ran (by its timer or otherwise). */
function sweepTimes(server: Lwm2mServer): number[] {
  const service = (server as unknown as { registrationService: { sweep(now?: number): Promise<void> } })
    .registrationService;
  const sweep = service.sweep.bind(service);
  const times: number[] = [];
  service.sweep = (now?: number) => {
    times.push(now ?? Date.now());
    return sweep(now);
  };
  return times;
}

/** A device we drive by hand: it registers and updates only when the test says so. */
async function rawRegister(
  device: CoapEndpoint,
  port: number,
  endpointName: string,
  lifetime: number,
): Promise<string[]> {
  const response = await device.request(
    { address: '127.0.0.1', port },
    {
      method: 'POST',
      pathSegments: ['rd'],
      query: [`ep=${endpointName}`, `lt=${lifetime}`, 'lwm2m=1.1', 'b=U'],
      contentFormat: ContentFormat.LINK_FORMAT,
      payload: Buffer.from('</1/0>,</3/0>'),
    },
  );
  assert.equal(response.code, '2.01');
  return response.options.filter((option) => option.name === 'Location-Path').map((option) => String(option.value));
}

function rawUpdate(device: CoapEndpoint, port: number, location: string[]): Promise<IncomingResponse> {
  return device.request({ address: '127.0.0.1', port }, { method: 'POST', pathSegments: location });
}

describe('a Redis outage under two server instances (redis-server stopped and started again)', function () {
  this.timeout(60_000);
  let redis: RedisServer | undefined;
  let dataDir: string;
  const prefix = `outage${process.pid}:`;
  const benchA = new Bench();
  const benchB = new Bench();
  let a: ReturnType<typeof clusterInstance>;
  let b: ReturnType<typeof clusterInstance>;
  let balancer: UdpBalancer | undefined;
  let portB = 0;
  const expired: Array<{ endpoint: string; at: number }> = [];
  let sweepsA: number[];
  let sweepsB: number[];
  let silentDevice: CoapEndpoint;
  let aliveDevice: CoapEndpoint;
  let aliveLocation: string[];
  let aliveUpdatedAt = 0;
  unhandledRejectionsCrash();

  before(async function () {
    if (!haveRedisServer()) {
      console.warn('    redis-server not installed: skipped');
      this.skip();
    }
    dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'lwm2m-outage-'));
    redis = await startRedis({ dataDir });
    a = clusterInstance(redis.url, prefix, 'instance-A');
    b = clusterInstance(redis.url, prefix, 'instance-B');
    benchA.port = await a.start();
    portB = await b.start();
    balancer = new UdpBalancer([portB]);
    benchB.port = await balancer.start();
    for (const server of [a.server, b.server]) {
      server.on('expired', (registration: Registration) =>
        expired.push({ endpoint: registration.endpoint, at: Date.now() }),
      );
      server.on('error', () => undefined); // reported by the node in Node-RED; not what this test is about
    }
    sweepsA = sweepTimes(a.server);
    sweepsB = sweepTimes(b.server);
  });

  after(async () => {
    await benchA.close();
    await benchB.close();
    await balancer?.close();
    await a?.stop().catch(() => undefined);
    await b?.stop().catch(() => undefined);
    await redis?.stop();
    if (dataDir) fs.rmSync(dataDir, { recursive: true, force: true });
  });

  it('no instance crashes when registrations come due while Redis is down, and none expires meanwhile', async () => {
    // Two devices that come due during the outage: one on A that will stay silent, one on B (through the
    // balancer) that will be alive again after the outage. Plus two real devices that live long.
    silentDevice = await benchA.rawEndpoint();
    await rawRegister(silentDevice, benchA.port, 'silent-1', 2);
    aliveDevice = await benchB.rawEndpoint();
    aliveLocation = await rawRegister(aliveDevice, benchB.port, 'alive-1', 3);
    const dueBy = Date.now() + 3000;
    const meterA = await benchA.registered({ endpointName: 'meter-a', lifetime: 3600 });
    meterA.set('/3/0/1', 'model A');
    await benchB.registered({ endpointName: 'meter-b', lifetime: 3600 });
    for (const instance of [a, b])
      await waitFor(
        () =>
          ['silent-1', 'alive-1', 'meter-a', 'meter-b'].every(
            (name) => instance.registrationStore.getByEndpointSync(name) !== undefined,
          ),
        5000,
        'every registration mirrored on both instances',
      );

    const down = new Set<string>();
    for (const instance of [a, b]) instance.link.once('down', () => down.add(instance.link.instanceId));
    await redis!.stop('SIGKILL');
    await waitFor(() => down.size === 2, 5000, 'both instances to see Redis gone');
    // Both expiry sweeps run past the moment the two come due (before the fix, the first one crashed the process).
    await waitFor(
      () => sweepsA.filter((at) => at > dueBy).length >= 2 && sweepsB.filter((at) => at > dueBy).length >= 2,
      10_000,
      'expiry sweeps after the registrations came due',
    );
    assert.equal(expired.length, 0, `expired: ${expired.map((event) => event.endpoint).join(', ')}`);
    for (const instance of [a, b])
      for (const name of ['silent-1', 'alive-1']) assert.ok(instance.registrationStore.getByEndpointSync(name), name);
  });

  it('during the outage: an Update is taken (2.04) and kept, a Register is answered 5.03 naming the store; A still reaches its own device, and a request for a device of B fails at once naming Redis', async () => {
    // Overdue since the outage began, and not expired: its Update is taken into B's memory, for Redis later.
    const updated = await rawUpdate(aliveDevice, benchB.port, aliveLocation);
    assert.equal(updated.code, '2.04');
    assert.equal(b.registrationStore.heldUpdates, 1);
    aliveUpdatedAt = b.registrationStore.getByEndpointSync('alive-1')!.lastUpdateAt;

    const newcomer = await benchB.rawEndpoint();
    const refused = await newcomer.request(
      { address: '127.0.0.1', port: benchB.port },
      {
        method: 'POST',
        pathSegments: ['rd'],
        query: ['ep=newcomer-1', 'lt=60'],
        contentFormat: ContentFormat.LINK_FORMAT,
        payload: Buffer.from('</3/0>'),
      },
    );
    assert.equal(refused.code, '5.03');
    // The device is told why, but not where the server's store is.
    assert.equal(refused.payload.toString(), "the server's registration store is unreachable: try again later");
    assert.equal(getMaxAge(refused.options), 10);

    assert.equal((await a.server.read('meter-a', '/3/0/1')).value, 'model A');
    await assert.rejects(a.server.read('meter-b', '/3/0/1'), (err: Lwm2mRequestError) => {
      assert.equal(err.code, 'cluster-unreachable');
      assert.match(err.message, /\/3\/0\/1 on meter-b: not sent: the device talks to server instance instance-B/);
      assert.match(err.message, /store \(Redis\) that links the instances is unreachable/);
      return true;
    });
  });

  it('Redis back: the Update taken meanwhile is written; what came due during the outage gets one lifetime from the return, so silence expires only the silent one', async () => {
    const restored: StoreOutage[] = [];
    for (const instance of [a, b]) instance.link.once('restored', (outage: StoreOutage) => restored.push(outage));
    redis = await startRedis({ dataDir, port: redis!.port });
    await waitFor(() => restored.length === 2, 15_000, 'both instances to read everything back');
    const back = Math.min(...restored.map((outage) => outage.to));
    // Not expired right after the return: both sweeps have run since, and both devices are still registered.
    await waitFor(
      () => sweepsA.filter((at) => at > back).length >= 2 && sweepsB.filter((at) => at > back).length >= 2,
      10_000,
      'expiry sweeps after the return',
    );
    assert.equal(expired.length, 0, `expired: ${expired.map((event) => event.endpoint).join(', ')}`);
    for (const instance of [a, b])
      for (const name of ['silent-1', 'alive-1']) assert.ok(instance.registrationStore.getByEndpointSync(name), name);
    // The Update taken during the outage reached Redis, and A.
    assert.equal(b.registrationStore.heldUpdates, 0);
    const stored = await a.link.client.hget(`${prefix}registrations`, aliveLocation[1]);
    assert.equal((JSON.parse(stored!) as { r: Registration }).r.lastUpdateAt, aliveUpdatedAt);
    assert.equal(a.registrationStore.getByEndpointSync('alive-1')!.lastUpdateAt, aliveUpdatedAt);

    // The live one updates; the silent one expires one lifetime (2 s) after the return, and only it.
    assert.equal((await rawUpdate(aliveDevice, benchB.port, aliveLocation)).code, '2.04');
    await waitFor(() => expired.length > 0, 10_000, 'the silent device to expire');
    assert.deepEqual(
      expired.map((event) => event.endpoint),
      ['silent-1'],
    );
    assert.ok(expired[0].at >= back + 2000, `expired ${expired[0].at - back} ms after the return`);
    assert.ok(a.registrationStore.getByEndpointSync('alive-1'));
    assert.equal((await a.server.read('meter-b', '/3/0/1')).code, '2.05');
  });
});

describe('the read-back after a Redis outage', function () {
  this.timeout(60_000);
  let redis: RedisServer | undefined;
  let dataDir: string;
  let stores: ServerStores | undefined;
  let spy: import('ioredis').default | undefined;
  const instances: Array<ReturnType<typeof clusterInstance>> = [];
  unhandledRejectionsCrash();

  before(async function () {
    if (!haveRedisServer()) this.skip();
    dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'lwm2m-readback-'));
    redis = await startRedis({ dataDir });
  });
  after(async () => {
    spy?.disconnect();
    for (const instance of instances) await instance.link.close();
    await stores?.close();
    await redis?.stop();
    if (dataDir) fs.rmSync(dataDir, { recursive: true, force: true });
  });

  it('is tried again until it works, and brings what was written meanwhile', async () => {
    const first = redis!;
    const prefix = 'readback:';
    const problems: string[] = [];
    stores = openServerStores(
      { kind: 'redis', redisUrl: first.url, redisPrefix: prefix, instanceId: 'solo', secret: 'read-back test' },
      (message) => problems.push(message),
    );
    stores.link!.on('problem', (message: string) => problems.push(message));
    await stores.ready;
    spy = new (await import('ioredis')).default(first.url, { lazyConnect: true, maxRetriesPerRequest: 0 });
    spy.on('error', () => undefined);
    await spy.connect();
    // Something the read-back cannot read: it fails until the key is repaired.
    await spy.set(`${prefix}observations`, 'not a hash');
    await first.stop('SIGKILL');
    redis = await startRedis({ dataDir, port: first.port });
    await waitFor(
      () => problems.some((message) => /reading .*back.* failed/.test(message)),
      15_000,
      'the read-back to fail',
    );
    // Written by another instance while this one could not read (no change message reaches it).
    await waitFor(() => spy!.status === 'ready', 5000, 'the spy connection back');
    const entry = {
      r: storedRegistration('written-meanwhile', 3600, Date.now(), {
        id: 'meanwhile-1',
        port: 9,
        peerKey: '127.0.0.1:9',
      }),
      o: 'other-instance',
    };
    await spy.hset(`${prefix}registrations`, 'meanwhile-1', JSON.stringify(entry));
    await spy.del(`${prefix}observations`);
    const registrations = stores.registrationStore as RedisRegistrationStore;
    await waitFor(
      () => registrations.getByEndpointSync('written-meanwhile') !== undefined,
      20_000,
      'the read-back to succeed and bring the registration written meanwhile',
    );
  });

  it('keeps a change another instance makes while this one reads everything back', async () => {
    const [reader, writer] = ['reader', 'writer'].map((id) => clusterInstance(redis!.url, 'readback-race:', id));
    instances.push(reader, writer);
    for (const instance of [reader, writer]) await instance.link.open(() => instance.registrationStore.load());
    // The reader's read is answered; before its answer is applied, the writer registers a device, and the
    // reader hears of it. What the read brought is older than what was heard.
    const client = reader.link.client;
    const hgetall = client.hgetall.bind(client);
    const subscriber = (reader.link as unknown as { subscriber: import('ioredis').default }).subscriber;
    (client as unknown as { hgetall: (key: string) => Promise<Record<string, string>> }).hgetall = async (key) => {
      const snapshot = await hgetall(key);
      const heard = new Promise((resolve) => subscriber.once('message', resolve));
      await writer.registrationStore.add(
        storedRegistration('registered-during-read', 3600, Date.now(), {
          id: 'during-read-1',
          port: 10,
          peerKey: '127.0.0.1:10',
        }),
      );
      await heard;
      return snapshot;
    };
    await reader.registrationStore.load();
    assert.ok(reader.registrationStore.getByEndpointSync('registered-during-read'), 'the change heard during the read');
  });

  it('reads back only once both connections are back, whichever comes first', async () => {
    const late = clusterInstance(redis!.url, 'readback-late:', 'late');
    instances.push(late);
    await late.link.open(() => late.registrationStore.load());
    // The command connection comes back seconds after the subscriber: a read-back started when the first connection
    // was back failed on the other, and was not tried again.
    late.link.client.options.retryStrategy = () => 3000;
    const restored = new Promise((resolve) => late.link.once('restored', resolve));
    const first = redis!;
    await first.stop('SIGKILL');
    redis = await startRedis({ dataDir, port: first.port });
    // Written while the instance is half back, without a change message: only a read-back brings it.
    const writer = new (await import('ioredis')).default(redis.url);
    try {
      await writer.hset(
        'readback-late:registrations',
        'late-1',
        JSON.stringify({
          r: storedRegistration('written-while-half-back', 3600, Date.now(), {
            id: 'late-1',
            port: 11,
            peerKey: '127.0.0.1:11',
          }),
          o: 'other-instance',
        }),
      );
    } finally {
      writer.disconnect();
    }
    await waitFor(
      () => late.registrationStore.getByEndpointSync('written-while-half-back') !== undefined,
      15_000,
      'the read-back once both connections are back',
    );
    await restored;
  });
});
