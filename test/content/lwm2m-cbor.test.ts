/**
 * LwM2M CBOR (11544, LwM2M 1.2 Core, Data Formats). The byte vectors are built by hand from the
 * format's rules (nested maps keyed by path ids, array keys for several levels, CBOR values, time
 * as tag 1); each carries its CBOR diagnostic notation, and the first ones are also checked against
 * cbor-x's own decoding of the bytes so that the hex and the notation agree.
 */
import { strict as assert } from 'node:assert';
import { Decoder } from 'cbor-x';
import { LwM2mPath } from '../../lib/model/path';
import type { LwM2mNode, LwM2mObject } from '../../lib/model/types';
import {
  decodeNode,
  decodeNodes,
  decodePaths,
  decodePatch,
  decodeTimestamped,
  encodeNode,
  encodeNodes,
  encodePatch,
  encodePaths,
} from '../../lib/content';
import { ContentFormat } from '../../lib/content/types';
import { allTypes, assertCodecError, hex, instance, model, multiple, single, specDevice } from './fixtures';

const p = (text: string) => LwM2mPath.parse(text);
const F = ContentFormat.LWM2M_CBOR;
const plainCbor = new Decoder({ mapsAsObjects: false, useRecords: false });

/**
 * The Device instance of the specification examples, read at /3/0 (the ids of the read path folded
 * into one array key, resources nested below):
 *
 * {[3, 0]: {0: "Open Mobile Alliance", 1: "Lightweight M2M Client", 2: "345000123", 3: "1.0",
 *   6: {0: 1, 1: 5}, 7: {0: 3800, 1: 5000}, 8: {0: 125, 1: 900}, 9: 100, 10: 15, 11: {0: 0},
 *   13: 1(1367491215), 14: "+02:00", 16: "U"}}
 */
