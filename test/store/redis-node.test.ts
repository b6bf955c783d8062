import assert from 'node:assert/strict';
import { Lwm2mClient } from '../../lib/client';
import type { Lwm2mServerConfigNode } from '../../nodes/shared/server-config';
import { resetHosts } from '../../nodes/shared/server-host';
import { FAST_COAP, waitFor } from '../client/helpers';
import { freeTcpPort, freeUdpPort, helper, ourNodes } from '../nodes/helper';
import type { TestNode } from '../nodes/helper';
import { haveRedisServer, startRedis } from './redis-helpers';

describe('lwm2m-server node on Redis', function () {
  this.timeout(30_000);
  let redis: Awaited<ReturnType<typeof startRedis>> | undefined;
  let device: Lwm2mClient | undefined;

  before(function () {
    if (!haveRedisServer()) this.skip();
  });
  after(async () => {
    await device?.stop({ deregister: false, timeoutMs: 300 }).catch(() => undefined);
    await helper.unload();
    await resetHosts();
    await redis?.stop();
  });

  it('waits for Redis with a red status and an error, starts when it comes, and keeps the fleet in it', async () => {
    const redisPort = await freeTcpPort();
    const coapPort = await freeUdpPort();
    const flow = [
      {
        id: 'srv',
        type: 'lwm2m-server',
        address: '127.0.0.1',
        port: coapPort,
        dtlsEnabled: false,
        store: 'redis',
        redisUrl: `redis://127.0.0.1:${redisPort}`,
        redisPrefix: 'node-test:',
        instanceId: 'node-red-1',
      },
      { id: 'reg', type: 'lwm2m-register-in', server: 'srv', wires: [['out']] },
      { id: 'out', type: 'helper' },
    ];
    await helper.load(ourNodes, flow, { srv: { storeSecret: 'shared secret' } });
    const statuses: Array<{ fill?: string; text?: string }> = [];
    const errors: string[] = [];
    (helper.getNode('reg') as TestNode).on('call:status', (call: { args: [{ fill?: string; text?: string }] }) =>
      statuses.push(call.args[0]),
    );
    (helper.getNode('srv') as TestNode).on('call:error', (call: { args: [unknown] }) =>
      errors.push(String(call.args[0])),
    );
    await waitFor(() => statuses.some((status) => status.text === 'store unreachable'), 10_000, 'the red status');
    assert.equal(statuses.find((status) => status.text === 'store unreachable')!.fill, 'red');
    assert.match(
      errors.join('\n'),
      /store unreachable \(redis redis:\/\/127\.0\.0\.1:\d+\/? \(node-test:, instance node-red-1\)\)/,
    );

    redis = await startRedis({ port: redisPort });
    const config = helper.getNode('srv') as unknown as Lwm2mServerConfigNode;
    await config.ready();
    await waitFor(() => statuses.at(-1)?.fill === 'green', 10_000, 'a green status');
    device = new Lwm2mClient({
      endpointName: 'greenhouse-4',
      serverUri: `coap://127.0.0.1:${coapPort}`,
      bindAddress: '127.0.0.1',
      lifetime: 3600,
      coap: { ...FAST_COAP },
    });
    await device.start();
    const link = new (await import('ioredis')).default(`redis://127.0.0.1:${redisPort}`);
    try {
      // Written before the device got its 2.01.
      const stored = await link.hkeys('node-test:registrations');
      assert.equal(stored.length, 1);
      assert.ok((await link.get('node-test:alive:node-red-1')) !== null, 'the instance says it is alive');
    } finally {
      link.disconnect();
    }
    // Flows stopped and the process state forgotten: the registration comes back from Redis.
    await helper.unload();
    await resetHosts();
    await helper.load(ourNodes, flow, { srv: { storeSecret: 'shared secret' } });
    const again = helper.getNode('srv') as unknown as Lwm2mServerConfigNode;
    await again.ready();
    assert.ok(await again.server.getRegistration('greenhouse-4'));
  });
});

describe('lwm2m-server node on a Redis that never comes', function () {
  this.timeout(20_000);
  after(async () => {
    await helper.unload();
    await resetHosts();
  });

  it('a redeploy (unload) does not wait for it, and nothing is left running', async () => {
    const flow = [
      {
        id: 'srv',
        type: 'lwm2m-server',
        address: '127.0.0.1',
        port: await freeUdpPort(),
        dtlsEnabled: false,
        store: 'redis',
        redisUrl: `redis://127.0.0.1:${await freeTcpPort()}`,
      },
      { id: 'reg', type: 'lwm2m-register-in', server: 'srv', wires: [] },
    ];
    await helper.load(ourNodes, flow);
    await new Promise((resolve) => setTimeout(resolve, 300));
    await helper.unload(); // would hang if the start waiting for Redis held up the close
    await resetHosts();
  });
});
