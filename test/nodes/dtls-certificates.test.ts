import { strict as assert } from 'node:assert';
import { createPublicKey } from 'node:crypto';
import type { Lwm2mServerConfigNode } from '../../nodes/shared/server-config';
import { resetHosts } from '../../nodes/shared/server-host';
import { createTestPki, hasBinary, run } from '../dtls/helpers';
import type { TestPki } from '../dtls/helpers';
import { freeUdpPort, helper, nextMessage } from './helper';

const nodes = [
  require('../../nodes/lwm2m-server'),
  require('../../nodes/lwm2m-register-in'),
  require('../../nodes/lwm2m-credentials'),
];

/**
 * The server's own certificate, key and trusted CA set in the config node's Node-RED credentials, devices
 * with certificates and raw public keys (libcoap with OpenSSL and GnuTLS), the security rules on top.
 */
describe('lwm2m-server node with certificates and raw public keys (libcoap peers)', function () {
  let pki: TestPki;
  let securePort: number;
  const registrations: Record<string, unknown>[] = [];

  before(function () {
    if (!hasBinary('openssl')) this.skip();
    pki = createTestPki();
  });
  after(() => pki?.remove());

  beforeEach(async function () {
    registrations.length = 0;
    securePort = await freeUdpPort();
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
          securePort: String(securePort),
        },
        { id: 'reg', z: 'f1', type: 'lwm2m-register-in', server: 'srv', wires: [['regOut']] },
        { id: 'regOut', z: 'f1', type: 'helper' },
        { id: 'cred', z: 'f1', type: 'lwm2m-credentials', server: 'srv', action: 'add', wires: [['credOut']] },
        { id: 'credOut', z: 'f1', type: 'helper' },
      ],
      {
        srv: {
          certificate: pki.read('server.pem').toString(),
          privateKey: pki.read('server.key').toString(),
          trustedCertificates: pki.read('test-ca.pem').toString() + pki.read('intermediate-ca.pem').toString(),
        },
      },
    );
    helper.getNode('regOut').on('input', (msg: Record<string, unknown>) => registrations.push(msg));
    await (helper.getNode('srv') as unknown as Lwm2mServerConfigNode).ready();
  });
  afterEach(async function () {
    await helper.unload();
    await resetHosts();
  });

  const register = (binary: string, credentials: string[], endpoint: string) =>
    run(binary, [
      ...['-m', 'post', '-B', '8', ...credentials],
      `coaps://127.0.0.1:${securePort}/rd?ep=${endpoint}&lt=60&lwm2m=1.1`,
    ]);
  const certificate = (name: string) => [
    '-c',
    pki.path(`${name}.pem`),
    '-j',
    pki.path(`${name}.key`),
    '-C',
    pki.path('test-ca.pem'),
  ];

  for (const binary of ['coap-client-openssl', 'coap-client-gnutls']) {
    it(`${binary}: a certificate whose CN is the endpoint registers; another endpoint name gets 4.03`, async function () {
      if (!hasBinary(binary)) this.skip();
      const accepted = await register(binary, certificate('client-1'), 'client-1');
      assert.equal(accepted.code, 0, accepted.output);
      assert.equal(registrations[0]?.topic, 'client-1');
      assert.equal((registrations[0].payload as { secure?: boolean }).secure, true);
      const refused = await register(binary, certificate('client-1'), 'someone-else');
      assert.match(refused.output, /4\.03|Forbidden|does not match/, refused.output);
      const config = helper.getNode('srv') as unknown as Lwm2mServerConfigNode;
      assert.deepEqual(
        (await config.server.listRegistrations()).map((registration) => registration.endpoint),
        ['client-1'],
      );
      // A chain through the intermediate CA (trusted here) works too.
      const chained = await register(binary, certificate('client-2'), 'client-2');
      assert.equal(chained.code, 0, chained.output);
    });
  }

  it('coap-client-gnutls: a raw public key added by the credentials node registers as its endpoint', async function () {
    if (!hasBinary('coap-client-gnutls')) this.skip();
    const publicKey = createPublicKey(pki.read('client-2.key')).export({ type: 'spki', format: 'pem' });
    const added = nextMessage(helper.getNode('credOut'));
    helper.getNode('cred').receive({ payload: { endpoint: 'meter-2', mode: 'rpk', publicKey } });
    await added;
    const result = await register('coap-client-gnutls', ['-M', pki.path('client-2.key')], 'meter-2');
    assert.equal(result.code, 0, result.output);
    const config = helper.getNode('srv') as unknown as Lwm2mServerConfigNode;
    assert.deepEqual((await config.server.getRegistration('meter-2'))?.security, { mode: 'rpk', identity: 'meter-2' });
    // An untrusted key: the handshake fails, nothing registers.
    const rogue = await register('coap-client-gnutls', ['-M', pki.path('rogue-client.key'), '-B', '3'], 'rogue');
    assert.equal(await config.server.getRegistration('rogue'), undefined, rogue.output);
  });

  it('a certificate from an untrusted CA is refused at the handshake', async function () {
    if (!hasBinary('coap-client-openssl')) this.skip();
    const config = helper.getNode('srv') as unknown as Lwm2mServerConfigNode;
    const reasons: string[] = [];
    config.server.on('handshakeFailed', (_peer, reason: string) => reasons.push(reason));
    const refused = await register('coap-client-openssl', [...certificate('rogue-client'), '-B', '3'], 'rogue-client');
    assert.equal(registrations.length, 0, refused.output);
    assert.match(reasons.join('; '), /certificate not trusted/);
  });
});