const SPEC_DEVICE_CBOR = hex(
  `
  a1                                        # map(1)
    82 03 00                                #   [3, 0]
    ad                                      #   map(13)
      00 74 4f70656e204d6f62696c6520416c6c69616e6365      # 0: "Open Mobile Alliance"
      01 76 4c69676874776569676874204d324d20436c69656e74 # 1: "Lightweight M2M Client"
      02 69 333435303030313233              # 2: "345000123"
      03 63 312e30                          # 3: "1.0"
      06 a2 00 01 01 05                     # 6: {0: 1, 1: 5}
      07 a2 00 19 0ed8 01 19 1388           # 7: {0: 3800, 1: 5000}
      08 a2 00 18 7d 01 19 0384             # 8: {0: 125, 1: 900}
      09 18 64                              # 9: 100
      0a 0f                                 # 10: 15
      0b a1 00 00                           # 11: {0: 0}
      0d c1 1a 5182428f                     # 13: 1(1367491215)
      0e 66 2b30323a3030                    # 14: "+02:00"
      10 61 55                              # 16: "U"
`.replace(/#[^\n]*/g, ''),
);

describe('content/lwm2m-cbor (11544)', () => {
  describe('hand-built vectors', () => {
    it('the Device instance: the bytes say what the diagnostic notation says (cbor-x)', () => {
      const expected = new Map<unknown, unknown>([
        [
          [3, 0],
          new Map<number, unknown>([
            [0, 'Open Mobile Alliance'],
            [1, 'Lightweight M2M Client'],
            [2, '345000123'],
            [3, '1.0'],
            [
              6,
              new Map([
                [0, 1],
                [1, 5],
              ]),
            ],
            [
              7,
              new Map([
                [0, 3800],
                [1, 5000],
              ]),
            ],
            [
              8,
              new Map([
                [0, 125],
                [1, 900],
              ]),
            ],
            [9, 100],
            [10, 15],
            [11, new Map([[0, 0]])],
            [13, new Date(1367491215000)], // cbor-x reads tag 1 as a Date
            [14, '+02:00'],
            [16, 'U'],
          ]),
        ],
      ]);
      assert.deepEqual(plainCbor.decode(SPEC_DEVICE_CBOR), expected);
    });

    it('decodes and encodes the Device instance (read of /3/0 and of the single-instance object /3)', () => {
      assert.deepEqual(decodeNode(SPEC_DEVICE_CBOR, F, p('/3/0'), model), specDevice());
      assert.equal(encodeNode(specDevice(), F, p('/3/0'), model).toString('hex'), SPEC_DEVICE_CBOR.toString('hex'));
      const object: LwM2mObject = { kind: 'object', id: 3, instances: new Map([[0, specDevice()]]) };
      // the object /3 with its one instance folds into the same bytes
      assert.equal(encodeNode(object, F, p('/3'), model).toString('hex'), SPEC_DEVICE_CBOR.toString('hex'));
      assert.deepEqual(decodeNode(SPEC_DEVICE_CBOR, F, p('/3'), model), object);
    });

    it('a resource, a multiple resource, a resource instance', () => {
      const vectors: [string, string, LwM2mNode, unknown][] = [
        // {[3, 0, 9]: 100}
        ['/3/0/9', 'a183 030009 1864', single(9, 'integer', 100), new Map([[[3, 0, 9], 100]])],
        // {[3, 0, 7]: {0: 3800, 1: 5000}}
        [
          '/3/0/7',
          'a183 030007 a2 00190ed8 01191388',
          multiple(7, 'integer', [
            [0, 3800],
            [1, 5000],
          ]),
          new Map([
            [
              [3, 0, 7],
              new Map([
                [0, 3800],
                [1, 5000],
              ]),
            ],
          ]),
        ],
        // {[3, 0, 7, 1]: 5000}
        [
          '/3/0/7/1',
          'a184 03000701 191388',
          { kind: 'resourceInstance', id: 1, type: 'integer', value: 5000 },
          new Map([[[3, 0, 7, 1], 5000]]),
        ],
        // {[3, 0, 14]: "+02:00"}
        ['/3/0/14', 'a183 03000e 66 2b30323a3030', single(14, 'string', '+02:00'), new Map([[[3, 0, 14], '+02:00']])],
      ];
      for (const [text, bytesHex, node, diagnostic] of vectors) {
        const bytes = hex(bytesHex);
        assert.deepEqual(plainCbor.decode(bytes), diagnostic, text);
        assert.deepEqual(decodeNode(bytes, F, p(text), model), node, text);
        assert.equal(encodeNode(node, F, p(text), model).toString('hex'), bytes.toString('hex'), text);
      }
    });

    it('an object with two instances stays nested below the object id', () => {
      // {1: {0: {0: 1, 1: 86400, 7: "U"}, 1: {0: 2, 1: 300, 7: "UQ"}}}
      const bytes = hex('a1 01 a2 00 a3 0001 011a00015180 076155 01 a3 0002 0119012c 07 62 5551');
      const object: LwM2mObject = {
        kind: 'object',
        id: 1,
        instances: new Map([
          [0, instance(0, [single(0, 'integer', 1), single(1, 'integer', 86400), single(7, 'string', 'U')])],
          [1, instance(1, [single(0, 'integer', 2), single(1, 'integer', 300), single(7, 'string', 'UQ')])],
        ]),
      };
      assert.deepEqual(decodeNode(bytes, F, p('/1'), model), object);
      assert.equal(encodeNode(object, F, p('/1'), model).toString('hex'), bytes.toString('hex'));
    });

    it('every way of spelling a path decodes the same', () => {
      const expected = instance(0, [single(1, 'string', 'a'), single(9, 'integer', 100)]);
      const spellings = [
        'a1 03 a1 00 a2 01 6161 09 1864', // {3: {0: {1: "a", 9: 100}}}
        'a1 82 0300 a2 01 6161 09 1864', // {[3, 0]: {1: "a", 9: 100}}
        'a1 81 03 a1 81 00 a2 81 01 6161 81 09 1864', // {[3]: {[0]: {[1]: "a", [9]: 100}}}
        'a2 83 030001 6161 83 030009 1864', // {[3, 0, 1]: "a", [3, 0, 9]: 100}
        'a2 82 0300 a1 01 6161 83 030009 1864', // {[3, 0]: {1: "a"}, [3, 0, 9]: 100}
        'a1 03 a2 81 00 a1 01 6161 82 0009 1864', // {3: {[0]: {1: "a"}, [0, 9]: 100}}
        'bf 9f 0300 ff bf 01 6161 09 1864 ff ff', // {_ [_ 3, 0]: {_ 1: "a", 9: 100}}
        'a1 1b0000000000000003 a1 00 a2 01 6161 09 1864', // {3 (in 8 bytes): {0: {1: "a", 9: 100}}}
      ];
      for (const spelling of spellings) {
        assert.deepEqual(decodeNode(hex(spelling), F, p('/3/0'), model), expected, spelling);
      }
    });

    it('empty objects, instances and multiple resources are empty maps', () => {
      const emptyObject: LwM2mObject = { kind: 'object', id: 1024, instances: new Map() };
      // {1024: {}}
      assert.equal(encodeNode(emptyObject, F, p('/1024'), model).toString('hex'), 'a1190400a0');
      assert.deepEqual(decodeNode(hex('a1190400a0'), F, p('/1024'), model), emptyObject);
      // {[1024, 5]: {}}
      const emptyInstance = instance(5, []);
      assert.equal(encodeNode(emptyInstance, F, p('/1024/5'), model).toString('hex'), 'a18219040005a0');
      assert.deepEqual(decodeNode(hex('a182190400 05a0'), F, p('/1024/5'), model), emptyInstance);
      // {1024: {5: {}, 6: {0: "x"}}}: one empty instance next to another
      const object: LwM2mObject = {
        kind: 'object',
        id: 1024,
        instances: new Map([
          [5, instance(5, [])],
          [6, instance(6, [single(0, 'string', 'x')])],
        ]),
      };
      const bytes = encodeNode(object, F, p('/1024'), model);
      assert.equal(bytes.toString('hex'), 'a1190400a205a006a1006178');
      assert.deepEqual(decodeNode(bytes, F, p('/1024'), model), object);
      // {[9999, 0]: {10: {}, 11: {0: "a"}}}
      const withEmpty = instance(0, [multiple(10, 'integer', []), multiple(11, 'string', [[0, 'a']])]);
      const encoded = encodeNode(withEmpty, F, p('/9999/0'), model);
      assert.equal(encoded.toString('hex'), 'a18219270f00a20aa00ba1006161');
      assert.deepEqual(decodeNode(encoded, F, p('/9999/0'), model), withEmpty);
      // an empty payload and an empty map are an empty node
      assert.deepEqual(decodeNode(Buffer.alloc(0), F, p('/1024/5'), model), emptyInstance);
      assert.deepEqual(decodeNode(hex('a0'), F, p('/1024'), model), emptyObject);
      // an empty instance when a resource of it was asked for: no value
      assert.deepEqual(decodeNode(hex('a1 82 0300 a0'), F, p('/3/0/7'), model), multiple(7, 'integer', []));
    });
  });

  describe('values', () => {
    const at = (rid: number, item: string) => hex(`a1 83 19270f 00 ${rid.toString(16).padStart(2, '0')} ${item}`);
    const value = (rid: number, item: string) => {
      const node = decodeNode(at(rid, item), F, p(`/9999/0/${rid}`), model);
      assert.equal(node.kind, 'resource');
      return (node as { value: unknown }).value;
    };

    it('integers and unsigned integers to 64 bits, exact', () => {
      assert.equal(value(1, '3b7fffffffffffffff'), -(2n ** 63n)); // -9223372036854775808
      assert.equal(value(1, '1b7fffffffffffffff'), 2n ** 63n - 1n);
      assert.equal(value(2, '1bffffffffffffffff'), 2n ** 64n - 1n);
      assert.equal(value(1, '20'), -1);
      assert.equal(value(2, 'c24101'), 1); // 2(h'01'), a bignum
    });

    it('floats: half, single, double, integers, decimal fractions and bigfloats', () => {
      assert.equal(value(3, 'f93e00'), 1.5);
      assert.equal(value(3, 'fa3fc00000'), 1.5);
      assert.equal(value(3, 'fb400921fb54442d18'), Math.PI);
      assert.equal(value(3, '1864'), 100);
      assert.equal(value(3, 'c4822018 2d'), 4.5); // 4([-1, 45])
      assert.equal(value(3, 'c5822003'), 1.5); // 5([-1, 3])
      // encoding: float32 when exact, float64 otherwise
      assert.equal(
        encodeNode(single(3, 'float', 1.5), F, p('/9999/0/3'), model).toString('hex'),
        'a18319270f0003fa3fc00000',
      );
      assert.equal(
        encodeNode(single(3, 'float', 0.1), F, p('/9999/0/3'), model).toString('hex'),
        'a18319270f0003fb3fb999999999999a',
      );
    });

    it('time: tag 1 with integer seconds; untagged seconds and tag 0 dates accepted', () => {
      const time = new Date(1700000000000);
      assert.deepEqual(value(6, 'c11a6553f100'), time);
      assert.deepEqual(value(6, '1a6553f100'), time);
      assert.deepEqual(value(6, 'c0 74 323032332d31312d31345432323a31333a32305a'), time); // 0("2023-11-14T22:13:20Z")
      assert.equal(
        encodeNode(single(6, 'time', time), F, p('/9999/0/6'), model).toString('hex'),
        'a18319270f0006c11a6553f100',
      );
      // before 1970: tag 1 with a negative integer
      assert.equal(
        encodeNode(single(6, 'time', new Date(-86400000)), F, p('/9999/0/6'), model).toString('hex'),
        'a18319270f0006c13a0001517f',
      );
    });

    it('boolean, string, opaque, object link, core link', () => {
      assert.equal(value(4, 'f5'), true);
      assert.equal(value(0, '63616263'), 'abc');
      assert.deepEqual(value(5, '43010203'), Buffer.from([1, 2, 3]));
      assert.deepEqual(value(5, '5f 4101 420203 ff'), Buffer.from([1, 2, 3])); // (_ h'01', h'0203')
      assert.deepEqual(value(7, '63333a30'), { objectId: 3, instanceId: 0 });
      assert.equal(value(8, '643c2f313e'), '</1>');
      assert.equal(
        encodeNode(single(7, 'objlnk', { objectId: 3, instanceId: 0 }), F, p('/9999/0/7'), model).toString('hex'),
        'a18319270f000763333a30',
      );
      assert.equal(
        encodeNode(single(5, 'opaque', Buffer.from([1, 2, 3])), F, p('/9999/0/5'), model).toString('hex'),
        'a18319270f000543010203',
      );
    });

    it('types values of resources the model does not know from the CBOR item', () => {
      // {[777, 1]: {0: 5, 1: 1.5, 2: "x", 3: true, 4: h'00', 5: 1(0), 6: {0: -1}}}
      const bytes = hex('a1 82 190309 01 a7 0005 01f93e00 026178 03f5 044100 05c100 06a10020');
      assert.deepEqual(
        decodeNode(bytes, F, p('/777/1'), model),
        instance(1, [
          single(0, 'integer', 5),
          single(1, 'float', 1.5),
          single(2, 'string', 'x'),
          single(3, 'boolean', true),
          single(4, 'opaque', Buffer.from([0])),
          single(5, 'time', new Date(0)),
          multiple(6, 'integer', [[0, -1]]),
        ]),
      );
    });
  });

  describe('round trips', () => {
    it('every resource type, at every level', () => {
      const node = allTypes(3);
      const bytes = encodeNode(node, F, p('/9999/3'), model);
      assert.deepEqual(decodeNode(bytes, F, p('/9999/3'), model), node);
      for (const resource of node.resources.values()) {
        const path = p(`/9999/3/${resource.id}`);
        assert.deepEqual(decodeNode(encodeNode(resource, F, path, model), F, path, model), resource);
        if (resource.kind === 'multipleResource') {
          for (const [ri, v] of resource.instances) {
            const riPath = p(`/9999/3/${resource.id}/${ri}`);
            const ri_: LwM2mNode = { kind: 'resourceInstance', id: ri, type: resource.type, value: v };
            assert.deepEqual(decodeNode(encodeNode(ri_, F, riPath, model), F, riPath, model), ri_);
          }
        }
      }
    });

    it('composite: encodeNodes / decodeNodes, with and without the requested paths', () => {
      const nodes = new Map<string, LwM2mNode>([
        ['/3/0/9', single(9, 'integer', 100)],
        ['/3/0/7', multiple(7, 'integer', [[0, 3800]])],
        ['/1/0/1', single(1, 'integer', 86400)],
        ['/9999/1', allTypes(1)],
        ['/9999/2/10/65535', { kind: 'resourceInstance', id: 65535, type: 'integer', value: -(2n ** 63n) }],
      ]);
      const bytes = encodeNodes(nodes, F, model);
      const paths = [...nodes.keys()].map(p);
      assert.deepEqual(decodeNodes(bytes, F, model, paths), nodes);
      // without paths: one node per value path
      const flat = decodeNodes(bytes, F, model);
      assert.deepEqual(flat.get('/3/0/9'), single(9, 'integer', 100));
      assert.deepEqual(flat.get('/3/0/7/0'), { kind: 'resourceInstance', id: 0, type: 'integer', value: 3800 });
      assert.deepEqual(flat.get('/9999/1/0'), allTypes(1).resources.get(0));
      // paths without values are left out, an object path gathers its instances
      const gathered = decodeNodes(bytes, F, model, [p('/3'), p('/5'), p('/1/0'), p('/9999')]);
      assert.deepEqual([...gathered.keys()], ['/3', '/1/0', '/9999']);
      assert.deepEqual((gathered.get('/9999') as LwM2mObject).instances.get(1), allTypes(1));
    });

    it('composite: the expected bytes for a small Read-Composite answer', () => {
      const nodes = new Map<string, LwM2mNode>([
        ['/3/0/9', single(9, 'integer', 100)],
        ['/3/0/14', single(14, 'string', '+02:00')],
        ['/1/0/1', single(1, 'integer', 86400)],
      ]);
      // {[1, 0, 1]: 86400, [3, 0]: {9: 100, 14: "+02:00"}}
      const bytes = hex('a2 83010001 1a00015180 82 0300 a2 09 1864 0e 66 2b30323a3030');
      assert.equal(encodeNodes(nodes, F, model).toString('hex'), bytes.toString('hex'));
      assert.deepEqual(decodeNodes(bytes, F, model), nodes);
    });

    it('decodeTimestamped: one untimed entry per value path, or one at the base path (Send)', () => {
      const entries = decodeTimestamped(SPEC_DEVICE_CBOR, F, model);
      assert.equal(entries.length, 16);
      assert.ok(entries.every((entry) => entry.time === undefined));
      assert.deepEqual(entries[0], { path: p('/3/0/0'), node: single(0, 'string', 'Open Mobile Alliance') });
      const based = decodeTimestamped(SPEC_DEVICE_CBOR, F, model, p('/3/0'));
      assert.deepEqual(based, [{ path: p('/3/0'), node: specDevice() }]);
    });

    it('two overlapping nodes that name the same value cannot be encoded', () => {
      const nodes = new Map<string, LwM2mNode>([
        ['/3/0', specDevice()],
        ['/3/0/9', single(9, 'integer', 100)],
      ]);
      assertCodecError(() => encodeNodes(nodes, F, model), /more than one value for \/3\/0\/9/);
      const mixed = new Map<string, LwM2mNode>([
        ['/777/0/1', single(1, 'integer', 1)],
        ['/777/0/1/0', { kind: 'resourceInstance', id: 0, type: 'integer', value: 1 }],
      ]);
      assertCodecError(() => encodeNodes(mixed, F, model), /both a value and values below it/);
    });
  });

  describe('malformed payloads are 4.00', () => {
    const cases: [string, string, string, RegExp][] = [
      ['not a map', '83010203', '/3/0', /payload must be a map/],
      ['null', 'f6', '/3/0', /payload must be a map/],
      ['a text key', 'a1 03 a1 00 a1 6139 1864', '/3/0', /path key must be an unsigned integer/], // {3: {0: {"9": 100}}}
      ['a negative key', 'a1 83 030020 01', '/3/0', /path key must be an unsigned integer/],
      ['a float key', 'a1 fa3fc00000 a0', '/3', /path key must be an unsigned integer/],
      ['an id above 65535', 'a1 83 03001a00010000 01', '/3/0', /up to 65535/],
      ['an empty array key', 'a1 03 a1 80 a0', '/3', /empty array as a path key/],
      ['a path of five ids', 'a1 85 0300070101 01', '/3/0', /deeper than a resource instance/],
      ['a map below a resource instance', 'a1 84 03000701 a1 00 01', '/3/0', /a resource instance holds a value/],
      ['a value at instance level', 'a1 82 0300 01', '/3/0', /a value needs a resource or resource instance path/],
      ['an array value', 'a1 83 030009 820102', '/3/0/9', /not a resource value|does not fit/],
      ['null without Write-Composite', 'a1 84 03000701 f6', '/3/0/7', /null is only allowed in a Write-Composite/],
      ['undefined', 'a1 83 030009 f7', '/3/0/9', /does not fit resource type integer/],
      ['a value outside the target', 'a1 83 030109 01', '/3/0', /outside the target path \/3\/0/],
      ['an empty map outside the target', 'a1 82 0301 a0', '/3/0', /outside the target path \/3\/0/],
      ['a value given twice', 'a2 83 030009 01 82 0300 a1 09 02', '/3/0', /more than one value for \/3\/0\/9/],
      ['a single resource as a map', 'a1 83 030009 a1 00 01', '/3/0', /single resource/],
      ['an empty map for a single resource', 'a1 83 030009 a0', '/3/0', /single resource; it cannot be an empty map/],
      [
        'a multiple resource as a value',
        'a1 83 030007 01',
        '/3/0',
        /multiple resource; values must name resource instances/,
      ],
      ['a string for an integer', 'a1 83 030009 6131', '/3/0/9', /does not fit resource type integer/],
      ['a bad object link', 'a1 83 19270f0007 63333b30', '/9999/0/7', /invalid object link/],
      ['an unsigned out of range', 'a1 83 19270f0002 20', '/9999/0/2', /negative/],
      ['a bignum out of range', 'a1 83 19270f0002 c249010000000000000000', '/9999/0/2', /out of range/],
      ['a value for an executable', 'a1 83 030004 01', '/3/0/4', /executable/],
      ['trailing bytes', 'a0 00', '/3/0', /invalid CBOR/],
      ['truncated', 'a1 82 0300 a1', '/3/0', /invalid CBOR/],
      ['a tag 1 too large for a date', 'a1 83 19270f0006 c11bffffffffffffffff', '/9999/0/6', /invalid|out of range/],
    ];
    for (const [name, bytes, path, pattern] of cases) {
      it(name, () => {
        assertCodecError(() => decodeNode(hex(bytes), F, p(path), model), pattern);
      });
    }

    it('composite decoding checks the requested paths', () => {
      const bytes = hex('a2 83 030009 1864 83 010001 1a00015180'); // {[3, 0, 9]: 100, [1, 0, 1]: 86400}
      assertCodecError(() => decodeNodes(bytes, F, model, [p('/3')]), /outside the requested paths/);
      assertCodecError(() => decodeNodes(hex('a1 82 0500 a0'), F, model, [p('/3')]), /outside the requested paths/);
      // an empty instance above a requested resource: nothing for it
      assert.deepEqual(decodeNodes(hex('a1 82 0300 a0'), F, model, [p('/3/0/9')]), new Map());
    });

    it('carries no path lists (Read-Composite requests go in SenML-ETCH)', () => {
      assertCodecError(() => decodePaths(hex('a0'), F), /cannot carry a list of paths/, '4.15');
      assertCodecError(() => encodePaths([p('/3/0/9')], F), /cannot carry a list of paths/, '4.15');
    });
  });

  describe('Write-Composite with deletions (null)', () => {
    it('null at a resource instance deletes it', () => {
      // {[3, 0]: {7: {1: null}, 14: "+01:00"}}
      const bytes = hex('a1 82 0300 a2 07 a1 01 f6 0e 66 2b30313a3030');
      const updates = new Map<string, LwM2mNode>([['/3/0/14', single(14, 'string', '+01:00')]]);
      assert.deepEqual(decodePatch(bytes, F, model), { updates, deletions: [p('/3/0/7/1')] });
      assert.equal(encodePatch(updates, [p('/3/0/7/1')], F, model).toString('hex'), bytes.toString('hex'));
      // no deletions: the same bytes as encodeNodes
      assert.deepEqual(encodePatch(updates, [], F, model), encodeNodes(updates, F, model));
    });

    it('rejects deletions that are not resource instances of multiple resources, twice, or also written', () => {
      assertCodecError(
        () => decodePatch(hex('a1 83 030009 f6'), F, model),
        /deletes a resource instance; the path must/,
      );
      assertCodecError(() => decodePatch(hex('a1 84 03000900 f6'), F, model), /is a single resource/);
      assertCodecError(
        () => decodePatch(hex('a2 84 03000701 f6 83 030007 a1 01 f6'), F, model),
        /\/3\/0\/7\/1 is deleted twice/,
      );
      assertCodecError(
        () => encodePatch(new Map([['/3/0/7', multiple(7, 'integer', [[1, 5]])]]), [p('/3/0/7/1')], F, model),
        /\/3\/0\/7\/1 is both written and deleted/,
      );
      assertCodecError(() => encodePatch(new Map(), [p('/3/0/7')], F, model), /path must name one/);
      assertCodecError(() => encodePatch(new Map(), [p('/3/0/9/0')], F, model), /single resource/);
    });
  });
});
