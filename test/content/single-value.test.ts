import { strict as assert } from 'node:assert';
import { LwM2mPath } from '../../lib/model/path';
import type { LwM2mSingleResource, ResourceType, ResourceValue } from '../../lib/model/types';
import { decodeNode, encodeNode } from '../../lib/content';
import { ContentFormat } from '../../lib/content/types';
import { assertCodecError, hex, instance, model, multiple, single } from './fixtures';

const p = (text: string) => LwM2mPath.parse(text);
const TEXT = ContentFormat.TEXT;
const OPAQUE = ContentFormat.OPAQUE;
const CBOR = ContentFormat.CBOR;

const RID: Record<string, number> = {
  string: 0,
  integer: 1,
  unsigned: 2,
  float: 3,
  boolean: 4,
  opaque: 5,
  time: 6,
  objlnk: 7,
  corelnk: 8,
};

function label(value: unknown): string {
  if (value instanceof Date) return value.toISOString();
  if (Buffer.isBuffer(value)) return `<${value.toString('hex')}>`;
  if (typeof value === 'object') return JSON.stringify(value);
  return JSON.stringify(typeof value === 'bigint' ? `${value}n` : value);
}

describe('content/text (text/plain)', () => {
  const vectors: [ResourceType, ResourceValue, string][] = [
    ['string', 'Open Mobile Alliance', 'Open Mobile Alliance'],
    ['string', 'héllo ✓ 𝄞', 'héllo ✓ 𝄞'],
    ['string', '', ''],
    ['integer', 100, '100'],
    ['integer', -42, '-42'],
    ['integer', 9007199254740991, '9007199254740991'],
    ['integer', 9007199254740993n, '9007199254740993'],
    ['integer', -(2n ** 63n), '-9223372036854775808'],
    ['unsigned', 2n ** 64n - 1n, '18446744073709551615'],
    ['float', 22.4, '22.4'],
    ['float', -0.001, '-0.001'],
    ['float', 1e300, '1e+300'],
    ['boolean', true, '1'],
    ['boolean', false, '0'],
    ['time', new Date(1367491215000), '1367491215'],
    ['objlnk', { objectId: 3, instanceId: 0 }, '3:0'],
    ['objlnk', { objectId: 65535, instanceId: 65535 }, '65535:65535'],
    ['opaque', Buffer.from([1, 2, 3, 4, 5]), 'AQIDBAU='],
    ['corelnk', '</3/0>;ver=1.1', '</3/0>;ver=1.1'],
  ];
  for (const [type, value, text] of vectors) {
    it(`${type} ${label(value)} <-> "${text}"`, () => {
      const path = p(`/9999/0/${RID[type]}`);
      const node = single(RID[type], type, value);
      assert.equal(encodeNode(node, TEXT, path, model).toString('utf8'), text);
      assert.deepEqual(decodeNode(Buffer.from(text, 'utf8'), TEXT, path, model), node);
    });
  }

  it('decodes a resource instance and types it by the model', () => {
    assert.deepEqual(decodeNode(Buffer.from('3800'), TEXT, p('/3/0/7/0'), model), {
      kind: 'resourceInstance',
      id: 0,
      type: 'integer',
      value: 3800,
    });
    assert.deepEqual(decodeNode(Buffer.from('100'), TEXT, p('/3/0/9'), model), single(9, 'integer', 100));
  });

  it('accepts surrounding whitespace for numbers but not inside strings', () => {
    assert.equal((decodeNode(Buffer.from(' 100\n'), TEXT, p('/3/0/9'), model) as LwM2mSingleResource).value, 100);
    assert.equal((decodeNode(Buffer.from(' x\n'), TEXT, p('/3/0/0'), model) as LwM2mSingleResource).value, ' x\n');
  });

  it('decodes base64url opaque too, and resources the model does not know as strings', () => {
    assert.deepEqual(
      (decodeNode(Buffer.from('-_8'), TEXT, p('/5/0/0'), model) as LwM2mSingleResource).value,
      hex('fbff'),
    );
    assert.deepEqual(decodeNode(Buffer.from('42'), TEXT, p('/3/0/99'), model), single(99, 'string', '42'));
  });

  const bad: [string, string, RegExp][] = [
    ['/3/0/9', 'abc', /"abc" is not a decimal integer/],
    ['/3/0/9', '1.5', /not a decimal integer/],
    ['/3/0/9', '', /not a decimal integer/],
    ['/3/0/9', '0x10', /not a decimal integer/],
    ['/3/0/9', '99999999999999999999', /out of range/],
    ['/9999/0/2', '-1', /negative for an unsigned/],
    ['/9999/0/3', 'NaN', /not a decimal number/],
    ['/9999/0/3', 'Infinity', /not a decimal number/],
    ['/9999/0/3', '1e', /not a decimal number/],
    ['/9999/0/3', '', /not a decimal number/],
    ['/9999/0/4', 'true', /not a boolean/],
    ['/9999/0/4', '2', /not a boolean/],
    ['/9999/0/6', '2013-05-02', /not a time/],
    ['/9999/0/6', '99999999999999', /out of range/],
    ['/9999/0/7', '3', /invalid object link/],
    ['/9999/0/7', '3:70000', /invalid object link/],
    ['/9999/0/7', ':0', /invalid object link/],
    ['/5/0/0', '!,-INVALID$_', /invalid base64 character/],
    ['/5/0/0', 'AQIDBAU==', /invalid base64 length/],
    ['/3/0/4', '1', /executable/],
  ];
  for (const [path, text, pattern] of bad) {
    it(`rejects ${JSON.stringify(text)} for ${path}`, () => {
      assertCodecError(() => decodeNode(Buffer.from(text, 'utf8'), TEXT, p(path), model), pattern);
    });
  }

  it('rejects invalid UTF-8, paths above resources and multiple resources', () => {
    assertCodecError(() => decodeNode(hex('c328'), TEXT, p('/3/0/0'), model), /not valid UTF-8/);
    assertCodecError(
      () => decodeNode(Buffer.from('1'), TEXT, p('/3/0'), model),
      /not a resource or resource instance path/,
    );
    assertCodecError(() => decodeNode(Buffer.from('1'), TEXT, p('/3/0/6'), model), /multiple resource/);
    assertCodecError(() => decodeNode(Buffer.from('1'), TEXT, p('/3/0/9/0'), model), /single resource/);
  });

  it('refuses to encode multi-value nodes (4.06) and values of the wrong JS type (4.00)', () => {
    assertCodecError(() => encodeNode(instance(0, []), TEXT, p('/3/0'), model), /single value/, '4.06');
    assertCodecError(
      () => encodeNode(multiple(6, 'integer', [[0, 1]]), TEXT, p('/3/0/6'), model),
      /single value/,
      '4.06',
    );
    assertCodecError(
      () => encodeNode(single(9, 'integer', '100'), TEXT, p('/3/0/9'), model),
      /does not fit resource type integer/,
    );
    assertCodecError(
      () => encodeNode(single(3, 'float', NaN), TEXT, p('/9999/0/3'), model),
      /cannot be represented/,
      '4.06',
    );
    assertCodecError(
      () => encodeNode(single(4, 'boolean', 1), TEXT, p('/9999/0/4'), model),
      /does not fit resource type boolean/,
    );
  });
});

