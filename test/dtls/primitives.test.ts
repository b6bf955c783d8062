import { strict as assert } from 'node:assert';
import { execFileSync } from 'node:child_process';
import { createDecipheriv, createHmac, randomBytes, randomInt } from 'node:crypto';
import { ByteReader, DecodeError, vector } from '../../lib/dtls/bytes';
import { checkPadding, connectionKeys, keyBlockLength, type RecordContext } from '../../lib/dtls/cipher';
import { ContentType, DTLS_1_2, HandshakeType } from '../../lib/dtls/constants';
import { CookieJar } from '../../lib/dtls/cookie';
import { packDatagrams } from '../../lib/dtls/flight';
import {
  HandshakeReassembler,
  encodeHandshakeFragment,
  fragmentMessage,
  parseHandshakeFragments,
  transcriptEntry,
} from '../../lib/dtls/handshake';
import { parseClientHello } from '../../lib/dtls/messages';
import {
  extendedMasterSecret,
  keyBlock,
  masterSecret,
  prfSha256,
  pskPreMasterSecret,
  verifyData,
} from '../../lib/dtls/prf';
import { encodeRecord, parseRecords, splitRecords } from '../../lib/dtls/record';
import { ReplayWindow } from '../../lib/dtls/replay';
import { encodeClientHello } from './helpers';

/** A handshake message of this type with a small body, as one fragment. */
function encodeHandshakeFragmentOf(type: number): Buffer {
  const body = Buffer.from('body');
  return encodeHandshakeFragment(type, body.length, 0, 0, body);
}

