/**
 * AesCcm (lib/dtls/ccm.ts): AES-128-CCM from reusable ECB and CBC cipher objects, against published
 * test vectors and against node:crypto's own aes-128-ccm on random inputs.
 */
import { strict as assert } from 'node:assert';
import { createCipheriv, randomBytes, randomInt } from 'node:crypto';
import { AesCcm } from '../../lib/dtls/ccm';
import { CcmKey, CcmKeyCache } from '../../lib/dtls/ccm-cache';
import { connectionKeys, keyBlockLength } from '../../lib/dtls/cipher';
import { ContentType, DTLS_1_2 } from '../../lib/dtls/constants';

const hex = (text: string): Buffer => Buffer.from(text.replace(/\s+/g, ''), 'hex');

function seal(ccm: AesCcm, nonce: Buffer, aad: Buffer, plaintext: Buffer): Buffer {
  const out = Buffer.alloc(plaintext.length + ccm.tagLength);
  ccm.seal(nonce, 0, aad, plaintext, out, 0);
  return out;
}

function open(ccm: AesCcm, nonce: Buffer, aad: Buffer, sealed: Buffer): Buffer | undefined {
  return ccm.open(nonce, 0, aad, sealed, 0, sealed.length - ccm.tagLength);
}

/** node:crypto's one-shot CCM: ciphertext then tag. */
function nodeCcm(key: Buffer, nonce: Buffer, aad: Buffer, plaintext: Buffer, tagLength: number): Buffer {
  const cipher = createCipheriv('aes-128-ccm', key, nonce, { authTagLength: tagLength });
  cipher.setAAD(aad, { plaintextLength: plaintext.length }); // CCM needs the length even without additional data
  return Buffer.concat([cipher.update(plaintext), cipher.final(), cipher.getAuthTag()]);
}

