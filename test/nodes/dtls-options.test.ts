import { strict as assert } from 'node:assert';
import type { Lwm2mServerConfigNode } from '../../nodes/shared/server-config';
import { resetHosts } from '../../nodes/shared/server-host';
import { freeUdpPort, helper, loadServerNode } from './helper';

const nodes = [require('../../nodes/lwm2m-server'), require('../../nodes/lwm2m-register-in')];

/** DTLS settings of the lwm2m-server config node as the listener gets them. */
describe('lwm2m-server node: DTLS settings', function () {
  afterEach(async function () {
    await helper.unload();
    await resetHosts();
  });

  async function load(settings: Record<string, unknown>): Promise<Lwm2mServerConfigNode> {
    const dtls = { store: 'memory', dtlsEnabled: true, securePort: String(await freeUdpPort()) };
    return loadServerNode({ ...dtls, ...settings }, nodes);
  }

  it('offers no CBC suite unless "Offer CBC cipher suites" is ticked', async () => {
    assert.equal((await load({})).server.options.dtls?.allowCbcSuites, undefined);
    await helper.unload();
    await resetHosts();
    assert.equal((await load({ dtlsCbc: true })).server.options.dtls?.allowCbcSuites, true);
  });
});