function hasOpensslKdf(): boolean {
  try {
    execFileSync('openssl', ['kdf', '-help'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

/** OpenSSL's TLS1-PRF (an implementation independent of ours), hex in and out. */
function opensslPrf(secret: Buffer, label: string, seed: Buffer, length: number): Buffer {
  const out = execFileSync('openssl', [
    'kdf',
    '-keylen',
    String(length),
    '-kdfopt',
    'digest:SHA256',
    '-kdfopt',
    `hexsecret:${secret.toString('hex')}`,
    '-kdfopt',
    `hexseed:${Buffer.concat([Buffer.from(label, 'latin1'), seed]).toString('hex')}`,
    'TLS1-PRF',
  ]).toString();
  return Buffer.from(out.replace(/[^0-9A-Fa-f]/g, ''), 'hex');
}

describe('DTLS primitives', () => {
  describe('PRF (RFC 5246 §5, SHA-256)', () => {
    it('matches the published TLS 1.2 SHA-256 PRF test vector', () => {
      // The vector circulated on the IETF TLS list for P_SHA256 ("test label", 100 bytes).
      const secret = Buffer.from('9bbe436ba940f017b17652849a71db35', 'hex');
      const seed = Buffer.from('a0ba9f936cda311827a6f796ffd5198c', 'hex');
      const expected = Buffer.from(
        'e3f229ba727be17b8d122620557cd453c2aab21d07c3d495329b52d4e61edb5a6b301791e90d35c9c9a46b4e14baf9af0fa022f7' +
          '077def17abfd3797c0564bab4fbc91666e9def9b97fce34f796789baa48082d122ee42c5a72e5a5110fff70187347b66',
        'hex',
      );
      assert.deepEqual(prfSha256(secret, 'test label', seed, 100), expected);
    });

    it('agrees with OpenSSL TLS1-PRF for the master secret, key block and Finished labels', function () {
      if (!hasOpensslKdf()) this.skip();
      const preMaster = pskPreMasterSecret(Buffer.from('secretPSK'));
      const clientRandom = randomBytes(32);
      const serverRandom = randomBytes(32);
      const master = masterSecret(preMaster, clientRandom, serverRandom);
      assert.deepEqual(master, opensslPrf(preMaster, 'master secret', Buffer.concat([clientRandom, serverRandom]), 48));
      const sessionHash = randomBytes(32);
      assert.deepEqual(
        extendedMasterSecret(preMaster, sessionHash),
        opensslPrf(preMaster, 'extended master secret', sessionHash, 48),
      );
      assert.deepEqual(
        keyBlock(master, clientRandom, serverRandom, 40),
        opensslPrf(master, 'key expansion', Buffer.concat([serverRandom, clientRandom]), 40),
      );
      const handshakeHash = randomBytes(32);
      assert.deepEqual(
        verifyData(master, 'client', handshakeHash),
        opensslPrf(master, 'client finished', handshakeHash, 12),
      );
    });

    it('builds the plain PSK premaster secret of RFC 4279 §2', () => {
      assert.equal(pskPreMasterSecret(Buffer.from([0xaa, 0xbb])).toString('hex'), '000200000002aabb');
    });
  });

  describe('records', () => {
    it('encodes and parses several records in one datagram', () => {
      const one = encodeRecord(ContentType.handshake, 0, 5, Buffer.from('abc'));
      const two = encodeRecord(ContentType.applicationData, 1, 0xffffffffff, Buffer.from('de'));
      assert.equal(one.toString('hex'), '16fefd00000000000000050003616263');
      const records = parseRecords(Buffer.concat([one, two]));
      assert.equal(records.length, 2);
      assert.deepEqual(
        records.map((r) => [r.type, r.version, r.epoch, r.sequence, r.fragment.toString()]),
        [
          [22, DTLS_1_2, 0, 5, 'abc'],
          [23, DTLS_1_2, 1, 0xffffffffff, 'de'],
        ],
      );
    });

    it('keeps the good records before a truncated or foreign one', () => {
      const good = encodeRecord(ContentType.alert, 0, 1, Buffer.from([1, 0]));
      assert.equal(parseRecords(Buffer.concat([good, good.subarray(0, good.length - 1)])).length, 1);
      const badVersion = Buffer.from(good);
      badVersion.writeUInt16BE(0x0303, 1);
      assert.equal(parseRecords(Buffer.concat([good, badVersion])).length, 1);
      assert.equal(parseRecords(Buffer.from([1, 2, 3])).length, 0);
    });

    it('takes any {254, x} record version for a ClientHello in epoch 0 (Mbed TLS 2.x sends {254, 0})', () => {
      const hello = encodeHandshakeFragmentOf(HandshakeType.clientHello);
      for (const version of [0xfe00, 0xfeff, 0xfefd, 0xfefc]) {
        const record = encodeRecord(ContentType.handshake, 0, 0, hello);
        record.writeUInt16BE(version, 1);
        const parsed = splitRecords(record);
        assert.equal(parsed.problem, undefined, version.toString(16));
        assert.deepEqual(
          parsed.records.map((r) => r.version),
          [version],
        );
      }
    });

    it('keeps DTLS 1.2 strict for every other record, and names why it stopped', () => {
      const withVersion = (record: Buffer, version: number) => {
        const copy = Buffer.from(record);
        copy.writeUInt16BE(version, 1);
        return copy;
      };
      const finished = encodeRecord(ContentType.handshake, 0, 1, encodeHandshakeFragmentOf(HandshakeType.finished));
      const helloInEpoch1 = encodeRecord(
        ContentType.handshake,
        1,
        1,
        encodeHandshakeFragmentOf(HandshakeType.clientHello),
      );
      const data = encodeRecord(ContentType.applicationData, 1, 1, Buffer.from('x'));
      for (const record of [finished, helloInEpoch1, data]) {
        assert.deepEqual(splitRecords(withVersion(record, 0xfe00)), { records: [], problem: 'bad-version' });
        assert.deepEqual(splitRecords(withVersion(record, 0xfeff)), { records: [], problem: 'bad-version' });
        assert.equal(splitRecords(record).records.length, 1);
      }
      assert.deepEqual(splitRecords(withVersion(data, 0x0303)), { records: [], problem: 'malformed' });
      assert.equal(splitRecords(Buffer.concat([data, Buffer.from([1, 2])])).problem, 'malformed');
      assert.equal(splitRecords(Buffer.concat([data, Buffer.from([1, 2])])).records.length, 1);
    });
  });

  describe('anti-replay window (64)', () => {
    it('accepts each sequence number once, out of order within the window', () => {
      const window = new ReplayWindow();
      for (const sequence of [0, 2, 1, 70, 10, 69]) {
        assert.ok(window.isFresh(sequence), `fresh ${sequence}`);
        window.markSeen(sequence);
      }
      for (const sequence of [0, 2, 1, 70, 69]) assert.ok(!window.isFresh(sequence), `replayed ${sequence}`);
      assert.ok(!window.isFresh(6), '70 - 64 is outside the window');
      assert.ok(window.isFresh(7), '70 - 63 is inside the window and unseen');
      assert.ok(window.isFresh(71));
    });

    it('agrees with a plain model over random sequences (jumps of 0 to 100, across both 32-bit halves), and survives save/restore', () => {
      let window = new ReplayWindow();
      const accepted = new Set<number>();
      let highest = -1;
      const fresh = (sequence: number) => sequence > highest || (highest - sequence < 64 && !accepted.has(sequence));
      let next = 0;
      for (let step = 0; step < 5000; step++) {
        // Mostly forward (by 1, or a jump of up to 100), sometimes back into or past the window.
        const roll = randomInt(0, 10);
        const sequence =
          roll < 6 ? next++ : roll < 8 ? (next += randomInt(0, 100)) : Math.max(0, next - randomInt(0, 80));
        assert.equal(window.isFresh(sequence), fresh(sequence), `step ${step}: ${sequence} (highest ${highest})`);
        if (fresh(sequence) && randomInt(0, 4) > 0) {
          window.markSeen(sequence);
          accepted.add(sequence);
          highest = Math.max(highest, sequence);
        }
        if (step % 500 === 499) {
          const saved = window.save();
          window = ReplayWindow.restore(saved.highest, saved.bitmap);
        }
      }
    });

    it('checking does not move the window (only authenticated records are marked)', () => {
      const window = new ReplayWindow();
      window.markSeen(5);
      assert.ok(window.isFresh(1000));
      assert.ok(window.isFresh(4));
      window.markSeen(200);
      assert.ok(!window.isFresh(5));
      assert.ok(window.isFresh(199));
    });
  });

  describe('handshake fragmentation and reassembly', () => {
    const body = Buffer.from(Array.from({ length: 1000 }, (_, i) => i & 0xff));
    const message = { msgType: 11, messageSeq: 3, body };

    it('fragments to the limit and reassembles out of order, with duplicates and overlaps', () => {
      const fragments = fragmentMessage(message, 300).flatMap((bytes) => parseHandshakeFragments(bytes));
      assert.deepEqual(
        fragments.map((f) => [f.fragmentOffset, f.fragment.length]),
        [
          [0, 300],
          [300, 300],
          [600, 300],
          [900, 100],
        ],
      );
      const reassembler = new HandshakeReassembler(3);
      const overlap = { ...fragments[1], fragmentOffset: 250, fragment: body.subarray(250, 650) };
      assert.deepEqual(reassembler.add(fragments[3]), []);
      assert.deepEqual(reassembler.add(overlap), []);
      assert.deepEqual(reassembler.add(fragments[3]), []);
      assert.deepEqual(reassembler.add(fragments[2]), []);
      const done = reassembler.add(fragments[0]);
      assert.equal(done.length, 1);
      assert.deepEqual(done[0].body, body);
      assert.equal(reassembler.nextSeq, 4);
      assert.deepEqual(reassembler.add(fragments[0]), [], 'an old message is not delivered twice');
    });

    it('releases messages in message_seq order only', () => {
      const reassembler = new HandshakeReassembler(1);
      const second = parseHandshakeFragments(
        transcriptEntry({ msgType: 15, messageSeq: 2, body: Buffer.from('b') }),
      )[0];
      const first = parseHandshakeFragments(transcriptEntry({ msgType: 16, messageSeq: 1, body: Buffer.from('a') }))[0];
      assert.deepEqual(reassembler.add(second), []);
      assert.deepEqual(
        reassembler.add(first).map((m) => [m.msgType, m.messageSeq]),
        [
          [16, 1],
          [15, 2],
        ],
      );
    });

    it('rejects a fragment that claims to extend beyond its message', () => {
      const bytes = transcriptEntry(message);
      bytes.writeUIntBE(900, 6, 3); // fragment_offset 900 with fragment_length 1000
      assert.throws(() => parseHandshakeFragments(bytes), DecodeError);
    });

    it('packs records into datagrams no larger than the PMTU', () => {
      const records = [Buffer.alloc(500), Buffer.alloc(500), Buffer.alloc(500), Buffer.alloc(1300)];
      assert.deepEqual(
        packDatagrams(records, 1200).map((d) => d.length),
        [1000, 500, 1300],
      );
    });
  });

  describe('record protection', () => {
    const context: RecordContext = { type: ContentType.applicationData, version: DTLS_1_2, epoch: 1, sequence: 7 };

    for (const cipher of ['aes-128-ccm8', 'aes-128-gcm', 'aes-128-cbc-sha256'] as const) {
      it(`${cipher}: round trip, and any change to the record or its header fails`, () => {
        const keys = connectionKeys(cipher, randomBytes(keyBlockLength(cipher)));
        const plaintext = Buffer.from('hello over dtls');
        const fragment = keys.client.encrypt(context, plaintext);
        assert.ok(fragment.length - plaintext.length <= keys.client.overhead);
        assert.deepEqual(keys.client.decrypt(context, fragment), plaintext);
        assert.equal(keys.server.decrypt(context, fragment), undefined, 'the other direction has other keys');
        assert.equal(keys.client.decrypt({ ...context, sequence: 8 }, fragment), undefined);
        assert.equal(keys.client.decrypt({ ...context, type: ContentType.alert }, fragment), undefined);
        for (let i = 0; i < fragment.length; i += 5) {
          const tampered = Buffer.from(fragment);
          tampered[i] ^= 0x01;
          assert.equal(keys.client.decrypt(context, tampered), undefined, `flip at ${i}`);
        }
        assert.equal(keys.client.decrypt(context, fragment.subarray(0, 10)), undefined);
      });
    }

    it('AEAD explicit nonce is the epoch and sequence number', () => {
      const keys = connectionKeys('aes-128-ccm8', randomBytes(keyBlockLength('aes-128-ccm8')));
      const fragment = keys.server.encrypt(context, Buffer.from('x'));
      assert.equal(fragment.subarray(0, 8).toString('hex'), '0001000000000007');
      assert.equal(fragment.length, 8 + 1 + 8);
    });

    it('CBC record: MAC over seq, header and plaintext (RFC 5246 §6.2.3.1)', () => {
      const block = randomBytes(keyBlockLength('aes-128-cbc-sha256'));
      const keys = connectionKeys('aes-128-cbc-sha256', block);
      const plaintext = Buffer.from('abc');
      const fragment = keys.client.encrypt(context, plaintext);
      // Decrypt by hand with the client write key (after both 32-byte MAC keys) and check the MAC.
      const decipher = createDecipheriv('aes-128-cbc', block.subarray(64, 80), fragment.subarray(0, 16));
      decipher.setAutoPadding(false);
      const decrypted = Buffer.concat([decipher.update(fragment.subarray(16)), decipher.final()]);
      const header = Buffer.from('0001000000000007' + '17' + 'fefd' + '0003', 'hex');
      const mac = createHmac('sha256', block.subarray(0, 32)).update(header).update(plaintext).digest();
      assert.deepEqual(decrypted.subarray(0, 3), plaintext);
      assert.deepEqual(decrypted.subarray(3, 35), mac);
      const paddingLength = decrypted[decrypted.length - 1];
      assert.equal(decrypted.length, 3 + 32 + paddingLength + 1);
    });

    it('CBC padding check inspects every byte of the claimed padding', () => {
      const good = Buffer.concat([Buffer.alloc(40, 0xaa), Buffer.alloc(4, 3)]);
      assert.deepEqual(checkPadding(good, 32), { paddingLength: 3, paddingOk: true });
      const bad = Buffer.from(good);
      bad[40] = 2;
      assert.equal(checkPadding(bad, 32).paddingOk, false);
      const tooLong = Buffer.concat([Buffer.alloc(40, 0xaa), Buffer.from([200])]);
      assert.equal(checkPadding(tooLong, 32).paddingOk, false);
    });
  });

  describe('ClientHello and cookies', () => {
    const hello = parseClientHello(encodeClientHello({ cipherSuites: [0xc0a8], extensions: [[23, Buffer.alloc(0)]] }));

    it('parses a ClientHello with extensions and rejects trailing or repeated data', () => {
      assert.deepEqual(hello.cipherSuites, [0xc0a8]);
      assert.ok(hello.extensions.has(23));
      const withExtra = Buffer.concat([encodeClientHello({ cipherSuites: [0xc0a8] }), Buffer.from([0])]);
      assert.throws(() => parseClientHello(withExtra), DecodeError);
      const repeated = encodeClientHello({
        cipherSuites: [0xc0a8],
        extensions: [
          [23, Buffer.alloc(0)],
          [23, Buffer.alloc(0)],
        ],
      });
      assert.throws(() => parseClientHello(repeated), DecodeError);
    });

    it('a cookie is bound to the address, port and hello, and survives one rotation only', () => {
      let now = 0;
      const jar = new CookieJar(1000, () => now);
      const cookie = jar.issue('10.0.0.1', 5000, hello);
      const echoed = { ...hello, cookie };
      assert.ok(jar.verify('10.0.0.1', 5000, echoed));
      assert.ok(!jar.verify('10.0.0.2', 5000, echoed));
      assert.ok(!jar.verify('10.0.0.1', 5001, echoed));
      assert.ok(!jar.verify('10.0.0.1', 5000, { ...echoed, random: randomBytes(32) }));
      now = 1500;
      assert.ok(jar.verify('10.0.0.1', 5000, echoed), 'the previous secret still verifies');
      now = 2600;
      assert.ok(!jar.verify('10.0.0.1', 5000, echoed), 'two rotations later it is gone');
    });
  });

  it('ByteReader reads vectors and refuses to read past the end', () => {
    const reader = new ByteReader(Buffer.concat([vector(2, Buffer.from('ab')), Buffer.from([7])]));
    assert.equal(reader.vector(2).toString(), 'ab');
    assert.equal(reader.uint8(), 7);
    assert.throws(() => reader.uint8(), DecodeError);
  });
});