describe('content/opaque (application/octet-stream)', () => {
  it('decodes the payload itself for an opaque resource or instance, without copying', () => {
    const payload = Buffer.from([0, 1, 2, 255]);
    const node = decodeNode(payload, OPAQUE, p('/5/0/0'), model) as LwM2mSingleResource;
    assert.deepEqual(node, single(0, 'opaque', payload));
    assert.equal(node.value, payload);
    const ri = decodeNode(payload, OPAQUE, p('/9999/0/12/3'), model);
    assert.deepEqual(ri, { kind: 'resourceInstance', id: 3, type: 'opaque', value: payload });
    assert.deepEqual(decodeNode(payload, OPAQUE, p('/3/0/99'), model), single(99, 'opaque', payload));
  });

  it('encodes the bytes as they are (Buffer or Uint8Array)', () => {
    const bytes = Buffer.from('firmware');
    assert.equal(encodeNode(single(0, 'opaque', bytes), OPAQUE, p('/5/0/0'), model), bytes);
    const u8 = new Uint8Array([9, 8, 7]);
    assert.deepEqual(encodeNode(single(0, 'opaque', u8 as Buffer), OPAQUE, p('/5/0/0'), model), Buffer.from([9, 8, 7]));
  });

  it('refuses other resource types and shapes', () => {
    assertCodecError(() => decodeNode(Buffer.from('x'), OPAQUE, p('/3/0/0'), model), /only for opaque resources/);
    assertCodecError(() => decodeNode(Buffer.from('x'), OPAQUE, p('/5/0'), model), /not a resource/);
    assertCodecError(() => encodeNode(single(0, 'string', 'x'), OPAQUE, p('/3/0/0'), model), /only for opaque/, '4.06');
    assertCodecError(
      () => encodeNode(single(0, 'opaque', 'x'), OPAQUE, p('/5/0/0'), model),
      /does not fit resource type opaque/,
    );
  });
});

