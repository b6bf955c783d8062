import { strict as assert } from 'node:assert';
import { accessSync, constants as fsConstants, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  DtlsTransport,
  MemoryDtlsSessionStore,
  WRITE_SEQUENCE_GAP,
  type DtlsServerOptions,
  type DtlsSessionStore,
  type StoredDtlsConnection,
  type StoredDtlsSession,
} from '../../lib/dtls';
import { ContentType } from '../../lib/dtls/constants';
import { parseRecords } from '../../lib/dtls/record';
import {
  PSK_IDENTITY,
  PSK_KEY,
  PeerProcess,
  UdpRelay,
  createTestPki,
  hasBinary,
  nodeDtlsClient,
  startEchoServer,
  waitFor,
  type EchoServer,
  type TestPki,
} from './helpers';

/** JSON with Buffers revived: what a file or Redis store would write and read back. */
const toJson = (value: unknown): string => JSON.stringify(value);
const fromJson = <T>(text: string): T =>
  JSON.parse(text, (_key, value: unknown) => {
    const buffer = value as { type?: unknown; data?: unknown } | null;
    return buffer !== null && buffer?.type === 'Buffer' && Array.isArray(buffer.data)
      ? Buffer.from(buffer.data)
      : value;
  }) as T;

/**
 * A store that keeps only JSON text and answers with promises, as a file or Redis store would: it
 * proves that what the transport stores is plain data, and that an asynchronous store works.
 */
class JsonStore implements DtlsSessionStore {
  readonly resumable = new Map<string, string>();
  kept: string | undefined;

  async getResumable(id: Buffer): Promise<StoredDtlsSession | undefined> {
    const text = this.resumable.get(id.toString('hex'));
    if (text === undefined) return undefined;
    const { session, expiresAt } = fromJson<{ session: StoredDtlsSession; expiresAt: number }>(text);
    return expiresAt > Date.now() ? session : undefined;
  }

  async setResumable(id: Buffer, session: StoredDtlsSession, expiresAt: number): Promise<void> {
    this.resumable.set(id.toString('hex'), toJson({ session, expiresAt }));
  }

  async deleteResumable(id: Buffer): Promise<void> {
    this.resumable.delete(id.toString('hex'));
  }

  async saveConnections(connections: StoredDtlsConnection[]): Promise<void> {
    this.kept = toJson(connections);
  }

  async takeConnections(): Promise<StoredDtlsConnection[]> {
    const text = this.kept;
    this.kept = undefined;
    return text === undefined ? [] : fromJson<StoredDtlsConnection[]>(text);
  }
}

/** An executable named by an environment variable (see cid.test.ts). */
function peerBinary(variable: string): string | undefined {
  const binary = process.env[variable];
  if (binary === undefined) return undefined;
  try {
    accessSync(binary, fsConstants.X_OK);
    return binary;
  } catch {
    return undefined;
  }
}

type NodeDtlsClient = ReturnType<typeof nodeDtlsClient>;

/** Closes a node-dtls-client socket unless a fatal alert already did (it then emits no 'close'). */
async function closeClient(client: NodeDtlsClient): Promise<void> {
  if ((client.socket as unknown as { _isClosed?: boolean })._isClosed === true) return;
  client.socket.close();
  await client.closed;
}

/** The sequence numbers of the application data records in datagrams (no CIDs). */
function applicationSequences(datagrams: Buffer[]): number[] {
  return datagrams.flatMap((datagram) =>
    parseRecords(datagram)
      .filter((record) => record.type === ContentType.applicationData)
      .map((record) => record.sequence),
  );
}

