import { strict as assert } from 'node:assert';
import { CoapEndpoint, type IncomingRequest } from '../../lib/coap';
import { DtlsTransport } from '../../lib/dtls';
import {
  PSK_IDENTITY,
  PSK_KEY,
  UdpRelay,
  hasBinary,
  nodeDtlsClient,
  opensslPskClient,
  run,
  startEchoServer,
  waitFor,
  type EchoServer,
} from './helpers';

const pskKey = (identity: string) => (identity === PSK_IDENTITY ? PSK_KEY : undefined);

describe('DTLS PSK server with peers we did not write', function () {
  this.timeout(20000);

  describe('openssl s_client', () => {
    let server: EchoServer;

    before(function () {
      if (!hasBinary('openssl')) this.skip();
    });
    beforeEach(async () => {
      server = await startEchoServer({ pskKey });
    });
    afterEach(async () => server?.close());

    for (const cipher of ['PSK-AES128-CCM8', 'PSK-AES128-CBC-SHA256', 'PSK-AES128-GCM-SHA256']) {
      it(`handshakes with ${cipher} and echoes a line`, async () => {
        if (cipher.includes('CBC')) {
          await server.close();
          server = await startEchoServer({ pskKey, allowCbcSuites: true });
        }
        const client = opensslPskClient(server.port, { cipher, extra: ['-ign_eof'] });
        try {
          await waitFor(() => server.sessions.length === 1 || client.exited, 10000, 'the handshake');
          assert.deepEqual(server.sessions[0]?.security, { mode: 'psk', identity: PSK_IDENTITY }, client.output);
          const line = `hello over ${cipher}`;
          client.write(line + '\n');
          await waitFor(() => client.output.includes(line), 10000, 'the echo');
          assert.equal(server.received[0].data, line + '\n');
          assert.deepEqual(server.received[0].peer.security, { mode: 'psk', identity: PSK_IDENTITY });
          assert.match(client.output, new RegExp(`Cipher is ${cipher}`));
        } finally {
          await client.stop();
        }
      });
    }

    it('CBC suites are off by default: a client offering only CBC gets handshake_failure', async () => {
      const client = opensslPskClient(server.port, { cipher: 'PSK-AES128-CBC-SHA256' });
      try {
        await waitFor(() => server.failures.length === 1, 10000, 'the failure');
        assert.match(server.failures[0].reason, /^no cipher suite in common \(client offered .*0x00ae/);
        await client.waitForExit();
        assert.match(client.output, /alert handshake failure/);
        assert.equal(server.transport.sessionCount, 0);
      } finally {
        await client.stop();
      }
    });

    it('a wrong key fails the handshake with decrypt_error, and the event says why', async () => {
      const client = opensslPskClient(server.port, { key: 'deadbeef' });
      try {
        await waitFor(() => server.failures.length === 1, 10000, 'the failure');
        assert.equal(server.failures[0].reason, 'bad record MAC / wrong key');
        await client.waitForExit();
        assert.match(client.output, /alert decrypt error/);
        assert.equal(server.transport.sessionCount, 0);
        assert.equal(server.transport.handshakeCount, 0);
      } finally {
        await client.stop();
      }
    });
  });

  describe('openssl s_client: lost flights and renegotiation', () => {
    let server: EchoServer;
    let relay: UdpRelay;

    before(function () {
      if (!hasBinary('openssl')) this.skip();
    });
    beforeEach(async () => {
      server = await startEchoServer({ pskKey });
      relay = new UdpRelay(server.port);
    });
    afterEach(async () => {
      await relay?.close();
      await server?.close();
    });

    it('our first flight is lost: the retransmission timer resends it', async () => {
      let droppedServerHello = false;
      relay.tapFromServer = (datagram) => {
        // The first record's handshake type is at byte 13: drop the first datagram with ServerHello.
        if (droppedServerHello || datagram[0] !== 22 || datagram[13] !== 2) return [datagram];
        droppedServerHello = true;
        return [];
      };
      const client = opensslPskClient(await relay.start(), { extra: ['-ign_eof'] });
      try {
        await waitFor(() => server.sessions.length === 1, 10000, 'the handshake');
        assert.ok(server.transport.stats.retransmissions >= 1);
        client.write('after a lost flight\n');
        await waitFor(() => client.output.includes('after a lost flight'), 10000, 'the echo');
      } finally {
        await client.stop();
      }
    });

    it('our last flight (ChangeCipherSpec, Finished) is lost: the client retransmits, we answer again', async () => {
      let droppedFinished = false;
      relay.tapFromServer = (datagram) => {
        // Our last flight is the one datagram that starts with ChangeCipherSpec.
        if (droppedFinished || datagram[0] !== 20) return [datagram];
        droppedFinished = true;
        return [];
      };
      const client = opensslPskClient(await relay.start(), { extra: ['-ign_eof'] });
      try {
        await waitFor(() => server.sessions.length === 1, 10000, 'the handshake');
        client.write('after a lost Finished\n');
        await waitFor(() => client.output.includes('after a lost Finished'), 10000, 'the echo');
        assert.ok(server.transport.stats.retransmissions >= 1);
        assert.equal(server.sessions.length, 1);
      } finally {
        await client.stop();
      }
    });

    it('refuses renegotiation with no_renegotiation', async () => {
      const client = opensslPskClient(server.port);
      try {
        await waitFor(() => server.sessions.length === 1, 10000, 'the handshake');
        client.write('R\n'); // s_client's interactive "renegotiate" command
        await waitFor(() => /no renegotiation/.test(client.output) || client.exited, 10000, 'the refusal');
        assert.match(client.output, /no renegotiation/);
        assert.equal(server.sessions.length, 1, 'no second handshake');
      } finally {
        await client.stop();
      }
    });
  });

  describe('node-dtls-client 1.1.1', () => {
    let server: EchoServer;

    beforeEach(async () => {
      server = await startEchoServer({ pskKey });
    });
    afterEach(async () => server?.close());

    for (const cipher of [
      'TLS_PSK_WITH_AES_128_CCM_8',
      'TLS_PSK_WITH_AES_128_CBC_SHA256',
      'TLS_PSK_WITH_AES_128_GCM_SHA256',
    ]) {
      it(`handshakes with ${cipher}, echoes, and closes with close_notify`, async () => {
        if (cipher.includes('CBC')) {
          await server.close();
          server = await startEchoServer({ pskKey, allowCbcSuites: true });
        }
        const client = nodeDtlsClient(server.port, { [PSK_IDENTITY]: PSK_KEY.toString() }, { ciphers: [cipher] });
        await client.connected;
        client.socket.send(Buffer.from('ping'));
        await waitFor(() => client.messages.length === 1, 5000, 'the echo');
        assert.equal(client.messages[0].toString(), 'ping');
        assert.deepEqual(server.received[0].peer.security, { mode: 'psk', identity: PSK_IDENTITY });
        client.socket.close();
        await client.closed;
        await waitFor(() => server.closed.length === 1, 5000, 'sessionClosed');
        assert.match(server.closed[0].reason, /close_notify/);
        assert.equal(server.transport.sessionCount, 0);
      });
    }

    it('an unknown identity fails exactly like a wrong key for the client; the event names the identity', async () => {
      const unknown = nodeDtlsClient(server.port, { nobody: PSK_KEY.toString() });
      const unknownError = await unknown.connected.then(
        () => undefined,
        (err: Error) => err,
      );
      const wrong = nodeDtlsClient(server.port, { [PSK_IDENTITY]: 'not the key' });
      const wrongError = await wrong.connected.then(
        () => undefined,
        (err: Error) => err,
      );
      // node-dtls-client closes its socket after a fatal alert without emitting 'close'.
      assert.ok(unknownError && wrongError, 'both handshakes fail');
      assert.equal(unknownError.message, wrongError.message, 'the client cannot tell them apart');
      assert.deepEqual(
        server.failures.map((failure) => failure.reason),
        ['unknown PSK identity "nobody"', 'bad record MAC / wrong key'],
      );
    });

    it('an async key lookup works (records arriving meanwhile wait their turn)', async () => {
      await server.close();
      server = await startEchoServer({
        pskKey: async (identity) => {
          await new Promise((resolve) => setTimeout(resolve, 20));
          return pskKey(identity);
        },
      });
      const client = nodeDtlsClient(server.port, { [PSK_IDENTITY]: PSK_KEY.toString() });
      await client.connected;
      client.socket.send(Buffer.from('after an async lookup'));
      await waitFor(() => client.messages.length === 1, 5000, 'the echo');
      client.socket.close();
      await client.closed;
    });
  });

  it('naming a CBC suite in cipherSuites without allowCbcSuites is a configuration error', () => {
    assert.throws(
      () => new DtlsTransport({ pskKey, cipherSuites: ['TLS_PSK_WITH_AES_128_CBC_SHA256'] }),
      /TLS_PSK_WITH_AES_128_CBC_SHA256 is a CBC suite: set allowCbcSuites/,
    );
    assert.doesNotThrow(
      () => new DtlsTransport({ pskKey, cipherSuites: ['TLS_PSK_WITH_AES_128_CBC_SHA256'], allowCbcSuites: true }),
    );
  });

  it('binds dual-stack by default: IPv4 peers appear as plain IPv4, IPv6 peers as [addr]:port', async function () {
    const transport = new DtlsTransport({ port: 0, pskKey });
    const peers: string[] = [];
    transport.on('session', (peer) => peers.push(peer.key));
    const { address, port } = await transport.start();
    try {
      if (address !== '::') this.skip(); // no IPv6 here: UdpTransport fell back to 0.0.0.0
      const v4 = nodeDtlsClient(port, { [PSK_IDENTITY]: PSK_KEY.toString() });
      await v4.connected;
      v4.socket.close();
      await v4.closed;
      const v6 = nodeDtlsClient(port, { [PSK_IDENTITY]: PSK_KEY.toString() }, { address: '::1' });
      await v6.connected;
      v6.socket.close();
      await v6.closed;
      assert.match(peers[0], /^127\.0\.0\.1:\d+$/);
      assert.match(peers[1], /^\[::1\]:\d+$/);
    } finally {
      await transport.close();
    }
  });

  describe('CoAP over DTLS with libcoap coap-client', () => {
    let transport: DtlsTransport;
    let endpoint: CoapEndpoint;
    let port: number;
    let requests: IncomingRequest[];

    beforeEach(async () => {
      requests = [];
      transport = new DtlsTransport({ address: '127.0.0.1', port: 0, pskKey });
      endpoint = new CoapEndpoint(transport, {});
      endpoint.setRequestHandler((request) => {
        requests.push(request);
        return { code: '2.01', locationPath: ['rd', 'reg1'], payload: Buffer.from('created') };
      });
      port = (await endpoint.start()).port;
    });
    afterEach(async () => endpoint?.close());

    for (const binary of ['coap-client-openssl', 'coap-client-gnutls']) {
      it(`${binary}: POST /rd over coaps gets 2.01, the handler sees the PSK identity`, async function () {
        if (!hasBinary(binary)) this.skip();
        const { code, output } = await run(binary, [
          '-m',
          'post',
          '-B',
          '10',
          '-k',
          PSK_KEY.toString(),
          '-u',
          PSK_IDENTITY,
          `coaps://127.0.0.1:${port}/rd?ep=x&lt=60`,
        ]);
        assert.equal(code, 0, output);
        assert.match(output, /created/);
        assert.equal(requests.length, 1);
        assert.deepEqual(requests[0].pathSegments, ['rd']);
        assert.deepEqual(requests[0].query, ['ep=x', 'lt=60']);
        assert.deepEqual(requests[0].peer.security, { mode: 'psk', identity: PSK_IDENTITY });
      });
    }
  });
});
