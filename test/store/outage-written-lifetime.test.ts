/**
 * A lifetime the server writes into a device while Redis is away (the Write goes to the device directly) is held in
 * the registration store's mirror like an Update, and must survive the read-back when Redis returns: the registration
 * then expires on the written lifetime, not on the one the device stated before.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Registration } from '../../lib/server/registration';
import { RegistrationService } from '../../lib/server/registration-service';
import { RedisLink, RedisRegistrationStore } from '../../lib/store/redis';
import { TEST_SECRET, haveRedisServer, startRedis, unhandledRejectionsCrash } from './redis-helpers';

type RedisServer = Awaited<ReturnType<typeof startRedis>>;

function registration(endpoint: string, lifetime: number, lastUpdateAt: number): Registration {
  return {
    id: `id-${endpoint}`,
    endpoint,
    lifetime,
    lwm2mVersion: '1.1',
    binding: 'U',
    queueMode: false,
    address: '127.0.0.1',
    port: 5683,
    peerKey: `127.0.0.1:${endpoint}`,
    rootPath: '',
    objects: { 1: { instances: [0] } },
    supportedContentFormats: [],
    additionalAttributes: {},
    registeredAt: lastUpdateAt,
    lastUpdateAt,
  };
}

describe('a lifetime written while Redis is away (redis-server stopped and started again)', function () {
  this.timeout(30_000);
  let redis: RedisServer | undefined;
  let dataDir: string;
  let link: RedisLink | undefined;
  let service: RegistrationService | undefined;
  unhandledRejectionsCrash();

  before(function () {
    if (!haveRedisServer()) {
      console.warn('    redis-server not installed: skipped');
      this.skip();
    }
  });

  afterEach(async () => {
    service?.stop();
    await link?.close();
    await redis?.stop();
    if (dataDir) fs.rmSync(dataDir, { recursive: true, force: true });
  });

  it('is written to Redis when it is back, not undone by the read-back', async () => {
    dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'lwm2m-written-'));
    redis = await startRedis({ dataDir });
    link = new RedisLink({ url: redis.url, prefix: `written${process.pid}:`, secrets: TEST_SECRET, heartbeatMs: 300 });
    const store = new RedisRegistrationStore(link);
    await link.open(() => store.load());
    service = new RegistrationService(
      store,
      { lifetimeGraceSeconds: 0, defaultLifetimeSeconds: 86400 },
      {
        registered: () => undefined,
        updated: () => undefined,
        deregistered: () => undefined,
        expired: () => undefined,
        expiryFailed: () => undefined,
      },
    );
    const before = Date.now();
    await store.add(registration('wakaama', 60, before));
    await service.start();

    const down = new Promise((resolve) => link!.once('down', resolve));
    await redis.stop('SIGKILL');
    await down;
    // The device accepted a Write of /1/0/1 = 300 while Redis is away: held in the mirror.
    const adopted = await service.adoptWrittenLifetime('id-wakaama', 300);
    assert.equal(adopted?.lifetime, 300);

    const restored = new Promise((resolve) => link!.once('restored', resolve));
    redis = await startRedis({ dataDir, port: redis.port });
    await restored;
    const after = store.getByIdSync('id-wakaama');
    assert.equal(after?.lifetime, 300, 'the written lifetime survives the read-back');
    assert.equal(after?.lifetimeSource, 'written');
    const inRedis = JSON.parse((await link.client.hget(link.key('registrations'), 'id-wakaama'))!) as {
      r: Registration;
    };
    assert.equal(inRedis.r.lifetime, 300, 'and is in Redis for the other instances');
  });
});
