import { strict as assert } from 'node:assert';
import { createPublicKey } from 'node:crypto';
import { CoapEndpoint, type IncomingRequest } from '../../lib/coap';
import { DtlsTransport, type DtlsServerOptions } from '../../lib/dtls';
import { loadCertificates, verifyClientChain } from '../../lib/dtls/credentials';
import { HandshakeFailure } from '../../lib/dtls/failure';
import { parseHandshakeFragments } from '../../lib/dtls/handshake';
import { parseRecords } from '../../lib/dtls/record';
import {
  PeerProcess,
  UdpRelay,
  createTestPki,
  hasBinary,
  run,
  startEchoServer,
  waitFor,
  type EchoServer,
  type TestPki,
} from './helpers';

describe('DTLS ECDHE_ECDSA server (certificates and raw public keys)', function () {
  this.timeout(20000);
  let pki: TestPki;
  /** The SPKI (DER) of the key a raw-key client uses, and the identity it stands for. */
  let deviceSpki: Buffer;

  before(function () {
    if (!hasBinary('openssl')) this.skip();
    pki = createTestPki();
    deviceSpki = createPublicKey(pki.read('client-1.key')).export({ type: 'spki', format: 'der' });
  });
  after(() => pki?.remove());

  function serverOptions(): DtlsServerOptions {
    return {
      // Every suite we implement, the CBC one too (off by default: see psk-interop.test.ts).
      allowCbcSuites: true,
      certificate: { chain: [pki.read('server.pem')], privateKey: pki.read('server.key') },
      trustedCertificates: [pki.read('test-ca.pem')],
      rawPublicKey: { privateKey: pki.read('server.key') },
      clientRawPublicKey: (spki) => (spki.equals(deviceSpki) ? 'rpk-device' : undefined),
    };
  }

  describe('openssl s_client with client certificates', () => {
    let server: EchoServer;

    beforeEach(async () => {
      server = await startEchoServer(serverOptions());
    });
    afterEach(async () => server?.close());

    function sClient(cipher: string, client: string, extra: string[] = []): PeerProcess {
      return new PeerProcess('openssl', [
        's_client',
        '-dtls1_2',
        '-connect',
        `127.0.0.1:${server.port}`,
        '-cipher',
        cipher,
        '-cert',
        pki.path(`${client}.pem`),
        '-key',
        pki.path(`${client}.key`),
        '-CAfile',
        pki.path('test-ca.pem'),
        '-verify_return_error',
        '-ign_eof',
        ...extra,
      ]);
    }

    for (const cipher of ['ECDHE-ECDSA-AES128-CCM8', 'ECDHE-ECDSA-AES128-SHA256', 'ECDHE-ECDSA-AES128-GCM-SHA256']) {
      it(`${cipher}: mutual X.509 authentication, identity = subject CN, echo`, async () => {
        const client = sClient(cipher, 'client-1');
        try {
          await waitFor(() => server.sessions.length === 1 || client.exited, 10000, 'the handshake');
          assert.deepEqual(server.sessions[0]?.security, { mode: 'x509', identity: 'client-1' }, client.output);
          client.write('hello\n');
          await waitFor(() => server.received.length === 1, 10000, 'the line');
          await waitFor(() => /\nhello\n/.test(client.output), 10000, 'the echo');
          assert.match(client.output, /Verify return code: 0 \(ok\)/);
          assert.match(client.output, new RegExp(`Cipher is ${cipher}`));
        } finally {
          await client.stop();
        }
      });
    }

    it('accepts a client certificate issued by an intermediate CA the client sends', async () => {
      const client = sClient('ECDHE-ECDSA-AES128-CCM8', 'client-2', ['-cert_chain', pki.path('intermediate-ca.pem')]);
      try {
        await waitFor(() => server.sessions.length === 1 || client.exited, 10000, 'the handshake');
        assert.deepEqual(server.sessions[0]?.security, { mode: 'x509', identity: 'client-2' }, client.output);
      } finally {
        await client.stop();
      }
    });

    it('fragments a Certificate bigger than the PMTU; no datagram exceeds 1200 bytes', async () => {
      await server.close();
      const bigCertificate = pki.read('big-server.pem');
      assert.ok(loadCertificates([bigCertificate])[0].raw.length > 1500);
      server = await startEchoServer({
        ...serverOptions(),
        certificate: { chain: [bigCertificate], privateKey: pki.read('big-server.key') },
      });
      const relay = new UdpRelay(server.port);
      const relayPort = await relay.start();
      const client = new PeerProcess('openssl', [
        's_client',
        '-dtls1_2',
        '-connect',
        `127.0.0.1:${relayPort}`,
        '-cipher',
        'ECDHE-ECDSA-AES128-CCM8',
        '-cert',
        pki.path('client-1.pem'),
        '-key',
        pki.path('client-1.key'),
        '-CAfile',
        pki.path('test-ca.pem'),
        '-verify_return_error',
      ]);
      try {
        await waitFor(() => server.sessions.length === 1 || client.exited, 10000, 'the handshake');
        assert.deepEqual(server.sessions[0]?.security, { mode: 'x509', identity: 'client-1' }, client.output);
        assert.ok(relay.fromServer.every((datagram) => datagram.length <= 1200));
        const certificateFragments = relay.fromServer
          .flatMap((datagram) => parseRecords(datagram))
          .filter((record) => record.epoch === 0 && record.type === 22)
          .flatMap((record) => parseHandshakeFragments(record.fragment))
          .filter((fragment) => fragment.msgType === 11);
        assert.ok(certificateFragments.length >= 2, 'the Certificate went in several fragments');
        await waitFor(() => /Verify return code/.test(client.output), 10000, 'the client to finish');
        assert.match(client.output, /Verify return code: 0 \(ok\)/);
      } finally {
        await client.stop();
        await relay.close();
      }
    });

    it('rejects a client certificate from an untrusted CA with unknown_ca', async () => {
      const client = sClient('ECDHE-ECDSA-AES128-CCM8', 'rogue-client');
      try {
        await waitFor(() => server.failures.length === 1, 10000, 'the failure');
        assert.match(server.failures[0].reason, /^certificate not trusted: no chain from "rogue-client"/);
        await client.waitForExit();
        assert.match(client.output, /unknown ca/);
        assert.equal(server.transport.sessionCount, 0);
      } finally {
        await client.stop();
      }
    });

    it('refuses a client that sends no certificate', async () => {
      const client = new PeerProcess('openssl', [
        's_client',
        '-dtls1_2',
        '-connect',
        `127.0.0.1:${server.port}`,
        '-cipher',
        'ECDHE-ECDSA-AES128-CCM8',
      ]);
      try {
        await waitFor(() => server.failures.length === 1, 10000, 'the failure');
        assert.equal(server.failures[0].reason, 'client sent no certificate');
      } finally {
        await client.stop();
      }
    });
  });

  describe('libcoap coap-client over coaps', () => {
    let transport: DtlsTransport;
    let endpoint: CoapEndpoint;
    let port: number;
    let requests: IncomingRequest[];
    let failures: string[];

    beforeEach(async () => {
      requests = [];
      failures = [];
      transport = new DtlsTransport({ address: '127.0.0.1', port: 0, ...serverOptions() });
      transport.on('handshakeFailed', (_peer, reason) => failures.push(reason));
      endpoint = new CoapEndpoint(transport, {});
      endpoint.setRequestHandler((request) => {
        requests.push(request);
        return { code: '2.01', locationPath: ['rd', 'reg1'], payload: Buffer.from('created') };
      });
      port = (await endpoint.start()).port;
    });
    afterEach(async () => endpoint?.close());

    const post = (binary: string, credentials: string[]) =>
      run(binary, ['-m', 'post', '-B', '10', ...credentials, `coaps://127.0.0.1:${port}/rd?ep=x&lt=60`]);

    it('coap-client-gnutls with a raw public key (-M): both sides use raw keys', async function () {
      if (!hasBinary('coap-client-gnutls')) this.skip();
      const { code, output } = await post('coap-client-gnutls', ['-M', pki.path('client-1.key')]);
      assert.equal(code, 0, output);
      assert.match(output, /created/);
      assert.deepEqual(requests[0].peer.security, { mode: 'rpk', identity: 'rpk-device' });
    });

    it('coap-client-gnutls with an unknown raw public key is refused', async function () {
      if (!hasBinary('coap-client-gnutls')) this.skip();
      const { output } = await post('coap-client-gnutls', ['-M', pki.path('rogue-client.key'), '-B', '3']);
      assert.equal(requests.length, 0, output);
      assert.deepEqual(failures, ['raw public key not trusted']);
    });

    for (const binary of ['coap-client-gnutls', 'coap-client-openssl']) {
      it(`${binary} with certificates (-c/-j/-C)`, async function () {
        if (!hasBinary(binary)) this.skip();
        const { code, output } = await post(binary, [
          '-c',
          pki.path('client-1.pem'),
          '-j',
          pki.path('client-1.key'),
          '-C',
          pki.path('test-ca.pem'),
        ]);
        assert.equal(code, 0, output);
        assert.match(output, /created/);
        assert.deepEqual(requests[0].peer.security, { mode: 'x509', identity: 'client-1' });
      });
    }
  });

  describe('client chain verification', () => {
    const der = (file: string) => loadCertificates([pki.read(file)])[0].raw;

    it('checks validity dates', () => {
      const trusted = loadCertificates([pki.read('test-ca.pem')]);
      assert.equal(verifyClientChain([der('client-1.pem')], trusted).commonName, 'client-1');
      const inTenDays = new Date(Date.now() + 10 * 86400_000);
      assert.throws(
        () => verifyClientChain([der('client-1.pem')], trusted, inTenDays),
        (err: unknown) => err instanceof HandshakeFailure && /client certificate expired/.test(err.message),
      );
    });

    it('needs the intermediate when the leaf is not issued by a trusted CA', () => {
      const trusted = loadCertificates([pki.read('test-ca.pem')]);
      assert.throws(() => verifyClientChain([der('client-2.pem')], trusted), /certificate not trusted/);
      const chain = [der('client-2.pem'), der('intermediate-ca.pem')];
      assert.equal(verifyClientChain(chain, trusted).commonName, 'client-2');
    });

    it('a leaf certificate may not act as a CA for another', () => {
      const trusted = loadCertificates([pki.read('test-ca.pem')]);
      assert.throws(() => verifyClientChain([der('rogue-client.pem'), der('client-1.pem')], trusted), /not trusted/);
    });

    it('a trusted certificate is accepted as a pinned leaf', () => {
      const pinned = loadCertificates([pki.read('rogue-client.pem')]);
      assert.equal(verifyClientChain([der('rogue-client.pem')], pinned).commonName, 'rogue-client');
    });
  });
});
