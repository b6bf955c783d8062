import { strict as assert } from 'node:assert';
import { LwM2mPath } from '../../lib/model/path';
import type {
  LwM2mMultipleResource,
  LwM2mObject,
  LwM2mObjectInstance,
  LwM2mResourceInstance,
  LwM2mSingleResource,
} from '../../lib/model/types';
import { decodeNode, encodeNode } from '../../lib/content';
import { ContentFormat } from '../../lib/content/types';
import { readTlvs } from '../../lib/content/tlv';
import { SPEC_DEVICE_TLV, assertCodecError, hex, instance, model, multiple, single, specDevice } from './fixtures';

const TLV = ContentFormat.TLV;
const p = (text: string) => LwM2mPath.parse(text);

// Vectors of the LwM2M specification (TS 1.0 §6.4.3 / TS Core 1.1 §7.4.3 examples)
const SPEC_ACL_OBJECT = hex(`
  08 00 0E  C1 00 01  C1 01 00  83 02 41 7F 07  C1 03 7F
  08 02 12  C1 00 03  C1 01 00  87 02 41 7F 07 61 01 36 01  C1 03 7F
`);
const SPEC_SERVER_OBJECT = hex('08 00 0F C1 00 01 C4 01 00 01 51 80 C1 06 01 C1 07 55');
const SPEC_OBJ65_INSTANCE = hex(
  '88 00 0C 44 00 00 42 00 00 44 01 00 42 00 01 C8 01 0D 38 36 31 33 38 30 30 37 35 35 35 30 30 C4 02 12 34 56 78',
);
const SPEC_OBJ66_OBJECT = hex(`
  08 00 26 C8 00 0B 6D 79 53 65 72 76 69 63 65 20 31 C8 01 0F 49 6E 74 65 72 6E 65 74 2E 31 35 2E 32 33 34 C4 02 00 43 00 00
  08 01 26 C8 00 0B 6D 79 53 65 72 76 69 63 65 20 32 C8 01 0F 49 6E 74 65 72 6E 65 74 2E 31 35 2E 32 33 35 C4 02 FF FF FF FF
`);