describe('AES-128-CCM from reusable block ciphers', () => {
  it('RFC 3610 packet vectors #1 and #2 (13-byte nonce, 8-byte tag)', () => {
    const key = hex('c0c1c2c3c4c5c6c7c8c9cacbcccdcecf');
    const ccm = new AesCcm(key, 8, 13);
    const header = hex('0001020304050607');
    // Packet vector #1: 23 bytes of payload after an 8-byte header.
    const nonce1 = hex('00000003020100a0a1a2a3a4a5');
    const payload1 = hex('08090a0b0c0d0e0f101112131415161718191a1b1c1d1e');
    const expected1 = hex('588c979a61c663d2f066d0c2c0f989806d5f6b61dac38417e8d12cfdf926e0');
    assert.deepEqual(seal(ccm, nonce1, header, payload1), expected1);
    assert.deepEqual(open(ccm, nonce1, header, expected1), payload1);
    // Packet vector #2: 24 bytes of payload.
    const nonce2 = hex('00000004030201a0a1a2a3a4a5');
    const payload2 = hex('08090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f');
    const expected2 = hex('72c91a36e135f8cf291ca894085c87e3cc15c439c9e43a3b a091d56e10400916');
    assert.deepEqual(seal(ccm, nonce2, header, payload2), expected2);
    assert.deepEqual(open(ccm, nonce2, header, expected2), payload2);
  });

  it('NIST SP 800-38C example 3 (12-byte nonce as in DTLS, 8-byte tag)', () => {
    const ccm = new AesCcm(hex('404142434445464748494a4b4c4d4e4f'), 8);
    const nonce = hex('101112131415161718191a1b');
    const aad = hex('000102030405060708090a0b0c0d0e0f10111213');
    const plaintext = hex('202122232425262728292a2b2c2d2e2f3031323334353637');
    const expected = hex('e3b201a9f5b71a7a9b1ceaeccd97e70b6176aad9a4428aa5 484392fbc1b09951');
    assert.deepEqual(seal(ccm, nonce, aad, plaintext), expected);
    assert.deepEqual(open(ccm, nonce, aad, expected), plaintext);
  });

  it("matches node:crypto's aes-128-ccm on random inputs, with seal and open interleaved on one key", () => {
    for (const tagLength of [8, 16]) {
      const key = randomBytes(16);
      const ccm = new AesCcm(key, tagLength);
      const other = new AesCcm(randomBytes(16), tagLength); // its calls in between must not disturb `ccm`
      for (let round = 0; round < 300; round++) {
        const nonce = randomBytes(12);
        // (Buffer.from: node's CCM fails on randomBytes(0), a zero-length buffer without a backing store.)
        const plaintext = Buffer.from(randomBytes(round < 70 ? round : randomInt(0, 1500)));
        const aad = Buffer.from(randomBytes([0, 1, 13, 14, 15, 29, 200][round % 7]));
        const expected = nodeCcm(key, nonce, aad, plaintext, tagLength);
        assert.deepEqual(seal(ccm, nonce, aad, plaintext), expected, `round ${round}`);
        seal(other, nonce, aad, plaintext);
        assert.deepEqual(open(ccm, nonce, aad, expected), plaintext, `round ${round}`);
        open(other, nonce, aad, expected);
      }
    }
  });

  it('consecutive nonces (keystreams made in batches) match node:crypto, across carries and another prefix', () => {
    const key = randomBytes(16);
    const ccm = new AesCcm(key, 8);
    const aad = randomBytes(13);
    /** The salt and epoch (6 bytes), then a 6-byte sequence number. */
    const nonceOf = (prefix: string, sequence: number) => {
      const nonce = Buffer.alloc(12);
      nonce.write(prefix, 0, 'hex');
      nonce.writeUIntBE(sequence, 6, 6);
      return nonce;
    };
    const starts = [0, 0xf9, 0xfffa, 0xfffffffffff9, 0xffffffffff00];
    for (const start of starts) {
      for (let i = 0; i < 30; i++) {
        // Mostly consecutive, with the other prefix, a step back and a long message in between.
        const prefix = i % 11 === 5 ? 'a1a2a3a40002' : 'a1a2a3a40001';
        const sequence = Math.min(0xffffffffffff, start + i - (i % 13 === 7 ? 3 : 0));
        const nonce = nonceOf(prefix, sequence);
        const plaintext = Buffer.from(randomBytes(i % 9 === 4 ? 150 : i % 65)); // (Buffer.from: see the test above)
        const expected = nodeCcm(key, nonce, aad, plaintext, 8);
        assert.deepEqual(seal(ccm, nonce, aad, plaintext), expected, `seal ${start} + ${i}`);
        assert.deepEqual(open(ccm, nonce, aad, expected), plaintext, `open ${start} + ${i}`);
      }
    }
  });

  it('writes at an offset and reads the nonce at an offset', () => {
    const key = randomBytes(16);
    const ccm = new AesCcm(key, 8);
    const nonceHolder = randomBytes(20);
    const nonce = nonceHolder.subarray(5, 17);
    const plaintext = randomBytes(40);
    const aad = randomBytes(13);
    const out = Buffer.alloc(3 + 48, 0xee);
    ccm.seal(nonceHolder, 5, aad, plaintext, out, 3);
    assert.deepEqual(out.subarray(0, 3), Buffer.alloc(3, 0xee));
    assert.deepEqual(out.subarray(3), nodeCcm(key, nonce, aad, plaintext, 8));
    assert.deepEqual(ccm.open(nonceHolder, 5, aad, out, 3, 40), plaintext);
  });

  it('refuses, without throwing, a record whose ciphertext, tag, nonce or additional data was changed', () => {
    const ccm = new AesCcm(randomBytes(16), 8);
    const nonce = randomBytes(12);
    const aad = randomBytes(13);
    const plaintext = randomBytes(57);
    const sealed = seal(ccm, nonce, aad, plaintext);
    for (let i = 0; i < sealed.length; i++) {
      const tampered = Buffer.from(sealed);
      tampered[i] ^= 0x80;
      assert.equal(open(ccm, nonce, aad, tampered), undefined, `flip at ${i}`);
    }
    const otherNonce = Buffer.from(nonce);
    otherNonce[11] ^= 1;
    assert.equal(open(ccm, otherNonce, aad, sealed), undefined);
    const otherAad = Buffer.from(aad);
    otherAad[0] ^= 1;
    assert.equal(open(ccm, nonce, otherAad, sealed), undefined);
    assert.equal(ccm.open(nonce, 0, aad, sealed.subarray(0, 63), 0, 57), undefined, 'short tag');
    assert.equal(ccm.open(nonce, 0, aad, sealed, 0, 56), undefined, 'long tag');
    // and still works afterwards
    assert.deepEqual(open(ccm, nonce, aad, sealed), plaintext);
  });

  it('the plaintext it returns is not overwritten by later records', () => {
    const ccm = new AesCcm(randomBytes(16), 8);
    const nonce = randomBytes(12);
    const first = randomBytes(30);
    const opened = open(ccm, nonce, Buffer.alloc(0), seal(ccm, nonce, Buffer.alloc(0), first));
    for (let i = 0; i < 10; i++) open(ccm, nonce, Buffer.alloc(0), seal(ccm, nonce, Buffer.alloc(0), randomBytes(30)));
    assert.deepEqual(opened, first);
  });
});

