import { strict as assert } from 'node:assert';
import { randomBytes } from 'node:crypto';
import * as dgram from 'node:dgram';
import { ContentType, HandshakeType } from '../../lib/dtls/constants';
import { encodeHandshakeFragment, parseHandshakeFragments } from '../../lib/dtls/handshake';
import { encodeRecord, parseRecords } from '../../lib/dtls/record';
import { ByteReader } from '../../lib/dtls/bytes';
import {
  PSK_IDENTITY,
  PSK_KEY,
  UdpRelay,
  encodeClientHello,
  nodeDtlsClient,
  startEchoServer,
  waitFor,
  type EchoServer,
} from './helpers';

const pskKey = (identity: string) => (identity === PSK_IDENTITY ? PSK_KEY : undefined);
const psk = { [PSK_IDENTITY]: PSK_KEY.toString() };

/** A ClientHello record, as a client would send it (sequence numbers chosen by the caller). */
function clientHelloDatagram(random: Buffer, cookie: Buffer, recordSequence: number, messageSeq: number): Buffer {
  const body = encodeClientHello({ cipherSuites: [0xc0a8], cookie, random });
  return encodeRecord(
    ContentType.handshake,
    0,
    recordSequence,
    encodeHandshakeFragment(HandshakeType.clientHello, body.length, messageSeq, 0, body),
  );
}

/** The cookie in a HelloVerifyRequest datagram. */
function cookieOf(datagram: Buffer): Buffer {
  const [record] = parseRecords(datagram);
  const [fragment] = parseHandshakeFragments(record.fragment);
  assert.equal(fragment.msgType, HandshakeType.helloVerifyRequest);
  const reader = new ByteReader(fragment.fragment);
  reader.uint16();
  return reader.vector(1);
}

function udpSocket(): Promise<dgram.Socket> {
  const socket = dgram.createSocket('udp4');
  return new Promise((resolve) => socket.bind(0, '127.0.0.1', () => resolve(socket)));
}

function closeSocket(socket: dgram.Socket): Promise<void> {
  return new Promise((resolve) => socket.close(() => resolve()));
}

