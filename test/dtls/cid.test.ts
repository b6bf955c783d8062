import { strict as assert } from 'node:assert';
import { createCipheriv, generateKeyPairSync, randomBytes } from 'node:crypto';
import * as dgram from 'node:dgram';
import { accessSync, constants as fsConstants, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { additionalData, connectionKeys, keyBlockLength } from '../../lib/dtls/cipher';
import { ContentType, DTLS_1_2 } from '../../lib/dtls/constants';
import { decodeInnerPlaintext, encodeInnerPlaintext, encodeRecord, parseRecords } from '../../lib/dtls/record';
import { PeerProcess, UdpRelay, startEchoServer, waitFor, type EchoServer } from './helpers';

/** An executable named by an environment variable (peers built from fetched source, not in Debian). */
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

describe('DTLS Connection ID (RFC 9146)', function () {
  this.timeout(20000);

  describe('record format', () => {
    it('parses a tls12_cid record header (the CID length is ours to know)', () => {
      // Header of an Mbed TLS 3.6.6 application record to a server whose CID is c1d2c3d4.
      const header = Buffer.from('19fefd0001000000000001c1d2c3d40020', 'hex');
      const [record] = parseRecords(Buffer.concat([header, Buffer.alloc(0x20, 0xee)]), 4);
      assert.equal(record.type, ContentType.tls12Cid);
      assert.equal(record.epoch, 1);
      assert.equal(record.sequence, 1);
      assert.equal(record.cid?.toString('hex'), 'c1d2c3d4');
      assert.equal(record.fragment.length, 0x20);
    });

    it('encodes the CID between sequence number and length', () => {
      const record = encodeRecord(ContentType.tls12Cid, 1, 2, Buffer.from('ab'), Buffer.from('0102', 'hex'));
      assert.equal(record.toString('hex'), '19fefd0001000000000002' + '0102' + '0002' + '6162');
      assert.equal(parseRecords(record, 2)[0].fragment.toString(), 'ab');
      assert.deepEqual(parseRecords(record, 0), [], 'no CID of ours: not parsable');
    });

    it('inner plaintext: content, real type, zero padding stripped', () => {
      assert.deepEqual(encodeInnerPlaintext(23, Buffer.from('hi')), Buffer.from([0x68, 0x69, 23]));
      const padded = Buffer.concat([Buffer.from([0x40, 0, 0x12, 0x34, 23]), Buffer.alloc(11)]);
      assert.deepEqual(decodeInnerPlaintext(padded), { type: 23, content: Buffer.from([0x40, 0, 0x12, 0x34]) });
      assert.equal(decodeInnerPlaintext(Buffer.alloc(16)), undefined);
    });

    it('additional data follows RFC 9146 §5 (placeholder, tls12_cid, cid_length, tls12_cid, ...)', () => {
      const context = { type: 25, version: DTLS_1_2, epoch: 1, sequence: 5, cid: Buffer.from('c1d2c3d4', 'hex') };
      assert.equal(
        additionalData(context, 16).toString('hex'),
        'ffffffffffffffff' + '19' + '04' + '19' + 'fefd' + '0001' + '000000000005' + 'c1d2c3d4' + '0010',
      );
    });

    it('CCM_8 with a CID matches an independent encryption with the RFC 9146 additional data', () => {
      const block = randomBytes(keyBlockLength('aes-128-ccm8'));
      const keys = connectionKeys('aes-128-ccm8', block);
      const cid = Buffer.from('a1b2', 'hex');
      const inner = encodeInnerPlaintext(ContentType.applicationData, Buffer.from('40001234', 'hex'));
      const context = { type: ContentType.tls12Cid, version: DTLS_1_2, epoch: 1, sequence: 9, cid };
      const fragment = keys.server.encrypt(context, inner);
      // server_write_key is the second 16 bytes, server_write_IV (salt) the last 4.
      const explicitNonce = Buffer.from('0001000000000009', 'hex');
      const cipher = createCipheriv(
        'aes-128-ccm',
        block.subarray(16, 32),
        Buffer.concat([block.subarray(36, 40), explicitNonce]),
        {
          authTagLength: 8,
        },
      );
      const aad = Buffer.concat([
        Buffer.alloc(8, 0xff),
        Buffer.from([25, cid.length, 25]),
        Buffer.from('fefd0001000000000009', 'hex'),
        cid,
        Buffer.from([0, inner.length]),
      ]);
      cipher.setAAD(aad, { plaintextLength: inner.length });
      const expected = Buffer.concat([explicitNonce, cipher.update(inner), cipher.final(), cipher.getAuthTag()]);
      assert.deepEqual(fragment, expected);
      assert.deepEqual(keys.server.decrypt(context, fragment), inner);
      assert.equal(keys.server.decrypt({ ...context, cid: Buffer.from('a1b3', 'hex') }, fragment), undefined);
    });
  });

  /**
   * Against Mbed TLS 3.6.6 (`cid_client` built from fetched source, see the lead's notes): not in
   * Debian, so run only when DTLS_CID_CLIENT points at the binary.
   */
  describe('with an Mbed TLS client (DTLS_CID_CLIENT)', () => {
    const binary = peerBinary('DTLS_CID_CLIENT');
    const pskHex = '000102030405060708090a0b0c0d0e0f';
    let server: EchoServer;
    let relay: UdpRelay | undefined;
    const moves: Array<[string, string]> = [];

    before(function () {
      if (binary === undefined) this.skip();
    });
    beforeEach(async () => {
      moves.length = 0;
      server = await startEchoServer({
        pskKey: (identity) => (identity === 'testclient' ? Buffer.from(pskHex, 'hex') : undefined),
      });
      server.transport.on('peerMoved', (previous, current) => moves.push([previous.key, current.key]));
    });
    afterEach(async () => {
      await relay?.close();
      relay = undefined;
      await server?.close();
    });

    for (const [ownCid, cipher] of [
      ['a1b2', 'ccm8'],
      ['-', 'gcm'],
    ]) {
      it(`client CID ${ownCid}, ${cipher}: a new source port moves the session (peerMoved)`, async () => {
        const client = new PeerProcess(binary as string, [
          '127.0.0.1',
          String(server.port),
          'testclient',
          pskHex,
          ownCid,
          cipher,
        ]);
        try {
          client.write('40001234\n');
          await waitFor(() => /RECV 40001234/.test(client.output), 10000, 'the first echo');
          assert.match(client.output, /cid_negotiated=1/);
          const firstKey = server.received[0].peer.key;
          client.write('rebind\n40001235\n');
          await waitFor(() => /RECV 40001235/.test(client.output), 10000, 'the echo after rebinding');
          const secondKey = server.received[1].peer.key;
          assert.notEqual(firstKey, secondKey);
          assert.deepEqual(moves, [[firstKey, secondKey]]);
          assert.equal(
            server.transport.hasSession({ address: '127.0.0.1', port: Number(secondKey.split(':')[1]) }),
            true,
          );
          assert.equal(
            server.transport.hasSession({ address: '127.0.0.1', port: Number(firstKey.split(':')[1]) }),
            false,
          );
          assert.equal(server.transport.sessionCount, 1);
          client.write('close\n');
          await client.waitForExit();
          assert.equal(server.transport.sessionCount, 0);
        } finally {
          await client.stop();
        }
      });
    }

    it('a replayed or tampered CID record from another address does not move the session', async () => {
      relay = new UdpRelay(server.port);
      const relayPort = await relay.start();
      const client = new PeerProcess(binary as string, [
        '127.0.0.1',
        String(relayPort),
        'testclient',
        pskHex,
        '-',
        'ccm8',
      ]);
      const intruder = dgram.createSocket('udp4');
      await new Promise<void>((resolve) => intruder.bind(0, '127.0.0.1', () => resolve()));
      try {
        client.write('40001234\n');
        await waitFor(() => /RECV 40001234/.test(client.output), 10000, 'the echo');
        const recorded = relay.fromClient[relay.fromClient.length - 1];
        assert.equal(recorded[0], ContentType.tls12Cid);
        // A fresh sequence number (so not a replay) that the record's tag does not cover.
        const tampered = Buffer.from(recorded);
        tampered.writeUIntBE(recorded.readUIntBE(5, 6) + 1000, 5, 6);
        intruder.send(recorded, server.port, '127.0.0.1');
        intruder.send(tampered, server.port, '127.0.0.1');
        client.write('40001235\n');
        await waitFor(() => /RECV 40001235/.test(client.output), 10000, 'the second echo');
        assert.deepEqual(moves, []);
        assert.equal(server.transport.stats.droppedReplays, 1);
        assert.equal(server.transport.stats.droppedBadMac, 1);
        assert.ok(server.received.every((r) => r.peer.port === relay?.upstreamPort));
        client.write('close\n');
        await client.waitForExit();
      } finally {
        await client.stop();
        await new Promise<void>((resolve) => intruder.close(() => resolve()));
      }
    });
  });

  /**
   * Against tinydtls (the DTLS stack of Wakaama clients), `tests/dtls-client` of its develop branch
   * (the CID support is not on main): run only when DTLS_TINYDTLS_CLIENT points at the binary.
   */
  describe('with a tinydtls client (DTLS_TINYDTLS_CLIENT)', () => {
    const binary = peerBinary('DTLS_TINYDTLS_CLIENT');
    const psk = Buffer.from('000102030405060708090a0b0c0d0e0f', 'hex');
    let server: EchoServer;
    let relay: UdpRelay;
    let dir: string;

    before(function () {
      if (binary === undefined) this.skip();
      dir = mkdtempSync(join(tmpdir(), 'dtls-tinydtls-'));
      writeFileSync(join(dir, 'identity'), 'testclient');
      writeFileSync(join(dir, 'key'), psk);
    });
    after(() => {
      if (dir !== undefined) rmSync(dir, { recursive: true, force: true });
    });
    beforeEach(async () => {
      server = await startEchoServer({
        pskKey: (identity) => (identity === 'testclient' ? psk : undefined),
        // tinydtls's test client has a built-in P-256 key; any raw key is accepted here.
        rawPublicKey: { privateKey: generateKeyPairSync('ec', { namedCurve: 'prime256v1' }).privateKey },
        clientRawPublicKey: () => 'tinydtls-device',
      });
      relay = new UdpRelay(server.port);
    });
    afterEach(async () => {
      await relay?.close();
      await server?.close();
    });

    for (const [cipher, security] of [
      ['TLS_PSK_WITH_AES_128_CCM_8', { mode: 'psk', identity: 'testclient' }],
      ['TLS_ECDHE_ECDSA_WITH_AES_128_CCM_8', { mode: 'rpk', identity: 'tinydtls-device' }],
    ] as const) {
      it(`${cipher} with a Connection ID: handshake, echo, records of type tls12_cid`, async () => {
        const relayPort = await relay.start();
        const client = new PeerProcess('env', [
          'POSIXLY_CORRECT=1', // its argument loop needs getopt without permutation
          binary as string,
          '-z',
          '-i',
          join(dir, 'identity'),
          '-k',
          join(dir, 'key'),
          '-c',
          cipher,
          '-o',
          '-',
          '127.0.0.1',
          String(relayPort),
        ]);
        try {
          await waitFor(() => server.sessions.length === 1, 10000, 'the handshake');
          assert.deepEqual(server.sessions[0].security, security);
          client.write('hello tinydtls\n');
          await waitFor(() => server.received.length === 1, 10000, 'the line');
          await waitFor(() => client.output.includes('hello tinydtls'), 10000, 'the echo');
          assert.ok(relay.fromClient.some((datagram) => datagram[0] === ContentType.tls12Cid));
        } finally {
          await client.stop();
        }
      });
    }
  });
});
