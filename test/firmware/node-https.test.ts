/**
 * The lwm2m-firmware-update node with delivery 'pull over HTTPS': the HTTPS server takes the certificate and
 * key of the lwm2m-server config node (its DTLS credentials, in Node-RED's credentials) unless the node names
 * files of its own. Devices (the simulator, trusting the right test CA) pull and run the image.
 */
import { strict as assert } from 'node:assert';
import { Lwm2mClient } from '../../lib/client';
import type { Lwm2mServerConfigNode } from '../../nodes/shared/server-config';
import { resetHosts } from '../../nodes/shared/server-host';
import { FAST_COAP } from '../client/helpers';
import { freeUdpPort, helper, nextError, ourNodes } from '../nodes/helper';
import { createHttpsPki, firmwarePackage, hasBinary, type HttpsPki } from './helpers';

const nodes = [...ourNodes, require('../../nodes/lwm2m-firmware-update')];
type Msg = Record<string, unknown>;

describe('lwm2m-firmware-update node: pull over HTTPS', function () {
  let pki: HttpsPki;
  const clients: Lwm2mClient[] = [];

  before(function () {
    if (!hasBinary('openssl')) this.skip();
    pki = createHttpsPki();
  });
  after(() => pki?.remove());

  afterEach(async function () {
    for (const client of clients.splice(0)) await client.stop({ timeoutMs: 300 }).catch(() => undefined);
    await helper.unload();
    await resetHosts();
  });

  async function setUp(node: Msg): Promise<{ results: Msg[]; port: number }> {
    await helper.load(
      nodes,
      [
        { id: 'f1', type: 'tab', label: 'test' },
        {
          id: 'srv',
          type: 'lwm2m-server',
          address: '127.0.0.1',
          port: '0',
          dtlsEnabled: true,
          securePort: String(await freeUdpPort()),
        },
        { id: 'fw', z: 'f1', type: 'lwm2m-firmware-update', server: 'srv', wires: [[], ['results']], ...node },
        { id: 'results', z: 'f1', type: 'helper' },
      ],
      { srv: { certificate: pki.read('server.pem'), privateKey: pki.read('server.key') } },
    );
    const results: Msg[] = [];
    helper.getNode('results').on('input', (msg: Msg) => results.push(msg));
    const config = helper.getNode('srv') as unknown as Lwm2mServerConfigNode;
    await config.ready();
    return { results, port: config.server.address!.port };
  }

  async function device(port: number, endpointName: string, ca: string): Promise<Lwm2mClient> {
    const client = new Lwm2mClient({
      endpointName,
      serverUri: `coap://127.0.0.1:${port}`,
      objects: [5],
      firmware: { updateDelayMs: 20, downloadTimeoutMs: 3000, tls: { ca } },
      coap: FAST_COAP,
      rebootDelayMs: 50,
    });
    clients.push(client);
    await client.start();
    return client;
  }

  const summary = async (results: Msg[]): Promise<void> => {
    for (let waited = 0; !results.some((msg) => msg.topic === 'summary'); waited += 20) {
      if (waited > 15_000) throw new Error('no summary in time');
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  };

  it("with the config node's certificate: the device fetches https://... and runs the image", async function () {
    const { results, port } = await setUp({ endpoint: 'meter-1', method: 'pull-https', expectedVersion: '4.0.0' });
    const meter = await device(port, 'meter-1', pki.read('ca.pem'));
    helper.getNode('fw').receive({ payload: firmwarePackage('4.0.0') });
    await summary(results);
    const outcome = results.find((msg) => msg.topic === 'meter-1')!.payload as Msg;
    assert.equal(outcome.ok, true, JSON.stringify(outcome));
    assert.match(String(meter.get('/5/0/1')), /^https:\/\/127\.0\.0\.1:\d+\/fw\/[0-9a-f]{32}$/);
    assert.equal(meter.get('/3/0/3'), '4.0.0');
  });

  it('with certificate and key files of its own', async function () {
    const { results, port } = await setUp({
      endpoint: 'meter-2',
      method: 'pull-https',
      httpsCertificate: pki.path('other-server.pem'),
      httpsKey: pki.path('other-server.key'),
    });
    const meter = await device(port, 'meter-2', pki.read('other-ca.pem'));
    helper.getNode('fw').receive({ payload: firmwarePackage('4.1.0') });
    await summary(results);
    assert.equal((results.find((msg) => msg.topic === 'meter-2')!.payload as Msg).ok, true);
    assert.equal(meter.get('/3/0/3'), '4.1.0');
  });

  it('a certificate file without its key goes to Catch', async function () {
    await setUp({ endpoint: 'meter-3', method: 'pull-https', httpsCertificate: pki.path('other-server.pem') });
    const fw = helper.getNode('fw');
    const failed = nextError(fw);
    fw.receive({ payload: firmwarePackage('4.2.0') });
    assert.match((await failed)[0].message, /both a certificate file and a key file/);
  });
});
