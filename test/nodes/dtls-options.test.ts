import { strict as assert } from 'node:assert';
import type { Lwm2mServerConfigNode } from '../../nodes/shared/server-config';
import { resetHosts } from '../../nodes/shared/server-host';
import { freeUdpPort, helper } from './helper';

const nodes = [require('../../nodes/lwm2m-server'), require('../../nodes/lwm2m-register-in')];

/** DTLS settings of the lwm2m-server config node as the listener gets them. */
describe('lwm2m-server node: DTLS settings', function () {
  afterEach(async function () {
    await helper.unload();
    await resetHosts();
  });

  async function load(settings: Record<string, unknown>): Promise<Lwm2mServerConfigNode> {
    await helper.load(nodes, [
      { id: 'f1', type: 'tab', label: 'test' },
      {
        id: 'srv',
        type: 'lwm2m-server',
        address: '127.0.0.1',
        port: '0',
        store: 'memory',
        dtlsEnabled: true,
        securePort: String(await freeUdpPort()),
        ...settings,
      },
      { id: 'reg', z: 'f1', type: 'lwm2m-register-in', server: 'srv', wires: [[]] },
    ]);
    const config = helper.getNode('srv') as unknown as Lwm2mServerConfigNode;
    await config.ready();
    return config;
  }

  it('offers no CBC suite unless "Offer CBC cipher suites" is ticked', async () => {
    assert.equal((await load({})).server.options.dtls?.allowCbcSuites, undefined);
    await helper.unload();
    await resetHosts();
    assert.equal((await load({ dtlsCbc: true })).server.options.dtls?.allowCbcSuites, true);
  });
});
