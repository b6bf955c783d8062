import { strict as assert } from 'node:assert';
import { Lwm2mClient } from '../../lib/client';
import { DtlsClientTransport } from '../../lib/client/dtls-transport';
import type { Lwm2mServerConfigNode } from '../../nodes/shared/server-config';
import { resetHosts } from '../../nodes/shared/server-host';
import { FAST_COAP } from '../client/helpers';
import { freeUdpPort, helper, ourNodes } from './helper';

const KEY = Buffer.from('keeper-psk-12345');

describe('a redeploy with DTLS devices', function () {
  afterEach(async function () {
    await helper.unload();
    await resetHosts();
  });

  it('keeps their sessions: no new handshake, no new registration, requests go on at once', async function () {
    const securePort = await freeUdpPort();
    const flow = [
      { id: 'f1', type: 'tab', label: 'test' },
      {
        id: 'srv',
        type: 'lwm2m-server',
        address: '127.0.0.1',
        port: '0',
        dtlsEnabled: true,
        securePort: String(securePort),
      },
      { id: 'reg', z: 'f1', type: 'lwm2m-register-in', server: 'srv', wires: [[]] },
    ];
    await helper.load(ourNodes, flow);
    let config = helper.getNode('srv') as unknown as Lwm2mServerConfigNode;
    await config.ready();
    await config.server.securityStore.add({ endpoint: 'keeper', mode: 'psk', identity: 'keeper', key: KEY });

    let transport: DtlsClientTransport | undefined;
    const client = new Lwm2mClient({
      endpointName: 'keeper',
      serverUri: `coaps://127.0.0.1:${securePort}`,
      transport: () =>
        (transport = new DtlsClientTransport(
          { address: '127.0.0.1', port: securePort },
          { identity: 'keeper', key: KEY },
        )),
      coap: FAST_COAP,
      registerRetry: { initialDelayMs: 50, maxDelayMs: 200 },
    });
    let registrations = 0;
    client.on('registered', () => registrations++);
    try {
      await client.start();
      assert.equal(transport?.sessions, 1);

      await helper.unload();
      await helper.load(ourNodes, flow);
      config = helper.getNode('srv') as unknown as Lwm2mServerConfigNode;
      await config.ready();
      // The new listener took the session over: the server can talk to the device before it says anything.
      const read = await config.server.read('keeper', '/3/0/0');
      assert.equal(read.code, '2.05');
      await client.update();
      assert.equal(transport?.sessions, 1, 'no second handshake');
      assert.equal(registrations, 1, 'no second registration');
    } finally {
      await client.stop({ timeoutMs: 1000 });
    }
  });
});