describe('content/tlv', () => {
  describe('specification vectors', () => {
    it('decodes the Device object instance /3/0 (resources without an instance TLV)', () => {
      const node = decodeNode(SPEC_DEVICE_TLV, TLV, p('/3/0'), model) as LwM2mObjectInstance;
      assert.deepEqual(node, specDevice());
      const time = (node.resources.get(13) as LwM2mSingleResource).value as Date;
      assert.equal(time.toISOString(), '2013-05-02T10:40:15.000Z');
    });

    it('encodes the Device object instance /3/0 to exactly the spec bytes', () => {
      assert.equal(encodeNode(specDevice(), TLV, p('/3/0'), model).toString('hex'), SPEC_DEVICE_TLV.toString('hex'));
    });

    it('encodes and decodes /3 with the object instance TLV 08 00 79', () => {
      const object: LwM2mObject = { kind: 'object', id: 3, instances: new Map([[0, specDevice()]]) };
      const bytes = encodeNode(object, TLV, p('/3'), model);
      assert.equal(bytes.subarray(0, 3).toString('hex'), '080079');
      assert.deepEqual(bytes.subarray(3), SPEC_DEVICE_TLV);
      assert.deepEqual(decodeNode(bytes, TLV, p('/3'), model), object);
      // a /3/0 read answered with the instance wrapper is accepted as well
      assert.deepEqual(decodeNode(bytes, TLV, p('/3/0'), model), specDevice());
    });

    it('decodes the multiple object instance example (Access Control /2)', () => {
      const object = decodeNode(SPEC_ACL_OBJECT, TLV, p('/2'), model) as LwM2mObject;
      assert.equal(object.kind, 'object');
      assert.deepEqual([...object.instances.keys()], [0, 2]);
      const i0 = object.instances.get(0) as LwM2mObjectInstance;
      assert.equal((i0.resources.get(0) as LwM2mSingleResource).value, 1);
      assert.equal((i0.resources.get(1) as LwM2mSingleResource).value, 0);
      assert.deepEqual((i0.resources.get(2) as LwM2mMultipleResource).instances, new Map([[127, 7]]));
      assert.equal((i0.resources.get(3) as LwM2mSingleResource).value, 127);
      const i2 = object.instances.get(2) as LwM2mObjectInstance;
      assert.equal((i2.resources.get(0) as LwM2mSingleResource).value, 3);
      assert.deepEqual(
        (i2.resources.get(2) as LwM2mMultipleResource).instances,
        new Map([
          [127, 7],
          [310, 1],
        ]),
      );
      // 16-bit resource instance id 310 (61 01 36) round trips byte for byte
      assert.deepEqual(encodeNode(object, TLV, p('/2'), model), SPEC_ACL_OBJECT);
    });

    it('decodes the Server object example (/1, one instance) and encodes it back', () => {
      const object = decodeNode(SPEC_SERVER_OBJECT, TLV, p('/1'), model) as LwM2mObject;
      const i0 = object.instances.get(0) as LwM2mObjectInstance;
      assert.deepEqual(
        i0,
        instance(0, [
          single(0, 'integer', 1),
          single(1, 'integer', 86400),
          single(6, 'boolean', true),
          single(7, 'string', 'U'),
        ]),
      );
      assert.deepEqual(encodeNode(object, TLV, p('/1'), model), SPEC_SERVER_OBJECT);
    });

    it('decodes the object link examples (objects 65 and 66)', () => {
      const i65 = decodeNode(SPEC_OBJ65_INSTANCE, TLV, p('/65/0'), model);
      assert.deepEqual(
        i65,
        instance(0, [
          multiple(0, 'objlnk', [
            [0, { objectId: 66, instanceId: 0 }],
            [1, { objectId: 66, instanceId: 1 }],
          ]),
          single(1, 'string', '8613800755500'),
          single(2, 'integer', 305419896),
        ]),
      );
      assert.deepEqual(encodeNode(i65, TLV, p('/65/0'), model), SPEC_OBJ65_INSTANCE);

      const o66 = decodeNode(SPEC_OBJ66_OBJECT, TLV, p('/66'), model) as LwM2mObject;
      assert.deepEqual(
        o66.instances.get(0),
        instance(0, [
          single(0, 'string', 'myService 1'),
          single(1, 'string', 'Internet.15.234'),
          single(2, 'objlnk', { objectId: 67, instanceId: 0 }),
        ]),
      );
      assert.deepEqual(
        (o66.instances.get(1)?.resources.get(2) as LwM2mSingleResource).value,
        { objectId: 65535, instanceId: 65535 }, // the null object link
      );
      assert.deepEqual(encodeNode(o66, TLV, p('/66'), model), SPEC_OBJ66_OBJECT);
    });

    it('decodes a single resource /3/0/0 (C8 00 14 ...)', () => {
      const bytes = SPEC_DEVICE_TLV.subarray(0, 23);
      assert.deepEqual(decodeNode(bytes, TLV, p('/3/0/0'), model), single(0, 'string', 'Open Mobile Alliance'));
      assert.deepEqual(encodeNode(single(0, 'string', 'Open Mobile Alliance'), TLV, p('/3/0/0'), model), bytes);
    });

    it('decodes a multiple resource /3/0/7 with and without the multiple resource TLV', () => {
      const expected = multiple(7, 'integer', [
        [0, 3800],
        [1, 5000],
      ]);
      assert.deepEqual(decodeNode(hex('88 07 08 42 00 0E D8 42 01 13 88'), TLV, p('/3/0/7'), model), expected);
      assert.deepEqual(decodeNode(hex('42 00 0E D8 42 01 13 88'), TLV, p('/3/0/7'), model), expected);
      assert.equal(encodeNode(expected, TLV, p('/3/0/7'), model).toString('hex'), '88070842000ed842011388');
    });

    it('decodes a resource instance /3/0/7/1', () => {
      const node = decodeNode(hex('42 01 13 88'), TLV, p('/3/0/7/1'), model) as LwM2mResourceInstance;
      assert.deepEqual(node, { kind: 'resourceInstance', id: 1, type: 'integer', value: 5000 });
      assert.equal(encodeNode(node, TLV, p('/3/0/7/1'), model).toString('hex'), '42011388');
    });

    it('decodes empty payloads as empty object / instance / multiple resource, not as a single resource', () => {
      assert.deepEqual(decodeNode(Buffer.alloc(0), TLV, p('/2'), model), {
        kind: 'object',
        id: 2,
        instances: new Map(),
      });
      assert.deepEqual(decodeNode(Buffer.alloc(0), TLV, p('/2/0'), model), instance(0, []));
      assert.deepEqual(decodeNode(Buffer.alloc(0), TLV, p('/3/0/6'), model), multiple(6, 'integer', []));
      assertCodecError(() => decodeNode(Buffer.alloc(0), TLV, p('/3/0/9'), model), /empty TLV/);
    });

    it('accepts a single-instance object read answered without the instance TLV (instance 0)', () => {
      const object = decodeNode(SPEC_DEVICE_TLV, TLV, p('/3'), model) as LwM2mObject;
      assert.deepEqual(object.instances.get(0), specDevice());
      // but not for a multiple-instance object, where the instance id would be a guess
      assertCodecError(() => decodeNode(hex('C1 00 01'), TLV, p('/2'), model), /without an object instance/);
    });
  });

  describe('integer widths, floats, booleans, time, objlnk', () => {
    const cases: [string, unknown, string][] = [
      ['integer', 0, 'c10100'],
      ['integer', 127, 'c1017f'],
      ['integer', -128, 'c10180'],
      ['integer', 128, 'c2010080'],
      ['integer', -129, 'c201ff7f'],
      ['integer', 32767, 'c2017fff'],
      ['integer', 32768, 'c40100008000'],
      ['integer', -2147483648, 'c40180000000'],
      ['integer', 2147483648, 'c801080000000080000000'],
      ['integer', 9007199254740993n, 'c801080020000000000001'],
      ['integer', -(2n ** 63n), 'c801088000000000000000'],
      ['integer', 2n ** 63n - 1n, 'c801087fffffffffffffff'],
      ['unsigned', 255, 'c102ff'],
      ['unsigned', 256, 'c2020100'],
      ['unsigned', 65535, 'c202ffff'],
      ['unsigned', 4294967295, 'c402ffffffff'],
      ['unsigned', 4294967296, 'c802080000000100000000'],
      ['unsigned', 2n ** 64n - 1n, 'c80208ffffffffffffffff'],
      ['float', 1.5, 'c4033fc00000'],
      ['float', 22.4, 'c803084036666666666666'],
      ['boolean', true, 'c10401'],
      ['boolean', false, 'c10400'],
      ['time', new Date(1367491215000), 'c406' + '5182428f'],
      ['time', new Date(-1000), 'c106ff'],
      ['objlnk', { objectId: 3, instanceId: 0 }, 'c40700030000'],
      ['opaque', Buffer.from([1, 2, 3]), 'c305010203'],
      ['string', '', 'c000'],
      ['corelnk', '</3/0>', 'c608' + Buffer.from('</3/0>').toString('hex')],
    ];
    const resourceOf: Record<string, number> = {
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
    for (const [type, value, expected] of cases) {
      it(`${type} ${value instanceof Date ? value.toISOString() : String(value)} <-> ${expected}`, () => {
        const rid = resourceOf[type];
        const path = p(`/9999/0/${rid}`);
        const node = single(rid, type as never, value as never);
        const bytes = encodeNode(node, TLV, path, model);
        assert.equal(bytes.toString('hex'), expected);
        assert.deepEqual(decodeNode(bytes, TLV, path, model), node);
      });
    }

    it('decodes integers sent wider than needed and rejects widths other than 1/2/4/8', () => {
      assert.equal((decodeNode(hex('C4 09 00 00 00 64'), TLV, p('/3/0/9'), model) as LwM2mSingleResource).value, 100);
      assert.equal(
        (decodeNode(hex('C8 09 08 00 00 00 00 00 00 00 64'), TLV, p('/3/0/9'), model) as LwM2mSingleResource).value,
        100,
      );
      assertCodecError(
        () => decodeNode(hex('C3 09 00 00 64'), TLV, p('/3/0/9'), model),
        /3 bytes, expected 1, 2, 4 or 8/,
      );
      assertCodecError(() => decodeNode(hex('C0 09'), TLV, p('/3/0/9'), model), /0 bytes/);
    });

    it('uses 4-byte floats only when exact, decodes both widths', () => {
      assert.equal(
        (decodeNode(hex('C4 03 41 B3 33 33'), TLV, p('/9999/0/3'), model) as LwM2mSingleResource).value,
        Math.fround(22.4),
      );
      assert.equal(encodeNode(single(3, 'float', 0.1), TLV, p('/9999/0/3'), model).length, 3 + 8);
      assertCodecError(() => decodeNode(hex('C2 03 41 B3'), TLV, p('/9999/0/3'), model), /float of 2 bytes/);
    });

    it('rejects booleans other than 0/1 and objlnk of the wrong size', () => {
      assertCodecError(() => decodeNode(hex('C1 04 02'), TLV, p('/9999/0/4'), model), /boolean/);
      assertCodecError(() => decodeNode(hex('C3 07 00 03 00'), TLV, p('/9999/0/7'), model), /object link of 3 bytes/);
    });

    it('rejects strings that are not UTF-8', () => {
      assertCodecError(() => decodeNode(hex('C2 00 C3 28'), TLV, p('/3/0/0'), model), /not valid UTF-8/);
    });

    it('encodes ids above 255 with 16-bit identifiers and long values with 16/24-bit lengths', () => {
      const big = 'x'.repeat(300);
      const bytes = encodeNode(single(5701, 'string', big), TLV, p('/3303/0/5701'), model);
      assert.equal(bytes.subarray(0, 5).toString('hex'), 'f0' + '1645' + '012c');
      assert.equal((decodeNode(bytes, TLV, p('/3303/0/5701'), model) as LwM2mSingleResource).value, big);
      const huge = Buffer.alloc(70000, 7);
      const encoded = encodeNode(single(5, 'opaque', huge), TLV, p('/9999/0/5'), model);
      assert.equal(encoded.subarray(0, 5).toString('hex'), 'd805011170');
      assert.deepEqual((decodeNode(encoded, TLV, p('/9999/0/5'), model) as LwM2mSingleResource).value, huge);
    });

    it('decodes resources the model does not know as opaque', () => {
      const node = decodeNode(hex('C3 63 61 62 63'), TLV, p('/3/0/99'), model);
      assert.deepEqual(node, single(99, 'opaque', Buffer.from('abc')));
      assert.deepEqual(
        decodeNode(hex('C1 00 01'), TLV, p('/777/0'), model),
        instance(0, [single(0, 'opaque', Buffer.from([1]))]),
      );
    });
  });

  describe('malformed input', () => {
    const cases: [string, string, string, RegExp][] = [
      ['truncated header', 'C8', '/3/0', /header needs 3 bytes, 1 left/],
      ['truncated 16-bit id', 'E1 00', '/3/0', /header needs/],
      ['length beyond payload', 'C8 00 14 4F 70', '/3/0', /length 20 exceeds the 2 bytes left/],
      ['24-bit length beyond payload', 'D8 00 FF FF FF 00', '/3/0', /length 16777215 exceeds/],
      ['nested length beyond its container', '88 07 03 42 00 0E', '/3/0', /length 2 exceeds the 1 bytes left/],
      ['resource instance at instance level', '41 00 01', '/3/0', /expected a resource, got a resource instance/],
      [
        'object instance inside a multiple resource',
        '82 06 00 00',
        '/3/0',
        /expected a resource instance, got a object instance/,
      ],
      ['duplicate resource', 'C1 09 64 C1 09 65', '/3/0', /duplicate resource 9/],
      ['duplicate resource instance', '86 06 41 00 01 41 00 05', '/3/0', /duplicate resource instance 0/],
      ['duplicate object instance', '00 00 00 00', '/2', /duplicate object instance 0/],
      ['mixed levels', '00 00 C1 00 01', '/2', /mixes object instances with resources/],
      ['wrong resource id for the path', 'C1 0A 0F', '/3/0/9', /resource 10, expected 9/],
      ['wrong instance id in a wrapper', '03 01 C1 09 64', '/3/0', /object instance 1, expected 0/],
      ['single value for a multiple resource', 'C1 06 01', '/3/0', /defines a multiple resource/],
      ['multiple value for a single resource', '83 09 41 00 01', '/3/0', /defines a single resource/],
      ['instances for a single resource path', '41 00 01', '/3/0/9', /resource instances for a single resource/],
      ['two TLVs for one resource', 'C1 09 64 C1 09 64', '/3/0/9', /expected one resource TLV, got 2/],
      ['trailing garbage after a resource', 'C1 09 64 FF', '/3/0/9', /header needs/],
      ['executable resource value', 'C1 04 01', '/3/0', /executable/],
      ['resource instance of a single resource', '41 00 01', '/3/0/9/0', /single resource/],
      ['wrong resource instance id', '41 01 01', '/3/0/6/0', /resource instance 1, expected 0/],
    ];
    for (const [name, bytes, path, pattern] of cases) {
      it(`rejects ${name}`, () => {
        assertCodecError(() => decodeNode(hex(bytes), TLV, p(path), model), pattern);
      });
    }

    it('rejects every truncation of the spec Device payload', () => {
      for (let length = 1; length < SPEC_DEVICE_TLV.length; length++) {
        let ok = false;
        try {
          decodeNode(SPEC_DEVICE_TLV.subarray(0, length), TLV, p('/3/0'), model);
          ok = true;
        } catch (err) {
          assert.equal((err as Error).name, 'ContentCodecError');
        }
        // a cut exactly between two resources is a valid, shorter instance
        if (ok)
          assert.ok(
            [23, 48, 60, 65, 73, 84, 93, 96, 99, 104, 110, 118].includes(length),
            `accepted a cut at ${length}`,
          );
      }
    });

    it('readTlvs reports offsets of nested entries', () => {
      const entries = readTlvs(SPEC_DEVICE_TLV, 0, SPEC_DEVICE_TLV.length);
      assert.equal(entries.length, 13);
      assert.deepEqual(
        entries.slice(0, 2).map((e) => [e.type, e.id, e.at, e.start, e.end]),
        [
          [3, 0, 0, 3, 23],
          [3, 1, 23, 26, 48],
        ],
      );
    });
  });

  describe('encoding checks', () => {
    it('rejects values whose JS type does not fit the resource type', () => {
      assertCodecError(
        () => encodeNode(single(9, 'integer', 'abc'), TLV, p('/3/0/9'), model),
        /string "abc" does not fit resource type integer/,
      );
      assertCodecError(
        () => encodeNode(single(9, 'integer', 1.5), TLV, p('/3/0/9'), model),
        /does not fit resource type integer/,
      );
      assertCodecError(() => encodeNode(single(9, 'integer', 2n ** 63n), TLV, p('/3/0/9'), model), /out of range/);
      assertCodecError(() => encodeNode(single(2, 'unsigned', -1), TLV, p('/9999/0/2'), model), /out of range/);
      assertCodecError(
        () => encodeNode(single(13, 'time', 1367491215), TLV, p('/3/0/13'), model),
        /does not fit resource type time/,
      );
      assertCodecError(() => encodeNode(single(13, 'time', new Date(NaN)), TLV, p('/3/0/13'), model), /Invalid Date/);
      assertCodecError(() =>
        encodeNode(single(7, 'objlnk', { objectId: 70000, instanceId: 0 }), TLV, p('/9999/0/7'), model),
      );
      assertCodecError(() => encodeNode(single(4, 'none', 1), TLV, p('/3/0/4'), model), /executable/);
    });

    it('uses the model type over the node type, and the node type for unknown resources', () => {
      // the node says float but the model says integer: encoded as an integer
      assert.equal(encodeNode(single(9, 'float', 100), TLV, p('/3/0/9'), model).toString('hex'), 'c10964');
      assert.equal(encodeNode(single(50, 'float', 1.5), TLV, p('/3/0/50'), model).toString('hex'), 'c4323fc00000');
    });

    it('rejects a node that does not match the path', () => {
      assertCodecError(() => encodeNode(specDevice(), TLV, p('/3'), model), /instance node at path \/3/);
      assertCodecError(() => encodeNode(single(1, 'string', 'x'), TLV, p('/3/0/0'), model), /does not match path/);
      assertCodecError(() => encodeNode(single(6, 'integer', 1), TLV, p('/3/0/6'), model), /multiple resource/);
      assertCodecError(
        () => encodeNode(multiple(9, 'integer', [[0, 1]]), TLV, p('/3/0/9'), model),
        /single resource, got multiple instances/,
      );
    });
  });
});