describe('DTLS sessions kept across a transport restart (close with keepSessions)', function () {
  this.timeout(20000);

  const psk = (key: Buffer) => (identity: string) => (identity === PSK_IDENTITY ? key : undefined);
  const servers: EchoServer[] = [];
  const clients: NodeDtlsClient[] = [];
  const processes: PeerProcess[] = [];
  const relays: UdpRelay[] = [];

  const start = async (options: DtlsServerOptions): Promise<EchoServer> => {
    const server = await startEchoServer(options);
    servers.push(server);
    return server;
  };
  const client = (port: number): NodeDtlsClient => {
    const created = nodeDtlsClient(port, { [PSK_IDENTITY]: PSK_KEY.toString() });
    created.socket.on('error', () => undefined); // a fatal alert after the handshake is an 'error'
    clients.push(created);
    return created;
  };

  afterEach(async () => {
    for (const created of clients.splice(0)) await closeClient(created);
    for (const peer of processes.splice(0)) await peer.stop();
    for (const relay of relays.splice(0)) await relay.close();
    for (const server of servers.splice(0)) await server.close();
  });

  describe('MemoryDtlsSessionStore', () => {
    it('hands the saved connections over once, and a save replaces the one before', async () => {
      const store = new MemoryDtlsSessionStore();
      const stored = { version: 1, address: '10.0.0.1' } as unknown as StoredDtlsConnection;
      await store.saveConnections([stored, stored]);
      await store.saveConnections([stored]);
      assert.equal(store.keptConnectionCount, 1);
      assert.deepEqual(store.takeConnections(), [stored]);
      assert.deepEqual(store.takeConnections(), []);
    });

    it('expires resumable sessions at the time given', () => {
      let now = 1000;
      const store = new MemoryDtlsSessionStore({ now: () => now });
      const session = {} as StoredDtlsSession;
      store.setResumable(Buffer.from('01', 'hex'), session, 2000);
      assert.equal(store.getResumable(Buffer.from('01', 'hex')), session);
      now = 2000;
      assert.equal(store.getResumable(Buffer.from('01', 'hex')), undefined);
      assert.equal(store.resumableCount, 0);
    });
  });

  describe('with node-dtls-client (PSK)', () => {
    it('B adopts A’s session: the next datagram is echoed with no handshake, identity kept', async () => {
      const store = new MemoryDtlsSessionStore();
      const a = await start({ pskKey: psk(PSK_KEY), sessionStore: store });
      const relay = new UdpRelay(a.port);
      relays.push(relay);
      const device = client(await relay.start());
      await device.connected;
      device.socket.send(Buffer.from('before'));
      await waitFor(() => device.messages.length === 1, 5000, 'the first echo');
      const lastFromA = Math.max(...applicationSequences(relay.fromServer));
      const peer = { address: '127.0.0.1', port: relay.upstreamPort };

      await a.transport.close({ keepSessions: true });
      assert.equal(store.keptConnectionCount, 1);
      assert.deepEqual(a.closed, [], 'a kept session is not reported closed');

      // A transport that never started must not overwrite (or take) what A saved.
      const idle = new DtlsTransport({ pskKey: psk(PSK_KEY), sessionStore: store });
      await idle.close({ keepSessions: true });
      assert.equal(store.keptConnectionCount, 1);

      const b = await start({ port: a.port, pskKey: psk(PSK_KEY), sessionStore: store });
      assert.equal(store.keptConnectionCount, 0, 'taken');
      assert.equal(b.transport.stats.sessionsAdopted, 1);
      assert.equal(b.transport.sessionCount, 1);
      assert.equal(b.transport.hasSession(peer), true);

      // The replay window came along: the device's last record to A, sent again, is dropped.
      const lastToA = relay.fromClient.filter((datagram) => datagram[0] === ContentType.applicationData).pop();
      relay.inject(lastToA as Buffer);
      await waitFor(() => b.transport.stats.droppedReplays === 1, 5000, 'the replay dropped');
      assert.equal(b.received.length, 0);

      device.socket.send(Buffer.from('after'));
      await waitFor(() => device.messages.length === 2, 5000, 'the echo from B');
      assert.equal(device.messages[1].toString(), 'after');
      assert.equal(b.transport.stats.handshakesStarted, 0);
      assert.equal(b.transport.stats.helloVerifyRequests, 0);
      assert.deepEqual(b.sessions, [], 'no session event for an adopted session');
      assert.deepEqual(b.received[0].peer.security, { mode: 'psk', identity: PSK_IDENTITY });
      const firstFromB = Math.min(...applicationSequences(relay.fromServer).filter((seq) => seq > lastFromA));
      assert.ok(firstFromB > lastFromA + WRITE_SEQUENCE_GAP, `B writes from ${firstFromB}, A stopped at ${lastFromA}`);

      // The session goes on as any other: closed by the device with close_notify.
      await closeClient(device);
      await waitFor(() => b.closed.length === 1, 5000, 'sessionClosed');
      assert.match(b.closed[0].reason, /close_notify/);
    });

    it('B can send first: the adopted session carries a server-initiated request (no session IDs)', async () => {
      const store = new MemoryDtlsSessionStore();
      const a = await start({ pskKey: psk(PSK_KEY), sessionStore: store, sessionResumption: false });
      const device = client(a.port);
      await device.connected;
      device.socket.send(Buffer.from('hello'));
      await waitFor(() => a.received.length === 1, 5000, 'the first datagram');
      const peer = a.received[0].peer;
      await a.transport.close({ keepSessions: true });
      assert.equal(store.resumableCount, 0);
      const b = await start({ port: a.port, pskKey: psk(PSK_KEY), sessionStore: store, sessionResumption: false });
      b.transport.send(Buffer.from('request from B'), { address: peer.address, port: peer.port });
      await waitFor(() => device.messages.some((m) => m.toString() === 'request from B'), 5000, 'B’s datagram');
      assert.equal(b.transport.stats.handshakesStarted, 0);
      assert.equal(b.transport.stats.sendsWithoutSession, 0);
    });

    for (const [what, newKey, reason] of [
      ['changed', Buffer.from('another key'), /^kept session refused: the PSK of identity "dev1" changed$/],
      ['removed', undefined, /^kept session refused: the PSK of identity "dev1" was removed$/],
    ] as const) {
      it(`a session whose PSK was ${what} meanwhile is refused at first use (access_denied, sessionClosed says why)`, async () => {
        const store = new MemoryDtlsSessionStore();
        const a = await start({ pskKey: psk(PSK_KEY), sessionStore: store });
        const device = client(a.port);
        await device.connected;
        device.socket.send(Buffer.from('before'));
        await waitFor(() => device.messages.length === 1, 5000, 'the first echo');
        await a.transport.close({ keepSessions: true });
        const b = await start({
          port: a.port,
          pskKey: (identity) => (identity === PSK_IDENTITY ? newKey : undefined),
          sessionStore: store,
        });
        assert.equal(b.transport.stats.sessionsAdopted, 1, 'adopted, checked at first use');
        const alert = new Promise<Error>((resolve) => device.socket.once('error', resolve));
        device.socket.send(Buffer.from('after'));
        await waitFor(() => b.closed.length === 1, 5000, 'the refusal');
        assert.match(b.closed[0].reason, reason);
        assert.deepEqual(b.received, [], 'nothing delivered, so nothing echoed');
        assert.match((await alert).message, /access_denied/);
        assert.equal(device.messages.length, 1);
        assert.equal(b.transport.stats.adoptedSessionsRefused, 1);
        assert.equal(b.transport.sessionCount, 0);
        assert.equal(b.transport.hasSession(a.received[0].peer), false);
      });
    }

    it('a fleet: every device’s session is adopted, none handshakes again', async () => {
      const store = new MemoryDtlsSessionStore();
      const a = await start({ pskKey: psk(PSK_KEY), sessionStore: store });
      const fleet = Array.from({ length: 10 }, () => client(a.port));
      await Promise.all(fleet.map((device) => device.connected));
      await a.transport.close({ keepSessions: true });
      const b = await start({ port: a.port, pskKey: psk(PSK_KEY), sessionStore: store });
      assert.equal(b.transport.sessionCount, fleet.length);
      fleet.forEach((device, i) => device.socket.send(Buffer.from(`device ${i}`)));
      await waitFor(() => fleet.every((device) => device.messages.length === 1), 10000, 'every echo');
      fleet.forEach((device, i) => assert.equal(device.messages[0].toString(), `device ${i}`));
      assert.equal(b.transport.stats.handshakesStarted, 0);
      assert.equal(b.transport.stats.sessionsAdopted, fleet.length);
    });

    it('an asynchronous store of JSON text works, and holds no PSK', async () => {
      const store = new JsonStore();
      const a = await start({ pskKey: psk(PSK_KEY), sessionStore: store });
      const device = client(a.port);
      await device.connected;
      device.socket.send(Buffer.from('before'));
      await waitFor(() => device.messages.length === 1, 5000, 'the first echo');
      await a.transport.close({ keepSessions: true });
      const text = store.kept ?? '';
      const [saved] = fromJson<StoredDtlsConnection[]>(text);
      assert.equal(saved.version, 1);
      assert.deepEqual(saved.identity, { mode: 'psk', identity: PSK_IDENTITY });
      assert.equal(saved.credential.kind, 'psk');
      assert.ok(Buffer.isBuffer(saved.keyBlock));
      for (const secret of [PSK_KEY.toString('hex'), JSON.stringify([...PSK_KEY]).slice(1, -1)]) {
        assert.ok(!text.includes(secret), 'the PSK is not in the store');
      }
      assert.ok(store.resumable.size === 1 && ![...store.resumable.values()][0].includes(PSK_KEY.toString('hex')));

      const b = await start({ port: a.port, pskKey: psk(PSK_KEY), sessionStore: store });
      device.socket.send(Buffer.from('after'));
      await waitFor(() => device.messages.length === 2, 5000, 'the echo from B');
      assert.equal(b.transport.stats.handshakesStarted, 0);
    });

    it('default close() is unchanged: close_notify, nothing kept, B adopts nothing', async () => {
      const store = new MemoryDtlsSessionStore();
      const a = await start({ pskKey: psk(PSK_KEY), sessionStore: store });
      const device = client(a.port);
      await device.connected;
      await a.transport.close();
      await waitFor(() => a.closed.length === 1, 5000, 'sessionClosed');
      assert.equal(a.closed[0].reason, 'transport closed');
      assert.equal(store.keptConnectionCount, 0);
      const b = await start({ port: a.port, pskKey: psk(PSK_KEY), sessionStore: store });
      assert.equal(b.transport.sessionCount, 0);
      assert.equal(b.transport.stats.sessionsAdopted, 0);
    });

    it('idle expiry still applies to an adopted session', async () => {
      const store = new MemoryDtlsSessionStore();
      const a = await start({ pskKey: psk(PSK_KEY), sessionStore: store });
      const device = client(a.port);
      await device.connected;
      device.socket.send(Buffer.from('hello'));
      await waitFor(() => a.received.length === 1, 5000, 'the first datagram');
      await a.transport.close({ keepSessions: true });
      const b = await start({ port: a.port, pskKey: psk(PSK_KEY), sessionStore: store, sessionIdleTimeoutMs: 1500 });
      assert.equal(b.transport.stats.sessionsAdopted, 1);
      await waitFor(() => b.closed.length === 1, 10000, 'the idle timeout');
      assert.equal(b.closed[0].reason, 'idle timeout');
      assert.equal(b.transport.sessionCount, 0);
    });

    it('a transport on another port, or with the suite disabled, discards what was kept', async () => {
      const store = new MemoryDtlsSessionStore();
      const a = await start({ pskKey: psk(PSK_KEY), sessionStore: store });
      const device = client(a.port);
      await device.connected;
      await a.transport.close({ keepSessions: true });
      const saved = store.takeConnections();
      await store.saveConnections(saved);
      const elsewhere = await start({ port: 0, pskKey: psk(PSK_KEY), sessionStore: store });
      assert.equal(elsewhere.transport.stats.keptSessionsDiscarded, 1);
      await store.saveConnections(saved);
      const otherSuite = await start({
        port: a.port,
        pskKey: psk(PSK_KEY),
        sessionStore: store,
        cipherSuites: ['TLS_PSK_WITH_AES_128_GCM_SHA256'], // node-dtls-client negotiated CCM_8
      });
      assert.equal(otherSuite.transport.stats.keptSessionsDiscarded, 1);
      assert.equal(otherSuite.transport.sessionCount, 0);
    });
  });

  describe('with openssl s_client', () => {
    let pki: TestPki;
    let dir: string;

    before(function () {
      if (!hasBinary('openssl')) this.skip();
      pki = createTestPki();
      dir = mkdtempSync(join(tmpdir(), 'dtls-keep-'));
    });
    after(() => {
      pki?.remove();
      if (dir !== undefined) rmSync(dir, { recursive: true, force: true });
    });

    const credentials = (): Partial<DtlsServerOptions> => ({
      pskKey: psk(PSK_KEY),
      certificate: { chain: [pki.read('server.pem')], privateKey: pki.read('server.key') },
      trustedCertificates: [pki.read('test-ca.pem')],
    });
    const pskArgs = ['-psk', PSK_KEY.toString('hex'), '-psk_identity', PSK_IDENTITY, '-cipher', 'PSK-AES128-CCM8'];
    const certificateArgs = () => [
      '-cipher',
      'ECDHE-ECDSA-AES128-CCM8',
      '-cert',
      pki.path('client-1.pem'),
      '-key',
      pki.path('client-1.key'),
      '-CAfile',
      pki.path('test-ca.pem'),
    ];
    const sClient = (port: number, args: string[]): PeerProcess => {
      const peer = new PeerProcess('openssl', [
        's_client',
        '-dtls1_2',
        '-connect',
        `127.0.0.1:${port}`,
        '-ign_eof',
        ...args,
      ]);
      processes.push(peer);
      return peer;
    };
    const echoed = (peer: PeerProcess, line: string) =>
      waitFor(() => peer.output.includes(`\n${line}\n`) || peer.exited, 10000, `the echo of ${line}`).then(() =>
        assert.ok(peer.output.includes(`\n${line}\n`), peer.output),
      );

    for (const [mode, args, security] of [
      ['PSK', () => pskArgs, { mode: 'psk', identity: PSK_IDENTITY }],
      ['ECDHE with a certificate', certificateArgs, { mode: 'x509', identity: 'client-1' }],
    ] as const) {
      it(`${mode}: B (keepSessionsOnClose) adopts A’s session, the next line is echoed with no handshake`, async () => {
        const store = new MemoryDtlsSessionStore();
        const a = await start({ ...credentials(), sessionStore: store, keepSessionsOnClose: true });
        const peer = sClient(a.port, args());
        peer.write('first\n');
        await echoed(peer, 'first');
        await a.transport.close(); // keepSessionsOnClose: as a server stopping its endpoint would
        const b = await start({ ...credentials(), port: a.port, sessionStore: store });
        peer.write('second\n');
        await echoed(peer, 'second');
        assert.equal(b.transport.stats.handshakesStarted, 0);
        assert.equal(b.transport.stats.sessionsAdopted, 1);
        assert.deepEqual(b.received[0].peer.security, security);
        assert.ok(!peer.exited);
      });
    }

    it('a certificate no longer trusted is refused at first use (the client gets access_denied)', async () => {
      const store = new MemoryDtlsSessionStore();
      const a = await start({ ...credentials(), sessionStore: store });
      const peer = sClient(a.port, certificateArgs());
      peer.write('first\n');
      await echoed(peer, 'first');
      await a.transport.close({ keepSessions: true });
      const b = await start({
        ...credentials(),
        trustedCertificates: [pki.read('rogue-ca.pem')],
        port: a.port,
        sessionStore: store,
      });
      assert.equal(b.transport.stats.sessionsAdopted, 1);
      peer.write('second\n');
      await waitFor(() => b.closed.length === 1, 10000, 'the refusal');
      assert.match(b.closed[0].reason, /^kept session refused: credentials no longer valid: certificate not trusted/);
      assert.equal(b.received.length, 0);
      await waitFor(() => /access denied/i.test(peer.output), 10000, 'the alert at the client');
    });

    it('resumption by session ID across A -> B (-sess_out with A, -sess_in with B)', async () => {
      const store = new MemoryDtlsSessionStore();
      const sessionFile = join(dir, 'session.pem');
      const a = await start({ ...credentials(), sessionStore: store });
      const first = sClient(a.port, ['-sess_out', sessionFile, ...pskArgs]);
      first.write('first\n');
      await echoed(first, 'first');
      assert.match(first.output, /\nNew, /);
      await first.stop();
      await a.transport.close(); // a plain close: the session can still be resumed
      const b = await start({ ...credentials(), port: a.port, sessionStore: store });
      const second = sClient(b.port, ['-sess_in', sessionFile, ...pskArgs]);
      second.write('second\n');
      await echoed(second, 'second');
      assert.match(second.output, /\nReused, /);
      assert.equal(b.transport.stats.handshakesResumed, 1);
      assert.deepEqual(b.received[0].peer.security, { mode: 'psk', identity: PSK_IDENTITY });
    });
  });

  describe('with an Mbed TLS client and a Connection ID (DTLS_CID_CLIENT)', () => {
    const binary = peerBinary('DTLS_CID_CLIENT');
    const pskHex = '000102030405060708090a0b0c0d0e0f';
    const pskKey = (identity: string) => (identity === 'testclient' ? Buffer.from(pskHex, 'hex') : undefined);

    before(function () {
      if (binary === undefined) this.skip();
    });

    it('the adopted session is found by its CID, even from a new source port', async () => {
      const store = new MemoryDtlsSessionStore();
      const a = await start({ pskKey, sessionStore: store });
      const peer = new PeerProcess(binary as string, [
        '127.0.0.1',
        String(a.port),
        'testclient',
        pskHex,
        'a1b2',
        'ccm8',
      ]);
      processes.push(peer);
      peer.write('40001234\n');
      await waitFor(() => /RECV 40001234/.test(peer.output), 10000, 'the first echo');
      assert.match(peer.output, /cid_negotiated=1/);
      await a.transport.close({ keepSessions: true });
      const b = await start({ port: a.port, pskKey, sessionStore: store });
      const moves: string[] = [];
      b.transport.on('peerMoved', (_previous, current) => moves.push(current.key));
      peer.write('rebind\n40001235\n');
      await waitFor(() => /RECV 40001235/.test(peer.output), 10000, 'the echo from B');
      assert.equal(b.transport.stats.handshakesStarted, 0);
      assert.equal(b.transport.stats.sessionsAdopted, 1);
      assert.equal(moves.length, 1, 'the adopted session followed the new port');
      assert.equal(b.received[0].peer.key, moves[0]);
      peer.write('close\n');
      await peer.waitForExit();
      assert.equal(b.transport.sessionCount, 0);
    });
  });
});
