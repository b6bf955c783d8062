/**
 * The CBOR reader behind the CBOR formats (lib/content/cbor-reader.ts): every major type, definite
 * and indefinite lengths, the tags it understands, map entries kept in order (repeated keys too),
 * the nesting limit, and a 4.00 naming the byte for anything malformed. Cross-checked against
 * cbor-x's decoding of random items that cbor-x encodes.
 */
import { strict as assert } from 'node:assert';
import { Decoder, Encoder } from 'cbor-x';
import { CBOR_MAX_DEPTH, CborMap, CborTag, readCbor, type CborValue } from '../../lib/content/cbor-reader';
import { decodeNode } from '../../lib/content';
import { ContentFormat } from '../../lib/content/types';
import { LwM2mPath } from '../../lib/model/path';
import { assertCodecError, hex, model, prng } from './fixtures';

const read = (text: string) => readCbor(hex(text), 'test');

describe('content/cbor-reader', () => {
  it('integers: numbers while safe, bigint beyond, in every head size', () => {
    const vectors: [string, CborValue][] = [
      ['00', 0],
      ['17', 23],
      ['1818', 24],
      ['1903e8', 1000],
      ['1a000f4240', 1000000],
      ['1b000000e8d4a51000', 1000000000000],
      ['1b001fffffffffffff', Number.MAX_SAFE_INTEGER],
      ['1b0020000000000000', 2n ** 53n],
      ['1bffffffffffffffff', 2n ** 64n - 1n],
      ['20', -1],
      ['3903e7', -1000],
      ['3b001ffffffffffffe', -Number.MAX_SAFE_INTEGER],
      ['3b001fffffffffffff', -(2n ** 53n)],
      ['3bffffffffffffffff', -(2n ** 64n)],
    ];
    for (const [bytes, value] of vectors) assert.equal(read(bytes), value, bytes);
  });

  it('floats (half, single, double), simple values', () => {
    assert.equal(read('f93c00'), 1);
    assert.equal(read('f93e00'), 1.5);
    assert.equal(read('f90001'), 5.960464477539063e-8); // smallest subnormal half
    assert.equal(read('f97bff'), 65504);
    assert.equal(read('f9c400'), -4);
    assert.equal(read('f97c00'), Infinity);
    assert.equal(read('f9fc00'), -Infinity);
    assert.ok(Number.isNaN(read('f97e00')));
    assert.ok(Object.is(read('f98000'), -0));
    assert.equal(read('fa47c35000'), 100000);
    assert.equal(read('fb3ff199999999999a'), 1.1);
    assert.equal(read('f4'), false);
    assert.equal(read('f5'), true);
    assert.equal(read('f6'), null);
    assert.equal(read('f7'), undefined);
  });

  it('byte and text strings, definite and indefinite (copies, checked UTF-8)', () => {
    const source = hex('43 010203');
    const bytes = readCbor(source, 'test');
    assert.deepEqual(bytes, Buffer.from([1, 2, 3]));
    source[1] = 9;
    assert.deepEqual(bytes, Buffer.from([1, 2, 3]), 'a copy, not a view of the payload');
    assert.deepEqual(read('40'), Buffer.alloc(0));
    assert.deepEqual(read('5f 42 0102 40 41 03 ff'), Buffer.from([1, 2, 3]));
    assert.deepEqual(read('5f ff'), Buffer.alloc(0));
    assert.equal(read('60'), '');
    assert.equal(read('64 49455446'), 'IETF');
    assert.equal(read('62 c3bc'), 'ü');
    assert.equal(read('64 f0908591'), '\u{10151}');
    assert.equal(read('7f 65 7374726561 64 6d696e67 ff'), 'streaming');
    assertCodecError(() => read('62 c328'), /invalid CBOR at byte 0: text string is not valid UTF-8/);
    assertCodecError(() => read('61 ff'), /not valid UTF-8/);
    // a chunk of an indefinite text string must be UTF-8 by itself (no character split over chunks)
    assertCodecError(() => read('7f 61 c3 61 bc ff'), /not valid UTF-8/);
  });

  it('arrays and maps, definite and indefinite; map entries kept in order, repeated keys too', () => {
    assert.deepEqual(read('80'), []);
    assert.deepEqual(read('83 01 02 03'), [1, 2, 3]);
    assert.deepEqual(read('9f 01 82 02 03 9f 04 05 ff ff'), [1, [2, 3], [4, 5]]);
    assert.deepEqual(read('a0'), new CborMap([], []));
    const map = read('a3 01 61 61 01 61 62 82 01 02 f6');
    assert.ok(map instanceof CborMap);
    assert.deepEqual(map.keys, [1, 1, [1, 2]]);
    assert.deepEqual(map.values, ['a', 'b', null]);
    assert.equal(map.size, 3);
    const indefinite = read('bf 03 bf 00 01 ff 03 a0 ff');
    assert.deepEqual(indefinite, new CborMap([3, 3], [new CborMap([0], [1]), new CborMap([], [])]));
  });

  it('tags: dates, bignums, decimal fractions, bigfloats, maps, self-description; others kept', () => {
    assert.deepEqual(read('c0 74 323031332d30332d32315432303a30343a30305a'), new Date('2013-03-21T20:04:00Z'));
    assert.deepEqual(read('c1 1a514b67b0'), new Date(1363896240000));
    assert.deepEqual(read('c1 fb41d452d9ec200000'), new Date(1363896240500));
    assert.deepEqual(read('c1 3a0001517f'), new Date(-86400000));
    assert.equal(read('c2 49 010000000000000000'), 2n ** 64n);
    assert.equal(read('c3 49 010000000000000000'), -(2n ** 64n) - 1n);
    assert.equal(read('c2 41 01'), 1);
    assert.equal(read('c2 40'), 0);
    assert.equal(read('c4 82 21 196ab3'), 273.15);
    assert.equal(read('c5 82 20 03'), 1.5);
    assert.deepEqual(read('d9d9f7 83 01 02 03'), [1, 2, 3]);
    assert.deepEqual(read('d90103 a1 01 02'), new CborMap([1], [2])); // 259, as cbor-x writes a Map
    assertCodecError(() => read('d90103 80'), /tag 259 must hold a map/);
    const other = read('d8 20 63 612f62');
    assert.ok(other instanceof CborTag);
    assert.equal(other.tag, 32);
    assert.equal(other.value, 'a/b');
    assertCodecError(() => read('c0 01'), /tag 0 \(date\/time\) must hold a text string/);
    assertCodecError(() => read('c1 61 31'), /tag 1 \(epoch time\) must hold a number/);
    assertCodecError(() => read('c2 01'), /tag 2 \(bignum\) must hold a byte string/);
    assertCodecError(() => read('c4 82 f93e00 01'), /tag 4 \(decimal fraction\) must hold \[exponent, mantissa\]/);
    assertCodecError(() => read('c5 81 01'), /tag 5 \(bigfloat\) must hold/);
  });

  it('nesting: CBOR_MAX_DEPTH levels of arrays, maps or tags are read, one more is a 4.00', () => {
    assert.equal(CBOR_MAX_DEPTH, 32);
    const arrays = (depth: number) => Buffer.concat([Buffer.alloc(depth, 0x81), hex('00')]);
    let value = readCbor(arrays(CBOR_MAX_DEPTH), 'test');
    for (let i = 0; i < CBOR_MAX_DEPTH; i++) value = (value as CborValue[])[0];
    assert.equal(value, 0);
    assertCodecError(
      () => readCbor(arrays(CBOR_MAX_DEPTH + 1), 'test'),
      /invalid CBOR at byte 32: nesting deeper than 32/,
    );
    const maps = (depth: number) => Buffer.concat([Buffer.from('a101'.repeat(depth), 'hex'), hex('00')]);
    assert.ok(readCbor(maps(CBOR_MAX_DEPTH), 'test') instanceof CborMap);
    assertCodecError(() => readCbor(maps(CBOR_MAX_DEPTH + 1), 'test'), /nesting deeper than 32/);
    const indefinite = (depth: number) =>
      Buffer.concat([Buffer.alloc(depth, 0x9f), hex('00'), Buffer.alloc(depth, 0xff)]);
    assert.ok(Array.isArray(readCbor(indefinite(CBOR_MAX_DEPTH), 'test')));
    assertCodecError(() => readCbor(indefinite(CBOR_MAX_DEPTH + 1), 'test'), /nesting deeper than 32/);
    const tagChain = (depth: number) => Buffer.concat([Buffer.from('d820'.repeat(depth), 'hex'), hex('00')]);
    assert.ok(readCbor(tagChain(CBOR_MAX_DEPTH), 'test') instanceof CborTag);
    assertCodecError(() => readCbor(tagChain(CBOR_MAX_DEPTH + 1), 'test'), /nesting deeper than 32/);
    // far deeper input is refused at the limit, not by a stack overflow
    assertCodecError(() => readCbor(Buffer.alloc(1_000_000, 0x81), 'test'), /nesting deeper than 32/);
    // by each CBOR content format
    for (const format of [ContentFormat.CBOR, ContentFormat.SENML_CBOR, ContentFormat.LWM2M_CBOR]) {
      for (const deep of [arrays(CBOR_MAX_DEPTH + 1), maps(CBOR_MAX_DEPTH + 1), Buffer.alloc(100_000, 0x81)]) {
        assertCodecError(() => decodeNode(deep, format, LwM2mPath.parse('/3/0/9'), model), /nesting deeper than 32/);
      }
    }
  });

  it('malformed input is a 4.00 naming the byte', () => {
    const cases: [string, RegExp][] = [
      ['', /test: empty payload/],
      ['01 02', /at byte 1: unexpected bytes after the data item/],
      ['18', /at byte 0: unexpected end of input/],
      ['1b 0000', /at byte 0: unexpected end of input/],
      ['1c', /at byte 0: reserved additional information 28/],
      ['3f', /at byte 0: major type 1 cannot have an indefinite length/],
      ['df 00', /major type 6 cannot have an indefinite length/],
      ['ff', /at byte 0: unexpected break/],
      ['82 01 ff', /at byte 2: unexpected break/],
      ['44 0102', /string length 4 runs past the end/],
      ['5b ffffffffffffffff', /string length 18446744073709551615 runs past the end/],
      ['9b ffffffffffffffff', /array of 18446744073709551615 items runs past the end/],
      ['9a ffffffff 00', /array of 4294967295 items runs past the end/],
      ['a2 01 02', /map of 2 items runs past the end/],
      ['9f 01 02', /unterminated indefinite-length container/],
      ['bf 01 ff', /at byte 2: map ends between a key and its value/],
      ['5f 61 00 ff', /at byte 1: a chunk of an indefinite-length string must be a definite string of the same type/],
      ['5f 5f ff ff', /must be a definite string of the same type/],
      ['5f 41 00', /at byte 0: unterminated indefinite-length string/],
      ['5f 41', /at byte 1: string length 1 runs past the end/],
      ['f0', /unsupported simple value 16/],
      ['f8 20', /unsupported simple value 32/],
      ['fc', /reserved additional information 28/],
      ['f9 00', /unexpected end of input/],
      ['fa 0000', /unexpected end of input/],
      ['fb 00000000', /unexpected end of input/],
    ];
    for (const [bytes, pattern] of cases) assertCodecError(() => read(bytes), pattern);
  });

  it('reads what cbor-x writes as cbor-x does (random items)', () => {
    const encoder = new Encoder({ useRecords: false, mapsAsObjects: false, tagUint8Array: false } as never);
    const decoder = new Decoder({ mapsAsObjects: false, useRecords: false, int64AsNumber: false } as never);
    const random = prng(15);
    const scalar = (): unknown => {
      const kind = Math.floor(random() * 8);
      switch (kind) {
        case 0:
          return Math.floor(random() * 2 ** 32) - 2 ** 31;
        case 1:
          return BigInt(Math.floor(random() * 2 ** 52)) * 4096n * (random() < 0.5 ? 1n : -1n);
        case 2:
          return (random() - 0.5) * 10 ** Math.floor(random() * 20);
        case 3:
          return 'x'.repeat(Math.floor(random() * 30)) + 'é✓𝄞';
        case 4:
          return Buffer.from(Array.from({ length: Math.floor(random() * 40) }, () => Math.floor(random() * 256)));
        case 5:
          return random() < 0.5;
        case 6:
          return null;
        default:
          return new Date(Math.floor(random() * 2e12));
      }
    };
    const item = (depth: number): unknown => {
      if (depth > 4 || random() < 0.4) return scalar();
      const size = Math.floor(random() * 5);
      if (random() < 0.5) return Array.from({ length: size }, () => item(depth + 1));
      const map = new Map<unknown, unknown>();
      for (let i = 0; i < size; i++) map.set(random() < 0.7 ? Math.floor(random() * 70000) : scalar(), item(depth + 1));
      return map;
    };
    /** cbor-x's result in the reader's terms: Maps as CborMaps, safe bigints as numbers, bytes as Buffers. */
    const normalise = (value: unknown): unknown => {
      if (typeof value === 'bigint')
        return value >= -(2n ** 53n) + 1n && value <= 2n ** 53n - 1n ? Number(value) : value;
      if (Array.isArray(value)) return value.map(normalise);
      if (value instanceof Map) {
        const keys: unknown[] = [];
        const values: unknown[] = [];
        for (const [k, v] of value) {
          keys.push(normalise(k));
          values.push(normalise(v));
        }
        return new CborMap(keys as CborValue[], values as CborValue[]);
      }
      if (value instanceof Uint8Array && !Buffer.isBuffer(value)) return Buffer.from(value);
      return value;
    };
    for (let round = 0; round < 2000; round++) {
      const bytes = encoder.encode(item(0));
      assert.deepEqual(readCbor(bytes, 'test'), normalise(decoder.decode(bytes)), bytes.toString('hex'));
    }
  });
});
