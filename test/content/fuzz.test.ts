import { strict as assert } from 'node:assert';
import { LwM2mPath } from '../../lib/model/path';
import {
  decodeDiscover,
  decodeNode,
  decodeNodes,
  decodePatch,
  decodePaths,
  decodeTimestamped,
  encodeNode,
  encodePatch,
  parseLinkFormat,
} from '../../lib/content';
import { ContentCodecError, ContentFormat } from '../../lib/content/types';
import { SPEC_DEVICE_TLV, allTypes, model, prng, single, specDevice } from './fixtures';

const FORMATS = [0, 42, 60, 110, 112, 1542, 1543, 11542, 11543, 11544];
const PATHS = [
  '/3',
  '/3/0',
  '/3/0/0',
  '/3/0/7',
  '/3/0/7/1',
  '/9999/0',
  '/9999/0/3',
  '/9999/0/6',
  '/65/0',
  '/777/1/2',
].map((t) => LwM2mPath.parse(t));

/** Runs fn; only success or a ContentCodecError is acceptable. Returns true on success. */
function onlyCodecErrors(fn: () => unknown, describeInput: () => string): boolean {
  try {
    fn();
    return true;
  } catch (err) {
    if (!(err instanceof ContentCodecError)) {
      assert.fail(`${(err as Error)?.name}: ${(err as Error)?.message} for ${describeInput()}`);
    }
    assert.ok(err.message.length > 0);
    return false;
  }
}

let rotation = 0;

/** Every decoder on `bytes`; each format at 4 of the paths (rotating, so all paths are covered). */
function decodeEverywhere(bytes: Buffer): number {
  let successes = 0;
  const what = () => bytes.toString('hex');
  for (const format of FORMATS) {
    for (let k = 0; k < 4; k++) {
      const path = PATHS[rotation++ % PATHS.length];
      if (
        onlyCodecErrors(
          () => decodeNode(bytes, format, path, model),
          () => `${format} ${path} ${what()}`,
        )
      )
        successes++;
    }
  }
  for (const format of [110, 112, 11543, 11544, 320, 322]) {
    onlyCodecErrors(() => decodeTimestamped(bytes, format, model), what);
    onlyCodecErrors(() => decodeTimestamped(bytes, format, model, PATHS[1]), what);
    onlyCodecErrors(() => decodeNodes(bytes, format, model), what);
    onlyCodecErrors(() => decodeNodes(bytes, format, model, [PATHS[1], PATHS[4]]), what);
    onlyCodecErrors(() => decodePaths(bytes, format), what);
  }
  for (const format of [110, 112, 320, 322, 11544]) onlyCodecErrors(() => decodePatch(bytes, format, model), what);
  const text = bytes.toString('latin1');
  onlyCodecErrors(() => parseLinkFormat(text), what);
  onlyCodecErrors(() => decodeDiscover(text), what);
  return successes;
}

function randomBuffer(random: () => number, maxLength: number): Buffer {
  const length = Math.floor(random() * maxLength);
  const out = Buffer.allocUnsafe(length);
  for (let i = 0; i < length; i++) out[i] = Math.floor(random() * 256);
  return out;
}

/** Random bytes biased towards each format's structural characters, so parsers get past the first byte. */
function structuredBuffer(random: () => number): Buffer {
  const alphabets = ['[]{}",:0123456789-.eEnvbstvlod/\\u ', '<>;,="/0123456789 rtctver.\\'];
  const choice = random();
  if (choice < 0.4) {
    const alphabet = alphabets[random() < 0.5 ? 0 : 1];
    const length = Math.floor(random() * 48);
    let s = '';
    for (let i = 0; i < length; i++) s += alphabet[Math.floor(random() * alphabet.length)];
    return Buffer.from(s, 'latin1');
  }
  // CBOR / TLV-ish: small major types, maps, arrays, byte-string headers, TLV type bytes
  const heads = [
    0x81, 0x82, 0xa1, 0xa2, 0x21, 0x00, 0x02, 0x03, 0x08, 0x61, 0x62, 0x41, 0x42, 0xc1, 0xc8, 0x88, 0x08, 0x1b, 0xd8,
    0x9f, 0xbf, 0xff, 0xfb, 0xf9, 0x83, 0x84, 0x5f, 0x7f, 0xf6, 0xc4, 0x19, 0xa0,
  ];
  const length = Math.floor(random() * 40);
  const out = Buffer.allocUnsafe(length);
  for (let i = 0; i < length; i++)
    out[i] = random() < 0.5 ? heads[Math.floor(random() * heads.length)] : Math.floor(random() * 256);
  return out;
}

