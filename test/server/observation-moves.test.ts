/**
 * An observed device whose NAT re-maps it: after its Update from the new address, its notifications (same token,
 * new address) still reach the flow, and nothing is answered with a RST. The observation's CoAP handle is keyed by
 * the old address, so this goes through the server's adoption of tokens it knows (issue 18 kept that index only for
 * such observations). The device is a raw-datagram peer.
 */
import { strict as assert } from 'node:assert';
import { Lwm2mServer } from '../../lib/server/lwm2m-server';
import type { Notification } from '../../lib/server/observation-service';
import { NotifyingDevice } from '../peers/notifying-device';

describe('an observed device that moves (NAT re-mapping)', function () {
  let server: Lwm2mServer | undefined;
  let device: NotifyingDevice | undefined;

  afterEach(async function () {
    await device?.close();
    await server?.stop();
  });

  function nextNotification(target: Lwm2mServer): Promise<Notification> {
    return new Promise((resolve) => target.once('notification', resolve));
  }

  it('keeps delivering its notifications from the new address after its Update', async function () {
    server = new Lwm2mServer({ address: '127.0.0.1', port: 0 });
    const { port } = await server.start();
    device = new NotifyingDevice('moving-1', port);
    await device.start();
    await device.register();
    await server.observe('moving-1', '/3303/0/5700');

    let next = nextNotification(server);
    device.notify(21);
    assert.equal((await next).value, 21);

    const oldPort = device.port;
    await device.rebind();
    assert.notEqual(device.port, oldPort);
    await device.update();
    const registration = await server.registrations.getByEndpoint('moving-1');
    assert.equal(registration?.port, device.port, 'the registration follows the device');

    next = nextNotification(server);
    device.notify(22);
    const moved = await next;
    assert.equal(moved.value, 22);
    assert.equal(moved.endpoint, 'moving-1');
    next = nextNotification(server);
    device.notify(23);
    assert.equal((await next).value, 23);
    assert.equal(device.resets, 0, 'no notification was refused');
    assert.equal((await server.listObservations('moving-1')).length, 1);
  });
});
