/** The wire protocol the Redis store speaks: RESP2 on both connections, whatever the client library's default. */
import assert from 'node:assert/strict';
import { RedisLink } from '../../lib/store/redis';
import { haveRedisServer, startRedis, TEST_SECRET } from './redis-helpers';

describe('the Redis store on the wire (redis-server)', function () {
  let redis: Awaited<ReturnType<typeof startRedis>> | undefined;
  let link: RedisLink | undefined;

  before(async function () {
    if (!haveRedisServer()) this.skip();
    redis = await startRedis();
  });
  after(async () => {
    await link?.close();
    await redis?.stop();
  });

  it('speaks RESP2 on the command and the subscriber connection (as with ioredis 5: any Redis or proxy)', async () => {
    link = new RedisLink({ url: redis!.url, prefix: 'wire:', instanceId: 'wire-1', secrets: TEST_SECRET });
    await link.connect();
    const clients = String(await link.client.call('CLIENT', 'LIST'))
      .trim()
      .split('\n');
    assert.equal(clients.length, 2, clients.join('\n'));
    for (const client of clients) assert.match(client, / resp=2\b/, client);
  });
});