describe('DTLS server: hostile and broken peers', function () {
  this.timeout(20000);
  let server: EchoServer;
  let relay: UdpRelay | undefined;

  afterEach(async () => {
    await relay?.close();
    relay = undefined;
    await server?.close();
  });

  it('drops a replayed application record and a tampered one; the session survives both', async () => {
    server = await startEchoServer({ pskKey });
    relay = new UdpRelay(server.port);
    const client = nodeDtlsClient(await relay.start(), psk);
    await client.connected;
    client.socket.send(Buffer.from('one'));
    await waitFor(() => client.messages.length === 1, 5000, 'echo of one');
    const recorded = relay.fromClient[relay.fromClient.length - 1];
    assert.equal(recorded[0], ContentType.applicationData);
    relay.inject(recorded);
    let tamper = true;
    relay.tap = (datagram) => {
      if (!tamper || datagram[0] !== ContentType.applicationData) return [datagram];
      tamper = false;
      const tampered = Buffer.from(datagram);
      tampered[tampered.length - 3] ^= 0x40;
      return [tampered];
    };
    client.socket.send(Buffer.from('lost to tampering'));
    client.socket.send(Buffer.from('two'));
    await waitFor(() => client.messages.length === 2, 5000, 'echo of two');
    assert.deepEqual(
      server.received.map((r) => r.data),
      ['one', 'two'],
    );
    assert.equal(server.transport.stats.droppedReplays, 1);
    assert.equal(server.transport.stats.droppedBadMac, 1);
    assert.equal(server.transport.sessionCount, 1);
    client.socket.close();
    await client.closed;
  });

  it('survives mutated handshake and application datagrams: nothing throws, the session keeps working', async () => {
    const errors: Error[] = [];
    server = await startEchoServer({ pskKey, onError: (err) => errors.push(err) });
    relay = new UdpRelay(server.port);
    const client = nodeDtlsClient(await relay.start(), psk);
    await client.connected;
    client.socket.send(Buffer.from('before'));
    await waitFor(() => client.messages.length === 1, 5000, 'the first echo');
    const samples = [...relay.fromClient];
    let seed = 12345;
    const random = (n: number) => {
      seed = (seed * 1103515245 + 12345) & 0x7fffffff;
      return seed % n;
    };
    for (let i = 0; i < 3000; i++) {
      const mutated = Buffer.from(samples[random(samples.length)]);
      for (let flips = 1 + random(4); flips > 0; flips--) mutated[random(mutated.length)] = random(256);
      const cut = random(4) === 0 ? random(mutated.length) : mutated.length;
      relay.inject(mutated.subarray(0, cut));
      if (i % 100 === 99) await new Promise((resolve) => setImmediate(resolve));
    }
    client.socket.send(Buffer.from('after'));
    await waitFor(() => client.messages.length === 2, 5000, 'the echo after the storm');
    assert.deepEqual(errors, []);
    client.socket.close();
    await client.closed;
  });

  it('a ClientHello flood without cookies leaves no state, and no answer is bigger than the hello', async () => {
    server = await startEchoServer({ pskKey, recvBufferSize: 1 << 20 });
    const socket = await udpSocket();
    const answers: Buffer[] = [];
    socket.on('message', (datagram) => answers.push(datagram));
    const hello = clientHelloDatagram(randomBytes(32), Buffer.alloc(0), 0, 0);
    const batches = 20;
    const batchSize = 25;
    try {
      // In batches, so that loopback does not drop datagrams (that would not be the server's doing).
      for (let batch = 0; batch < batches; batch++) {
        for (let i = 0; i < batchSize; i++) {
          const sequence = batch * batchSize + i;
          socket.send(clientHelloDatagram(randomBytes(32), Buffer.alloc(0), sequence, 0), server.port, '127.0.0.1');
          socket.send(randomBytes(i * 2), server.port, '127.0.0.1');
        }
        const expected = (batch + 1) * batchSize;
        await waitFor(() => server.transport.stats.helloVerifyRequests === expected, 5000, 'HelloVerifyRequests');
      }
      const count = batches * batchSize;
      assert.equal(server.transport.handshakeCount, 0);
      assert.equal(server.transport.sessionCount, 0);
      assert.equal(server.transport.stats.handshakesStarted, 0);
      await waitFor(() => answers.length === count, 5000, 'the answers');
      assert.ok(answers.every((answer) => answer.length <= hello.length));
    } finally {
      await closeSocket(socket);
    }
  });

  it('answers a ClientHello in a {254, 0} record (Mbed TLS 2.x) and starts the handshake on its cookie', async () => {
    server = await startEchoServer({ pskKey });
    const socket = await udpSocket();
    const answers: Buffer[] = [];
    socket.on('message', (datagram) => answers.push(datagram));
    const mbedtls2 = (datagram: Buffer) => {
      datagram.writeUInt16BE(0xfe00, 1);
      return datagram;
    };
    try {
      const random = randomBytes(32);
      socket.send(mbedtls2(clientHelloDatagram(random, Buffer.alloc(0), 0, 0)), server.port, '127.0.0.1');
      await waitFor(() => answers.length === 1, 5000, 'the HelloVerifyRequest');
      socket.send(mbedtls2(clientHelloDatagram(random, cookieOf(answers[0]), 1, 1)), server.port, '127.0.0.1');
      await waitFor(() => answers.length === 2, 5000, 'the ServerHello flight');
      assert.deepEqual(
        parseRecords(answers[1]).map((r) => [r.version, r.fragment[0]]),
        [
          [0xfefd, HandshakeType.serverHello],
          [0xfefd, HandshakeType.serverHelloDone],
        ],
      );
      assert.equal(server.transport.handshakeCount, 1);
    } finally {
      await closeSocket(socket);
    }
  });

  /** Completes the cookie exchange from each socket in turn: each then holds a half-open handshake. */
  async function halfOpenFrom(sockets: dgram.Socket[]): Promise<void> {
    for (const socket of sockets) {
      const random = randomBytes(32);
      const verify = new Promise<Buffer>((resolve) => socket.once('message', resolve));
      socket.send(clientHelloDatagram(random, Buffer.alloc(0), 0, 0), server.port, '127.0.0.1');
      const cookie = cookieOf(await verify);
      const flight = new Promise<Buffer>((resolve) => socket.once('message', resolve));
      socket.send(clientHelloDatagram(random, cookie, 1, 1), server.port, '127.0.0.1');
      await flight; // the ServerHello: the handshake is in progress
    }
  }

  it('caps half-open handshakes per source address: the oldest is evicted, none refused', async () => {
    server = await startEchoServer({ pskKey, maxHandshakesPerAddress: 3 });
    const sockets = await Promise.all(Array.from({ length: 6 }, () => udpSocket()));
    try {
      await halfOpenFrom(sockets);
      assert.equal(server.transport.handshakeCount, 3);
      assert.equal(server.transport.stats.handshakesStarted, 6);
      assert.equal(server.transport.stats.handshakesEvicted, 3);
      assert.equal(server.transport.stats.handshakesRefused, 0);
      const ports = sockets.map((socket) => socket.address().port);
      assert.deepEqual(
        server.failures.map((failure) => [failure.peer.port, failure.reason]),
        ports.slice(0, 3).map((port) => [port, server.failures[0].reason]),
        'the three oldest, in order',
      );
      assert.match(server.failures[0].reason, /^evicted by newer handshakes/);
    } finally {
      await Promise.all(sockets.map(closeSocket));
    }
  });

  it('caps half-open handshakes in total (maxHandshakes) the same way', async () => {
    server = await startEchoServer({ pskKey, maxHandshakesPerAddress: 100, maxHandshakes: 2 });
    const sockets = await Promise.all(Array.from({ length: 5 }, () => udpSocket()));
    try {
      await halfOpenFrom(sockets);
      assert.equal(server.transport.handshakeCount, 2);
      assert.equal(server.transport.stats.handshakesEvicted, 3);
      assert.deepEqual(
        server.failures.map((failure) => failure.peer.port),
        sockets.slice(0, 3).map((socket) => socket.address().port),
      );
    } finally {
      await Promise.all(sockets.map(closeSocket));
    }
  });

  it('established sessions are never evicted by half-open ones; only maxSessions refuses a handshake', async () => {
    server = await startEchoServer({ pskKey, maxHandshakesPerAddress: 1, maxHandshakes: 1, maxSessions: 1 });
    const client = nodeDtlsClient(server.port, psk);
    await client.connected;
    const sockets = await Promise.all(Array.from({ length: 2 }, () => udpSocket()));
    try {
      for (const socket of sockets) {
        const random = randomBytes(32);
        const verify = new Promise<Buffer>((resolve) => socket.once('message', resolve));
        socket.send(clientHelloDatagram(random, Buffer.alloc(0), 0, 0), server.port, '127.0.0.1');
        socket.send(clientHelloDatagram(random, cookieOf(await verify), 1, 1), server.port, '127.0.0.1');
      }
      await waitFor(() => server.transport.stats.handshakesRefused === 2, 5000, 'both refused');
      assert.equal(server.transport.sessionCount, 1);
      assert.equal(server.transport.handshakeCount, 0);
      assert.equal(server.transport.stats.dropped['handshake-refused'], 2);
      client.socket.send(Buffer.from('still served'));
      await waitFor(() => client.messages.length === 1, 5000, 'the echo');
    } finally {
      await Promise.all(sockets.map(closeSocket));
      client.socket.close();
      await client.closed;
    }
  });

  it('a handshake that stalls is dropped after handshakeTimeoutMs, freeing its slot', async () => {
    server = await startEchoServer({ pskKey, handshakeTimeoutMs: 200 });
    const socket = await udpSocket();
    try {
      const random = randomBytes(32);
      const verify = new Promise<Buffer>((resolve) => socket.once('message', resolve));
      socket.send(clientHelloDatagram(random, Buffer.alloc(0), 0, 0), server.port, '127.0.0.1');
      socket.send(clientHelloDatagram(random, cookieOf(await verify), 1, 1), server.port, '127.0.0.1');
      await waitFor(() => server.failures.length === 1, 5000, 'the timeout');
      assert.equal(server.failures[0].reason, 'handshake timed out');
      assert.equal(server.transport.handshakeCount, 0);
    } finally {
      await closeSocket(socket);
    }
  });

  it('retransmits its flight, with fresh record numbers, on a repeated ClientHello and on its timer', async () => {
    server = await startEchoServer({ pskKey });
    const socket = await udpSocket();
    const flights: Buffer[] = [];
    try {
      const random = randomBytes(32);
      const verify = new Promise<Buffer>((resolve) => socket.once('message', resolve));
      socket.send(clientHelloDatagram(random, Buffer.alloc(0), 0, 0), server.port, '127.0.0.1');
      const cookie = cookieOf(await verify);
      socket.on('message', (datagram) => flights.push(datagram));
      socket.send(clientHelloDatagram(random, cookie, 1, 1), server.port, '127.0.0.1');
      await waitFor(() => flights.length === 1, 5000, 'the first flight');
      socket.send(clientHelloDatagram(random, cookie, 2, 1), server.port, '127.0.0.1');
      await waitFor(() => flights.length === 2, 5000, 'the flight again');
      await waitFor(() => flights.length === 3, 5000, 'the timer retransmission');
      const types = flights.map((datagram) => parseRecords(datagram).map((r) => r.fragment[0]));
      assert.deepEqual(types, [
        [HandshakeType.serverHello, HandshakeType.serverHelloDone],
        [HandshakeType.serverHello, HandshakeType.serverHelloDone],
        [HandshakeType.serverHello, HandshakeType.serverHelloDone],
      ]);
      const sequences = flights.flatMap((datagram) => parseRecords(datagram).map((r) => r.sequence));
      assert.deepEqual(sequences, [1, 2, 3, 4, 5, 6], 'continuing from the ClientHello record number');
      assert.equal(server.transport.stats.retransmissions, 2);
      assert.equal(server.transport.handshakeCount, 1);
    } finally {
      await closeSocket(socket);
    }
  });

  it('a late duplicate of the ClientHello does not disturb the established session', async () => {
    server = await startEchoServer({ pskKey });
    relay = new UdpRelay(server.port);
    const client = nodeDtlsClient(await relay.start(), psk);
    await client.connected;
    const helloWithCookie = relay.fromClient[1];
    assert.equal(helloWithCookie[13], HandshakeType.clientHello);
    relay.inject(helloWithCookie);
    client.socket.send(Buffer.from('still here'));
    await waitFor(() => client.messages.length === 1, 5000, 'the echo');
    assert.deepEqual(server.closed, []);
    assert.equal(server.sessions.length, 1);
    client.socket.close();
    await client.closed;
  });

  it('a client that restarts (new ClientHello from the same address and port) gets a new session', async () => {
    server = await startEchoServer({ pskKey });
    relay = new UdpRelay(server.port);
    const relayPort = await relay.start();
    const first = nodeDtlsClient(relayPort, psk);
    await first.connected;
    first.socket.send(Buffer.from('before restart'));
    await waitFor(() => first.messages.length === 1, 5000, 'first echo');
    // The first client vanishes without close_notify; the second one comes from the same address:port.
    relay.tap = (datagram) => (datagram[0] === ContentType.alert ? [] : [datagram]);
    first.socket.close();
    await first.closed;
    const second = nodeDtlsClient(relayPort, psk);
    await second.connected;
    second.socket.send(Buffer.from('after restart'));
    await waitFor(() => second.messages.length === 1, 5000, 'second echo');
    assert.equal(server.sessions.length, 2);
    assert.equal(server.sessions[0].key, server.sessions[1].key);
    assert.deepEqual(
      server.closed.map((c) => c.reason),
      ['client started a new handshake'],
    );
    assert.equal(server.transport.sessionCount, 1);
    relay.tap = undefined;
    second.socket.close();
    await second.closed;
  });

  it('closeSession sends close_notify; send without a session is dropped and counted', async () => {
    server = await startEchoServer({ pskKey });
    const client = nodeDtlsClient(server.port, psk);
    await client.connected;
    const peer = server.sessions[0];
    assert.ok(server.transport.hasSession(peer));
    assert.ok(server.transport.closeSession(peer));
    await client.closed;
    assert.equal(server.transport.hasSession(peer), false);
    assert.deepEqual(server.closed[0].reason, 'closed locally');
    server.transport.send(Buffer.from('nobody listens'), peer);
    assert.equal(server.transport.stats.sendsWithoutSession, 1);
  });

  it('an idle session expires after sessionIdleTimeoutMs', async () => {
    server = await startEchoServer({ pskKey, sessionIdleTimeoutMs: 100 });
    const client = nodeDtlsClient(server.port, psk);
    await client.connected;
    await waitFor(() => server.closed.length === 1, 5000, 'the expiry');
    assert.equal(server.closed[0].reason, 'idle timeout');
    assert.equal(server.transport.sessionCount, 0);
    client.socket.close();
    await client.closed;
  });
});
