import { strict as assert } from 'node:assert';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ResumableSession } from '../../lib/dtls/server-handshake';
import { SessionCache } from '../../lib/dtls/session-cache';
import {
  PSK_IDENTITY,
  PSK_KEY,
  PeerProcess,
  UdpRelay,
  createTestPki,
  hasBinary,
  startEchoServer,
  waitFor,
  type EchoServer,
  type TestPki,
} from './helpers';

const session = (identity: string): ResumableSession => ({
  masterSecret: Buffer.alloc(48),
  suiteId: 0xc0a8,
  extendedMasterSecret: true,
  identity: { mode: 'psk', identity },
  credential: { kind: 'psk', salt: Buffer.alloc(16), fingerprint: Buffer.alloc(32) },
});

describe('DTLS session resumption (RFC 5246 §7.3)', function () {
  this.timeout(20000);

  describe('session cache', () => {
    it('expires entries after their lifetime and evicts the oldest beyond the limit', () => {
      let now = 0;
      const cache = new SessionCache(2, 1000, () => now);
      cache.set(Buffer.from('01', 'hex'), session('a'));
      now = 500;
      cache.set(Buffer.from('02', 'hex'), session('b'));
      assert.equal(cache.get(Buffer.from('01', 'hex'))?.identity.identity, 'a');
      now = 1000;
      assert.equal(cache.get(Buffer.from('01', 'hex')), undefined, 'expired');
      cache.set(Buffer.from('03', 'hex'), session('c'));
      cache.set(Buffer.from('04', 'hex'), session('d'));
      assert.equal(cache.size, 2);
      assert.equal(cache.get(Buffer.from('02', 'hex')), undefined, 'the oldest was evicted');
      now = 1400;
      cache.set(Buffer.from('03', 'hex'), session('c'));
      now = 2200;
      cache.sweep();
      assert.equal(cache.size, 1, '04 expired, 03 was refreshed at 1400');
    });
  });

  describe('with openssl s_client (-sess_out, then -sess_in)', () => {
    let server: EchoServer;
    let dir: string;
    let pki: TestPki;
    let pskKey: Buffer;

    before(function () {
      if (!hasBinary('openssl')) this.skip();
      dir = mkdtempSync(join(tmpdir(), 'dtls-resume-'));
      pki = createTestPki();
    });
    after(() => {
      if (dir !== undefined) rmSync(dir, { recursive: true, force: true });
      pki?.remove();
    });
    beforeEach(() => {
      pskKey = PSK_KEY;
    });
    afterEach(async () => server?.close());

    const startServer = async (sessionResumption = true) => {
      server = await startEchoServer({
        pskKey: (identity) => (identity === PSK_IDENTITY ? pskKey : undefined),
        certificate: { chain: [pki.read('server.pem')], privateKey: pki.read('server.key') },
        trustedCertificates: [pki.read('test-ca.pem')],
        sessionResumption,
      });
    };

    /** One s_client run: handshake, one echoed line, then quit. Returns its output. */
    async function connect(credentials: string[], session: 'out' | 'in', line: string): Promise<string> {
      const client = new PeerProcess('openssl', [
        's_client',
        '-dtls1_2',
        '-connect',
        `127.0.0.1:${server.port}`,
        `-sess_${session}`,
        join(dir, 'session.pem'),
        '-ign_eof',
        ...credentials,
      ]);
      try {
        client.write(line + '\n');
        await waitFor(() => client.output.includes(`\n${line}\n`) || client.exited, 10000, 'the echo');
        return client.output;
      } finally {
        await client.stop();
      }
    }

    const psk = (key: Buffer) => [
      '-psk',
      key.toString('hex'),
      '-psk_identity',
      PSK_IDENTITY,
      '-cipher',
      'PSK-AES128-CCM8',
    ];
    const certificate = () => [
      '-cipher',
      'ECDHE-ECDSA-AES128-CCM8',
      '-cert',
      pki.path('client-1.pem'),
      '-key',
      pki.path('client-1.key'),
      '-CAfile',
      pki.path('test-ca.pem'),
    ];

    it('PSK: the second connection resumes (abbreviated handshake), same identity', async () => {
      await startServer();
      assert.match(await connect(psk(PSK_KEY), 'out', 'first'), /\nNew, /);
      assert.match(await connect(psk(PSK_KEY), 'in', 'second'), /\nReused, /);
      assert.equal(server.transport.stats.handshakesResumed, 1);
      assert.deepEqual(
        server.received.map((r) => [r.data, r.peer.security]),
        [
          ['first\n', { mode: 'psk', identity: PSK_IDENTITY }],
          ['second\n', { mode: 'psk', identity: PSK_IDENTITY }],
        ],
      );
    });

    it('a lost resumption flight (ServerHello, ChangeCipherSpec, Finished) is retransmitted', async () => {
      await startServer();
      assert.match(await connect(psk(PSK_KEY), 'out', 'first'), /\nNew, /);
      const relay = new UdpRelay(server.port);
      let droppedServerHello = false;
      relay.tapFromServer = (datagram) => {
        // The first record's handshake type is at byte 13: drop the first datagram with ServerHello.
        if (droppedServerHello || datagram[0] !== 22 || datagram[13] !== 2) return [datagram];
        droppedServerHello = true;
        return [];
      };
      const client = new PeerProcess('openssl', [
        's_client',
        '-dtls1_2',
        '-connect',
        `127.0.0.1:${await relay.start()}`,
        '-sess_in',
        join(dir, 'session.pem'),
        '-ign_eof',
        ...psk(PSK_KEY),
      ]);
      try {
        client.write('resumed after a loss\n');
        await waitFor(() => client.output.includes('\nresumed after a loss\n'), 10000, 'the echo');
        assert.match(client.output, /\nReused, /);
        assert.ok(droppedServerHello);
        assert.ok(server.transport.stats.retransmissions >= 1);
        assert.equal(server.transport.stats.handshakesResumed, 1);
      } finally {
        await client.stop();
        await relay.close();
      }
    });

    it('ECDHE with certificates: resumes without certificates, identity kept', async () => {
      await startServer();
      assert.match(await connect(certificate(), 'out', 'first'), /\nNew, /);
      assert.match(await connect(certificate(), 'in', 'second'), /\nReused, /);
      assert.deepEqual(server.received[1].peer.security, { mode: 'x509', identity: 'client-1' });
    });

    it('a changed PSK is not bypassed by resumption: a full handshake with the new key', async () => {
      await startServer();
      assert.match(await connect(psk(PSK_KEY), 'out', 'first'), /\nNew, /);
      pskKey = Buffer.from('a new key');
      assert.match(await connect(psk(pskKey), 'in', 'second'), /\nNew, /);
      assert.equal(server.transport.stats.handshakesResumed, 0);
      assert.equal(server.received.length, 2);
    });

    it('closeSession() makes the session unresumable', async () => {
      await startServer();
      const client = new PeerProcess('openssl', [
        's_client',
        '-dtls1_2',
        '-connect',
        `127.0.0.1:${server.port}`,
        '-sess_out',
        join(dir, 'session.pem'),
        '-ign_eof',
        ...psk(PSK_KEY),
      ]);
      try {
        await waitFor(() => server.sessions.length === 1 && /Session-ID: [0-9A-F]{64}/.test(client.output), 10000);
        server.transport.closeSession(server.sessions[0]);
        await client.waitForExit();
      } finally {
        await client.stop();
      }
      assert.match(await connect(psk(PSK_KEY), 'in', 'second'), /\nNew, /);
    });

    it('sessionResumption: false issues no session ID', async () => {
      await startServer(false);
      assert.match(await connect(psk(PSK_KEY), 'out', 'first'), /Session-ID: \n/);
      assert.match(await connect(psk(PSK_KEY), 'in', 'second'), /\nNew, /);
    });
  });
});