describe('CcmKeyCache: the AES objects of the most recently used CCM keys', () => {
  it('keeps at most its capacity, evicts the least recently used, and remakes an evicted key that works as before', () => {
    const cache = new CcmKeyCache(2);
    const [a, b, c] = [0, 1, 2].map(() => new CcmKey(randomBytes(16), 8));
    const nonce = randomBytes(12);
    const plaintext = randomBytes(20);
    const sealedByA = seal(cache.get(a), nonce, Buffer.alloc(0), plaintext);
    cache.get(b);
    cache.get(a); // a is now the most recently used: b goes first
    cache.get(c);
    assert.equal(cache.size, 2);
    assert.equal(b.ccm, undefined, 'b evicted');
    assert.ok(a.ccm !== undefined && c.ccm !== undefined);
    cache.get(b);
    assert.equal(a.ccm, undefined, 'then a');
    assert.deepEqual(open(cache.get(a), nonce, Buffer.alloc(0), sealedByA), plaintext, 'a made again');
    assert.equal(cache.size, 2);
  });

  it('release frees a key at once (and twice is harmless); the others keep their order', () => {
    const cache = new CcmKeyCache(3);
    const [a, b, c, d] = [0, 1, 2, 3].map(() => new CcmKey(randomBytes(16), 8));
    for (const key of [a, b, c]) cache.get(key);
    cache.release(b);
    cache.release(b);
    assert.equal(cache.size, 2);
    assert.equal(b.ccm, undefined);
    cache.get(d);
    cache.get(b);
    assert.equal(cache.size, 3);
    assert.equal(a.ccm, undefined, 'a was the oldest');
    assert.ok(c.ccm !== undefined && d.ccm !== undefined && b.ccm !== undefined);
  });
});

describe('CCM_8 records (cipher.ts) against node:crypto on the key block layout', () => {
  it("each direction's record is the 8-byte explicit nonce, then node's aes-128-ccm with that key and salt", () => {
    // TLS_PSK_WITH_AES_128_CCM_8 key block: client key, server key (16 bytes each), client salt, server salt (4 each).
    const block = randomBytes(keyBlockLength('aes-128-ccm8'));
    const keys = connectionKeys('aes-128-ccm8', block);
    const context = { type: ContentType.applicationData, version: DTLS_1_2, epoch: 1, sequence: 0x0102_0304_0506 };
    const plaintext = randomBytes(37);
    const explicit = hex('0001 010203040506'); // epoch, then the 48-bit sequence number
    const aad = Buffer.concat([explicit, Buffer.from([ContentType.applicationData, 0xfe, 0xfd, 0, plaintext.length])]);
    for (const [side, key, salt] of [
      ['client', block.subarray(0, 16), block.subarray(32, 36)],
      ['server', block.subarray(16, 32), block.subarray(36, 40)],
    ] as const) {
      const expected = Buffer.concat([explicit, nodeCcm(key, Buffer.concat([salt, explicit]), aad, plaintext, 8)]);
      assert.deepEqual(keys[side].encrypt(context, plaintext), expected, side);
      assert.deepEqual(keys[side].decrypt(context, expected), plaintext, side);
    }
  });
});
