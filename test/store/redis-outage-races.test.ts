/**
 * Races between a Redis outage and registration expiry, with a real redis-server stopped and started again:
 * - a lifetime the server writes into a device while Redis is away (the Write goes to the device directly) is held in
 *   the registration store's mirror like an Update, and must survive the read-back when Redis returns;
 * - the end of an outage: no expiry sweep may run between the store being usable again and the outage's grace being
 *   granted (it would expire the registrations that came due during the outage).
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Registration } from '../../lib/server/registration';
import { RegistrationService } from '../../lib/server/registration-service';
import { RedisLink, RedisRegistrationStore } from '../../lib/store/redis';
import { waitFor } from '../client/helpers';
import {
  TEST_SECRET,
  haveRedisServer,
  startRedis,
  storedRegistration,
  unhandledRejectionsCrash,
} from './redis-helpers';

type RedisServer = Awaited<ReturnType<typeof startRedis>>;

/** With a Server object instance /1/0, whose lifetime the server writes. */
function registration(endpoint: string, lifetime: number, lastUpdateAt: number): Registration {
  return storedRegistration(endpoint, lifetime, lastUpdateAt, { objects: { 1: { instances: [0] } } });
}

describe('Redis outage races with expiry (redis-server stopped and started again)', function () {
  this.timeout(30_000);
  let redis: RedisServer | undefined;
  let dataDir: string;
  /** What afterEach closes. */
  let openLink: RedisLink | undefined;
  let runningService: RegistrationService | undefined;
  unhandledRejectionsCrash();

  before(function () {
    if (!haveRedisServer()) {
      console.warn('    redis-server not installed: skipped');
      this.skip();
    }
  });

  afterEach(async () => {
    runningService?.stop();
    await openLink?.close();
    await redis?.stop();
    if (dataDir) fs.rmSync(dataDir, { recursive: true, force: true });
  });

  /** Redis with persistence, a link and a registration store on it, and the service (started by the test). */
  async function open(name: string) {
    dataDir = fs.mkdtempSync(path.join(os.tmpdir(), `lwm2m-${name}-`));
    redis = await startRedis({ dataDir });
    const opened = new RedisLink({
      url: redis.url,
      prefix: `${name}${process.pid}:`,
      secrets: TEST_SECRET,
      heartbeatMs: 300,
    });
    openLink = opened;
    const store = new RedisRegistrationStore(opened);
    await opened.open(() => store.load());
    const expired: string[] = [];
    const started = new RegistrationService(
      store,
      { lifetimeGraceSeconds: 0, defaultLifetimeSeconds: 86400 },
      {
        registered: () => undefined,
        updated: () => undefined,
        deregistered: () => undefined,
        expired: (gone) => expired.push(gone.endpoint),
        expiryFailed: () => undefined,
      },
    );
    runningService = started;
    return { store, expired, link: opened, service: started };
  }

  it('a lifetime written meanwhile is written to Redis when it is back, not undone by the read-back', async () => {
    const { store, link, service } = await open('written');
    await store.add(registration('wakaama', 60, Date.now()));
    await service.start();

    const down = new Promise((resolve) => link.once('down', resolve));
    await redis!.stop('SIGKILL');
    await down;
    // The device accepted a Write of /1/0/1 = 300 while Redis is away: held in the mirror.
    const adopted = await service.adoptWrittenLifetime('id-wakaama', 300);
    assert.equal(adopted?.lifetime, 300);

    const restored = new Promise((resolve) => link.once('restored', resolve));
    redis = await startRedis({ dataDir, port: redis!.port });
    await restored;
    const after = store.getByIdSync('id-wakaama');
    assert.equal(after?.lifetime, 300, 'the written lifetime survives the read-back');
    assert.equal(after?.lifetimeSource, 'written');
    const inRedis = JSON.parse((await link.client.hget(link.key('registrations'), 'id-wakaama'))!) as {
      r: Registration;
    };
    assert.equal(inRedis.r.lifetime, 300, 'and is in Redis for the other instances');
  });

  it('no sweep expires what came due during the outage before its grace is granted', async () => {
    const { store, expired, link, service } = await open('grace');
    // Due one second from now, while Redis is away (found by the sweep of the second after: the wheel counts seconds).
    await store.add(registration('sleepy', 1, Date.now()));
    await service.start();
    const down = new Promise((resolve) => link.once('down', resolve));
    await redis!.stop('SIGKILL');
    await down;
    const dueAt = store.getByIdSync('id-sleepy')!.lastUpdateAt + 2100;
    await waitFor(() => Date.now() >= dueAt, 5000, 'sleepy to come due');

    // The last thing the link does at the end of the outage is to write down when it was (for instances starting
    // later): an expiry sweep that runs while that write is on its way must already see the outage's grace.
    const client = link.client;
    const set = client.set.bind(client) as (...args: unknown[]) => Promise<unknown>;
    let swept = false;
    (client as unknown as { set: (...args: unknown[]) => Promise<unknown> }).set = async (...args: unknown[]) => {
      if (args[0] === `${link.prefix}last-outage` && !swept) {
        swept = true;
        await service.sweep();
        await new Promise((resolve) => setImmediate(resolve)); // 'expired' is told on the next turn
      }
      return set(...args);
    };
    const restored = new Promise((resolve) => link.once('restored', resolve));
    redis = await startRedis({ dataDir, port: redis!.port });
    await restored;
    assert.ok(swept, 'a sweep ran while the outage was being written down');
    assert.deepEqual(expired, [], 'not expired: one lifetime from the end of the outage first');
    assert.ok(store.getByIdSync('id-sleepy'), 'still registered');
  });
});
