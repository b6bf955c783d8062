import { strict as assert } from 'node:assert';
import type { Lwm2mClient } from '../../lib/client';
import type { Registration } from '../../lib/server/registration';
import { Bench, nextEvent, waitFor } from '../client/helpers';
import { hasBinary, run } from '../dtls/helpers';

const KEY_TEXT = 'sensor-1-key-123';
const KEY = Buffer.from(KEY_TEXT);

describe('LwM2M over DTLS (the server with its DTLS listener)', function () {
  let bench: Bench;

  beforeEach(async function () {
    bench = new Bench();
    await bench.startServer({ dtls: { port: 0 } });
    await bench.server.securityStore.add({ endpoint: 'sensor-1', mode: 'psk', identity: 'sensor-1', key: KEY });
  });
  afterEach(async function () {
    await bench.close();
  });

  function secureUri(): string {
    return `coaps://127.0.0.1:${bench.server.secureAddress!.port}`;
  }

  function pskClient(endpointName: string, identity: string, key: Buffer, maxAttempts = Infinity): Lwm2mClient {
    return bench.client({
      endpointName,
      serverUri: secureUri(),
      psk: { identity, key },
      objects: [3303],
      registerRetry: { initialDelayMs: 50, maxDelayMs: 200, maxAttempts },
    });
  }

  it('our simulator (node-dtls-client, PSK CCM_8) registers, is read and observed, and de-registers', async function () {
    const registered = nextEvent<Registration>(bench.server, 'registered');
    const client = pskClient('sensor-1', 'sensor-1', KEY);
    await client.start();
    const registration = await registered;
    assert.deepEqual(registration.security, { mode: 'psk', identity: 'sensor-1' });
    assert.match(registration.peerKey, /^coaps:\/\/127\.0\.0\.1:\d+$/);
    const read = await bench.server.read('sensor-1', '/3/0');
    assert.equal(read.code, '2.05');
    const observed = await bench.server.observe('sensor-1', '/3303/0/5700', { owner: 'test' });
    assert.equal(observed.code, '2.05');
    const notified = nextEvent<{ endpoint: string }>(bench.server, 'notification');
    client.set('/3303/0/5700', 31.5);
    assert.equal((await notified).endpoint, 'sensor-1');
    const gone = nextEvent<Registration>(bench.server, 'deregistered');
    await client.stop();
    assert.equal((await gone).endpoint, 'sensor-1');
  });

  it('a wrong key or an unknown identity fails the handshake, with the reason, and registers nothing', async function () {
    const failures: string[] = [];
    bench.server.on('handshakeFailed', (_peer, reason: string) => failures.push(reason));
    const wrongKey = pskClient('sensor-1', 'sensor-1', Buffer.from('not-the-right-key'), 1);
    const unknown = pskClient('sensor-2', 'sensor-2', KEY, 1);
    for (const client of [wrongKey, unknown]) {
      await assert.rejects(client.start(), /registration failed|DTLS|handshake/i);
    }
    await waitFor(() => failures.length >= 2, 5000, 'two handshake failures');
    assert.ok(
      failures.some((reason) => /sensor-2/.test(reason)),
      failures.join('; '),
    );
    assert.equal((await bench.server.listRegistrations()).length, 0);
  });

  it('removing its credentials ends the live session of a device', async function () {
    const client = pskClient('sensor-1', 'sensor-1', KEY, 1);
    await client.start();
    assert.equal((await bench.server.read('sensor-1', '/3/0/0')).code, '2.05');
    const info = await bench.server.securityStore.remove('sensor-1');
    assert.equal(bench.server.revokeSessions(info!), 1);
    await assert.rejects(bench.server.read('sensor-1', '/3/0/0'), /no DTLS session/);
  });

  it('a device that lost its session to a server restart handshakes again and goes on', async function () {
    const client = pskClient('sensor-1', 'sensor-1', KEY);
    await client.start();
    const port = bench.server.secureAddress!.port;
    await bench.server.stop();
    await bench.startServer({ dtls: { port }, registrationStore: bench.server.options.registrationStore });
    await bench.server.securityStore.add({ endpoint: 'sensor-1', mode: 'psk', identity: 'sensor-1', key: KEY });
    // Registration kept, session gone: a request fails at once with the reason instead of timing out.
    await assert.rejects(bench.server.read('sensor-1', '/3/0/0'), /no DTLS session/);
    // The stopping server said close_notify: the device's next Update starts a new handshake and is accepted
    // (same identity, new address: requests follow it).
    const updated = nextEvent<Registration>(bench.server, 'updated', 15_000);
    await client.update();
    assert.equal((await updated).endpoint, 'sensor-1');
    assert.equal((await bench.server.read('sensor-1', '/3/0/0')).code, '2.05');
  });

  for (const binary of ['coap-client-openssl', 'coap-client-gnutls']) {
    it(`libcoap ${binary} registers with a PSK (POST /rd -> 2.01)`, async function () {
      if (!hasBinary(binary)) this.skip();
      const registered = nextEvent<Registration>(bench.server, 'registered', 10_000);
      const { code, output } = await run(binary, [
        ...['-m', 'post', '-u', 'sensor-1', '-k', KEY_TEXT, '-B', '5', '-t', '40'],
        ...['-e', '</1/0>,</3/0>'],
        `${secureUri()}/rd?ep=sensor-1&lt=60&lwm2m=1.1`,
      ]);
      const registration = await registered;
      assert.equal(code, 0, output);
      assert.deepEqual(registration.security, { mode: 'psk', identity: 'sensor-1' });
    });
  }
});
