/**
 * Our DTLS server with a real Mbed TLS 2.x client: test/peers/mbedtls-client/lwm2m-client.c linked against
 * Debian's libmbedtls 2.28, whose first ClientHello record says {254, 0}. It registers with a PSK, is read,
 * and de-registers. Not optional (see mbedtls-peer.ts: built on demand, LWM2M_SKIP_MBEDTLS=1 skips).
 */
import { strict as assert } from 'node:assert';
import type { Registration } from '../../lib/server/registration';
import { Bench, nextEvent, waitFor } from '../client/helpers';
import { ClientProcess } from './client-process';
import { mbedtlsClient, mbedtlsSkipped } from './mbedtls-peer';

const IDENTITY = 'mbedtls-id';
const KEY = Buffer.from('0f1e2d3c4b5a69788796a5b4c3d2e1f0', 'hex');

describe('interop: the DTLS server with an Mbed TLS 2.x client (ours, on Debian libmbedtls)', function () {
  this.timeout(30_000);
  let binary: string;
  let bench: Bench | undefined;
  let client: ClientProcess | undefined;

  before(function () {
    if (mbedtlsSkipped()) this.skip();
    binary = mbedtlsClient();
  });
  afterEach(async () => {
    await client?.stop();
    client = undefined;
    await bench?.close();
    bench = undefined;
  });

  /** A server with DTLS (and `dtls` settings), the device's PSK in its store, and the client started. */
  async function start(endpoint: string, suite: string, dtls: { allowCbcSuites?: boolean } = {}) {
    bench = new Bench();
    const server = await bench.startServer({ dtls: { port: 0, ...dtls } });
    await server.securityStore.add({ endpoint, mode: 'psk', identity: IDENTITY, key: KEY });
    const registered = nextEvent<Registration>(server, 'registered', 20_000);
    registered.catch(() => undefined);
    const args = ['-h', '127.0.0.1', '-p', String(server.secureAddress!.port), '-n', endpoint];
    client = new ClientProcess(binary, [...args, '-i', IDENTITY, '-k', KEY.toString('hex'), '-c', suite, '-l', '300']);
    return { server, registered, client };
  }

  for (const suite of ['TLS_PSK_WITH_AES_128_CCM_8', 'TLS_PSK_WITH_AES_128_GCM_SHA256']) {
    it(`${suite}: registers, is read (a resource and the instance), de-registers`, async () => {
      const endpoint = `mbedtls-${suite.endsWith('CCM_8') ? 'ccm8' : 'gcm'}`;
      const { server, registered, client } = await start(endpoint, suite);
      const registration = await registered;
      assert.deepEqual(registration.security, { mode: 'psk', identity: IDENTITY });
      assert.equal(registration.lwm2mVersion, '1.0');
      await client.waitFor(/^REGISTER 2\.01 location=\/rd\/\S+$/m, 5000, 'the 2.01 on the client');
      assert.match(client.output, new RegExp(`^HANDSHAKE ok suite=${suite.replace(/_/g, '-')}$`, 'm'));

      const manufacturer = await server.read(endpoint, '/3/0/0');
      assert.equal(manufacturer.code, '2.05');
      assert.equal(manufacturer.value, 'Mbed TLS test peer');
      const device = await server.read(endpoint, '/3/0');
      assert.equal(device.code, '2.05');
      const byName = (device.value as { byName: Record<string, unknown> }).byName;
      assert.equal(byName.Manufacturer, 'Mbed TLS test peer');
      // The library the client runs on: a 2.x, the kind whose ClientHello record says {254, 0}.
      assert.match(String(byName['Firmware Version']), /^mbed TLS 2\.\d+\.\d+$/);
      await client.waitFor(/^REQUEST GET \/3\/0 -> 2\.05$/m, 5000, 'the read on the client');

      // De-registration on both of the client's triggers: a command on stdin, and SIGTERM.
      const gone = nextEvent<Registration>(server, 'deregistered', 10_000);
      if (suite.endsWith('CCM_8')) client.command('deregister');
      else client.child.kill('SIGTERM');
      assert.equal((await gone).endpoint, endpoint);
      await client.waitFor(/^DEREGISTER 2\.02$/m, 5000, 'the 2.02 on the client');
      await waitFor(() => !client.running, 5000, 'the client to exit');
      assert.equal(client.child.exitCode, 0, client.tail());
      assert.deepEqual(server.dtlsDroppedRecords(), {}, 'a clean session drops nothing');
    });
  }

  it('TLS_PSK_WITH_AES_128_CBC_SHA256: refused by default (handshake_failure), accepted with allowCbcSuites', async () => {
    const suite = 'TLS_PSK_WITH_AES_128_CBC_SHA256';
    const refused = await start('mbedtls-cbc', suite);
    const reasons: string[] = [];
    refused.server.on('handshakeFailed', (_peer, reason: string) => reasons.push(reason));
    // -0x7780: MBEDTLS_ERR_SSL_FATAL_ALERT_MESSAGE, the client got our fatal alert.
    await refused.client.waitFor(/^ERROR handshake: -0x7780 /m, 10_000, 'the fatal alert on the client');
    assert.match(reasons[0] ?? '', /^no cipher suite in common \(client offered 0x00ae/);
    await client?.stop();
    await bench?.close();

    const accepted = await start('mbedtls-cbc', suite, { allowCbcSuites: true });
    await accepted.registered;
    assert.equal((await accepted.server.read('mbedtls-cbc', '/3/0/0')).value, 'Mbed TLS test peer');
    await accepted.client.waitFor(/^HANDSHAKE ok suite=TLS-PSK-WITH-AES-128-CBC-SHA256$/m, 5000, 'the suite');
  });
});