describe('content/cbor (application/cbor, single value)', () => {
  const vectors: [ResourceType, ResourceValue, string][] = [
    ['string', 'abc', '63616263'],
    ['integer', 100, '1864'],
    ['integer', -500, '3901f3'],
    ['integer', 4294967296, '1b0000000100000000'],
    ['integer', -(2n ** 63n), '3b7fffffffffffffff'],
    ['unsigned', 2n ** 64n - 1n, '1bffffffffffffffff'],
    ['float', 1.5, 'fa3fc00000'],
    ['float', 22.4, 'fb4036666666666666'],
    ['float', 22, 'fa41b00000'],
    ['boolean', true, 'f5'],
    ['boolean', false, 'f4'],
    ['opaque', Buffer.from([1, 2]), '420102'],
    ['time', new Date(1367491215000), '1a5182428f'],
    ['objlnk', { objectId: 3, instanceId: 0 }, '63333a30'],
    ['corelnk', '</1>', '643c2f313e'],
  ];
  for (const [type, value, expected] of vectors) {
    it(`${type} ${label(value)} <-> ${expected}`, () => {
      const path = p(`/9999/0/${RID[type]}`);
      const node = single(RID[type], type, value);
      assert.equal(encodeNode(node, CBOR, path, model).toString('hex'), expected);
      assert.deepEqual(decodeNode(hex(expected), CBOR, path, model), node);
    });
  }

  it('accepts an integer for a float, tag 1 for a time, and types unknown resources from CBOR', () => {
    assert.equal((decodeNode(hex('16'), CBOR, p('/9999/0/3'), model) as LwM2mSingleResource).value, 22);
    assert.deepEqual(
      (decodeNode(hex('c11a5182428f'), CBOR, p('/9999/0/6'), model) as LwM2mSingleResource).value,
      new Date(1367491215000),
    );
    assert.deepEqual(decodeNode(hex('f93e00'), CBOR, p('/3/0/99'), model), single(99, 'float', 1.5));
    assert.deepEqual(
      decodeNode(hex('1b0020000000000001'), CBOR, p('/3/0/99'), model),
      single(99, 'integer', 9007199254740993n),
    );
  });

  it('rejects garbage, trailing bytes and type mismatches', () => {
    assertCodecError(() => decodeNode(hex(''), CBOR, p('/3/0/9'), model), /empty payload/);
    assertCodecError(() => decodeNode(hex('1a0000'), CBOR, p('/3/0/9'), model), /invalid CBOR/);
    assertCodecError(() => decodeNode(hex('0101'), CBOR, p('/3/0/9'), model), /invalid CBOR/);
    assertCodecError(() => decodeNode(hex('63616263'), CBOR, p('/3/0/9'), model), /does not fit resource type integer/);
    assertCodecError(() => decodeNode(hex('f97e00'), CBOR, p('/3/0/9'), model), /not an integer/);
    assertCodecError(() => decodeNode(hex('20'), CBOR, p('/9999/0/2'), model), /negative/);
    assertCodecError(() => decodeNode(hex('a0'), CBOR, p('/3/0/99'), model), /not a resource value/);
    assertCodecError(() => decodeNode(hex('63333a'), CBOR, p('/9999/0/7'), model), /invalid CBOR/);
    assertCodecError(() => decodeNode(hex('62333a'), CBOR, p('/9999/0/7'), model), /invalid object link/);
  });
});
