/**
 * The server configuration node's limits (registrations, new registrations per address, requests per address,
 * notifications) reach the server, with the documented defaults when a flow does not set them (flows made before
 * the settings existed).
 */
import { strict as assert } from 'node:assert';
import type { Lwm2mServer } from '../../lib/server/lwm2m-server';
import { resetHosts } from '../../nodes/shared/server-host';
import { helper, loadServerNode } from './helper';

/** The server's limits, in the order of the settings below. */
function limitsOf({ options }: Lwm2mServer): unknown[] {
  return [
    options.maxRegistrations,
    options.newRegistrationsBurstPerAddress,
    options.newRegistrationsPerAddressPerSecond,
    options.coap.maxRequestsPerSecondPerAddress,
    options.maxNotificationsPerSecond,
    options.floodNotificationsPerSecond,
    options.floodSeconds,
  ];
}

describe('server node: flood limits', function () {
  afterEach(async function () {
    await helper.unload();
    await resetHosts();
  });

  it('a flow without the settings gets the defaults', async function () {
    const { server } = await loadServerNode({});
    assert.deepEqual(limitsOf(server), [100_000, 1000, 50, 5000, 10, 100, 10]);
  });

  it('the settings given (0 turns a limit off) reach the server', async function () {
    const { server } = await loadServerNode({
      maxRegistrations: '0',
      newRegistrationsBurst: '20000',
      newRegistrationsRate: '500',
      requestsPerAddress: '20000',
      notificationRate: '0',
      floodRate: '1000',
      floodSeconds: '0',
    });
    assert.deepEqual(limitsOf(server), [0, 20000, 500, 20000, 0, 1000, 0]);
    const endpoint = (server as unknown as { endpoint: { options: { maxRequestsPerSecondPerAddress: number } } })
      .endpoint;
    assert.equal(endpoint.options.maxRequestsPerSecondPerAddress, 20000);
  });
});