describe('content fuzzing: decoders only ever throw ContentCodecError', function () {
  this.timeout(60000);

  it('2000 random buffers through every decoder, format and path', () => {
    const random = prng(0xc0ffee);
    for (let i = 0; i < 2000; i++) decodeEverywhere(randomBuffer(random, i < 1000 ? 16 : 200));
  });

  it('2000 structure-biased buffers', () => {
    const random = prng(42);
    for (let i = 0; i < 2000; i++) decodeEverywhere(structuredBuffer(random));
  });

  it('2000 mutations (flip, truncate, insert, duplicate) of valid payloads in every format', () => {
    const random = prng(7);
    const seeds: Buffer[] = [SPEC_DEVICE_TLV];
    for (const format of [110, 112, 11543, 11542, 11544])
      seeds.push(encodeNode(specDevice(), format, LwM2mPath.parse('/3/0'), model));
    seeds.push(encodeNode(allTypes(0), 11544, LwM2mPath.parse('/9999/0'), model));
    const patch = new Map([['/3/0/14', single(14, 'string', '+01:00')]]);
    for (const format of [320, 322, 11544])
      seeds.push(encodePatch(patch, [LwM2mPath.parse('/3/0/7/1'), LwM2mPath.parse('/9999/0/12/3')], format, model));
    // LwM2M CBOR with indefinite-length maps, arrays and strings: {_ [_ 3, 0]: {_ 0: (_ "ab", "c"), 7: {}}}
    seeds.push(Buffer.from('bf9f0300ffbf007f6261626163ff07a0ffff', 'hex'));
    seeds.push(Buffer.from('</>;rt="oma.lwm2m";ct="60 110",</1/0>;ver=1.1,</3/0/7>;dim=2;gt=1.5'));
    seeds.push(encodeNode(single(13, 'time', new Date(1e12)), 60, LwM2mPath.parse('/3/0/13'), model));
    let accepted = 0;
    for (let i = 0; i < 2000; i++) {
      const seed = seeds[i % seeds.length];
      let bytes = Buffer.from(seed);
      const mutations = 1 + Math.floor(random() * 3);
      for (let m = 0; m < mutations; m++) {
        const at = Math.floor(random() * Math.max(1, bytes.length));
        const kind = random();
        if (kind < 0.4 && bytes.length > 0) bytes[at] = Math.floor(random() * 256);
        else if (kind < 0.6) bytes = bytes.subarray(0, at);
        else if (kind < 0.8)
          bytes = Buffer.concat([bytes.subarray(0, at), Buffer.from([Math.floor(random() * 256)]), bytes.subarray(at)]);
        else bytes = Buffer.concat([bytes.subarray(0, at), bytes.subarray(Math.floor(at / 2))]);
      }
      accepted += decodeEverywhere(bytes);
    }
    assert.ok(accepted > 0, 'some mutations still decode (the fuzzer reaches deep code)');
  });

  it('the CBOR decoder is not left in a bad state by hostile input (records, shared refs, packed tables)', () => {
    const hostile = [
      'd87882a1616101a1616202', // tag 120
      'd8698301828061618101', // record extension tag 105
      'd81c81d81d00', // shared value tags 28/29
      'd83384808080f6', // packed table tag 51
      'd81b826552656745787061', // tag 27 generic object
      '9f9f9f9f9f9f', // unterminated indefinite arrays
      'c2581a' + 'ff'.repeat(3), // truncated bignum
      '5bffffffffffffffff', // absurd byte string length
      '9bffffffffffffffff', // absurd array length
    ];
    for (const h of hostile) {
      for (const format of [60, 112, 11544]) {
        onlyCodecErrors(
          () => decodeNode(Buffer.from(h, 'hex'), format, LwM2mPath.parse('/3/0/9'), model),
          () => h,
        );
      }
    }
    const valid = encodeNode(specDevice(), ContentFormat.SENML_CBOR, LwM2mPath.parse('/3/0'), model);
    assert.deepEqual(decodeNode(valid, ContentFormat.SENML_CBOR, LwM2mPath.parse('/3/0'), model), specDevice());
  });

  it('deeply nested input does not overflow the stack', () => {
    const deepJson = Buffer.from('['.repeat(100000));
    const deepCbor = Buffer.alloc(100000, 0x81);
    const deepMaps = Buffer.from('a101'.repeat(50000), 'hex'); // {1: {1: {1: ...}}}
    const deepStrings = Buffer.concat([Buffer.alloc(50000, 0x81), Buffer.from('5f4101ff', 'hex')]);
    for (const path of PATHS) {
      onlyCodecErrors(
        () => decodeNode(deepJson, 110, path, model),
        () => 'deep JSON',
      );
      onlyCodecErrors(
        () => decodeNode(deepCbor, 112, path, model),
        () => 'deep CBOR',
      );
      for (const deep of [deepCbor, deepMaps, deepStrings]) {
        onlyCodecErrors(
          () => decodeNode(deep, 11544, path, model),
          () => 'deep LwM2M CBOR',
        );
      }
    }
  });
});
