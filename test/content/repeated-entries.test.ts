/**
 * Repeated and overlapping entries in every decoder: a value is never silently dropped. Repeated
 * map keys merge (LwM2M CBOR, as Anjay writes composite answers), a value given twice with the same
 * content counts once, and a value given twice with different contents is a 4.00 naming the path.
 */
import { strict as assert } from 'node:assert';
import { LwM2mPath } from '../../lib/model/path';
import type { LwM2mNode } from '../../lib/model/types';
import { decodeNode, decodeNodes, decodePatch, decodeTimestamped } from '../../lib/content';
import { ContentFormat } from '../../lib/content/types';
import {
  ANJAY_COMPOSITE,
  ANJAY_COMPOSITE_PATHS,
  assertCodecError,
  hex,
  instance,
  model,
  multiple,
  single,
} from './fixtures';

const p = (text: string) => LwM2mPath.parse(text);
const json = (value: unknown) => Buffer.from(JSON.stringify(value));

const ANJAY_VALUES = new Map<string, LwM2mNode>([
  ['/3/0/0', single(0, 'string', 'Open Mobile Alliance')],
  ['/3/0/13', single(13, 'time', new Date(1700000000000))],
  ['/3303/0/5700', single(5700, 'float', 21.5)],
  ['/1/1/1', single(1, 'integer', 300)],
  ['/3/0/15', single(15, 'string', 'Europe/Berlin')],
]);

describe('content: repeated and overlapping entries', () => {
  describe('LwM2M CBOR (11544)', () => {
    const F = ContentFormat.LWM2M_CBOR;

    it("Anjay's composite answer: a top key given twice keeps the values of both", () => {
      const decoded = decodeNodes(ANJAY_COMPOSITE, F, model, ANJAY_COMPOSITE_PATHS.map(p));
      assert.deepEqual([...decoded.keys()], ANJAY_COMPOSITE_PATHS);
      assert.deepEqual(decoded, ANJAY_VALUES);
      // without the requested paths (Send): one node per value path, all five
      assert.deepEqual(decodeNodes(ANJAY_COMPOSITE, F, model), ANJAY_VALUES);
      // asked as one node, /3/0 gathers the values of both entries of key 3
      const device = decodeNodes(ANJAY_COMPOSITE, F, model, [p('/3/0'), p('/3303'), p('/1/1')]).get('/3/0');
      assert.deepEqual(
        device,
        instance(0, [
          single(0, 'string', 'Open Mobile Alliance'),
          single(13, 'time', new Date(1700000000000)),
          single(15, 'string', 'Europe/Berlin'),
        ]),
      );
      // notifications (decodeTimestamped) see every value too
      assert.deepEqual(
        decodeTimestamped(ANJAY_COMPOSITE, F, model).map((entry) => entry.path.toString()),
        ['/3/0/0', '/3/0/13', '/3303/0/5700', '/1/1/1', '/3/0/15'],
      );
    });

    it('repeated keys merge at every level, definite or indefinite', () => {
      const expected = instance(0, [single(1, 'string', 'a'), single(9, 'integer', 100)]);
      const spellings = [
        'a2 03 a1 00 a1 01 6161 03 a1 00 a1 09 1864', // {3: {0: {1: "a"}}, 3: {0: {9: 100}}}
        'a1 03 a2 00 a1 01 6161 00 a1 09 1864', // {3: {0: {1: "a"}, 0: {9: 100}}}
        'a2 82 0300 a1 01 6161 82 0300 a1 09 1864', // {[3, 0]: {1: "a"}, [3, 0]: {9: 100}}
        'bf 03 bf 00 bf 01 6161 ff ff 03 bf 00 bf 09 1864 ff ff ff', // the same, indefinite
      ];
      for (const spelling of spellings) {
        assert.deepEqual(decodeNode(hex(spelling), F, p('/3/0'), model), expected, spelling);
      }
      // resource instances of one multiple resource split over two entries
      // {[3, 0, 7]: {0: 3800}, [3, 0, 7]: {1: 5000}}
      assert.deepEqual(
        decodeNode(hex('a2 83 030007 a1 00 190ed8 83 030007 a1 01 191388'), F, p('/3/0/7'), model),
        multiple(7, 'integer', [
          [0, 3800],
          [1, 5000],
        ]),
      );
    });

    it('a value given twice with the same content counts once; with different contents it is a 4.00 naming it', () => {
      // {3: {0: {9: 100}}, 3: {0: {9: 100}}}: a device answering overlapping paths
      const same = hex('a2 03 a1 00 a1 09 1864 03 a1 00 a1 09 1864');
      assert.deepEqual(decodeNode(same, F, p('/3/0'), model), instance(0, [single(9, 'integer', 100)]));
      assert.deepEqual(decodeNodes(same, F, model), new Map([['/3/0/9', single(9, 'integer', 100)]]));
      assert.deepEqual(
        decodeNodes(same, F, model, [p('/3/0'), p('/3/0/9')]),
        new Map<string, LwM2mNode>([
          ['/3/0', instance(0, [single(9, 'integer', 100)])],
          ['/3/0/9', single(9, 'integer', 100)],
        ]),
      );
      // {3: {0: {9: 100}}, 3: {0: {9: 101}}}
      const different = hex('a2 03 a1 00 a1 09 1864 03 a1 00 a1 09 1865');
      assertCodecError(() => decodeNode(different, F, p('/3/0'), model), /more than one value for \/3\/0\/9/);
      assertCodecError(() => decodeNodes(different, F, model), /more than one value for \/3\/0\/9/);
      assertCodecError(() => decodeNodes(different, F, model, [p('/3/0/9')]), /more than one value for \/3\/0\/9/);
      // the same key twice inside one map: {[3, 0]: {9: 100, 9: 101}}
      assertCodecError(
        () => decodeNode(hex('a1 82 0300 a2 09 1864 09 1865'), F, p('/3/0'), model),
        /more than one value for \/3\/0\/9/,
      );
      // a Write-Composite writing one resource instance twice, or writing and deleting it
      assertCodecError(
        () => decodePatch(hex('a2 84 03000701 01 84 03000701 02'), F, model),
        /more than one value for \/3\/0\/7\/1/,
      );
      assertCodecError(
        () => decodePatch(hex('a2 84 03000701 01 84 03000701 f6'), F, model),
        /both written and deleted/,
      );
    });

    it('an empty map merged with values is not an extra empty node', () => {
      // {1024: {}, 1024: {5: {0: "x"}}, [1024, 6]: {}, [1024, 6]: {}}
      const bytes = hex('a4 190400 a0 190400 a1 05 a1 00 6178 82 19040006 a0 82 19040006 a0');
      assert.deepEqual(
        decodeNodes(bytes, F, model),
        new Map<string, LwM2mNode>([
          ['/1024/5/0', single(0, 'string', 'x')],
          ['/1024/6', instance(6, [])],
        ]),
      );
      assert.deepEqual(decodeNode(bytes, F, p('/1024'), model), {
        kind: 'object',
        id: 1024,
        instances: new Map([
          [5, instance(5, [single(0, 'string', 'x')])],
          [6, instance(6, [])],
        ]),
      });
    });
  });

  describe('SenML CBOR (112)', () => {
    const F = ContentFormat.SENML_CBOR;

    it('a label given twice in one record is a 4.00, whichever value it holds', () => {
      // [{0: "/3/0/9", 2: 1, 2: 2}]
      assertCodecError(
        () => decodeNode(hex('81 a3 00 66 2f332f302f39 02 01 02 02'), F, p('/3/0/9'), model),
        /repeats label 2/,
      );
      // [{0: "/3/0/9", 0: "/3/0/10", 2: 1}]
      assertCodecError(
        () => decodeNodes(hex('81 a3 00 66 2f332f302f39 00 67 2f332f302f3130 02 01'), F, model),
        /repeats label 0/,
      );
      // [{_ 0: "/3/0/9", 2: 1, 2: 1}]
      assertCodecError(
        () => decodeNode(hex('81 bf 00 66 2f332f302f39 02 01 02 01 ff'), F, p('/3/0/9'), model),
        /repeats label 2/,
      );
    });

    it('records for the same path: same value once, different values a 4.00, different times a time series', () => {
      // [{0: "/3/0/9", 2: 1}, {0: "/3/0/9", 2: 1}]
      const same = hex('82 a2 00 66 2f332f302f39 02 01 a2 00 66 2f332f302f39 02 01');
      assert.deepEqual(decodeNodes(same, F, model), new Map([['/3/0/9', single(9, 'integer', 1)]]));
      assert.deepEqual(decodeNode(same, F, p('/3/0/9'), model), single(9, 'integer', 1));
      // [{0: "/3/0/9", 2: 1}, {0: "/3/0/9", 2: 2}]
      const different = hex('82 a2 00 66 2f332f302f39 02 01 a2 00 66 2f332f302f39 02 02');
      assertCodecError(() => decodeNodes(different, F, model), /more than one value for \/3\/0\/9/);
      assertCodecError(
        () => decodeTimestamped(different, F, model),
        /more than one value for \/3\/0\/9 at the same time/,
      );
      // [{-3: 1700000000, 0: "/3/0/9", 2: 1}, {0: "/3/0/9", 6: 60, 2: 2}]: a time series
      const series = hex('82 a3 22 1a6553f100 00 66 2f332f302f39 02 01 a3 00 66 2f332f302f39 06 183c 02 02');
      const entries = decodeTimestamped(series, F, model);
      assert.deepEqual(
        entries.map((entry) => [
          entry.path.toString(),
          entry.time?.getTime(),
          (entry.node as { value: unknown }).value,
        ]),
        [
          ['/3/0/9', 1700000000000, 1],
          ['/3/0/9', 1700000060000, 2],
        ],
      );
    });
  });

  describe('SenML JSON (110)', () => {
    const F = ContentFormat.SENML_JSON;

    it('a member given twice in one record is a 4.00', () => {
      assertCodecError(
        () => decodeNode(Buffer.from('[{"n":"/3/0/9","v":1,"v":2}]'), F, p('/3/0/9'), model),
        /duplicate member "v"/,
      );
    });

    it('records for the same path: same value once, different values a 4.00, different times a time series', () => {
      const same = json([
        { n: '/3/0/9', v: 1 },
        { n: '/3/0/9', v: 1 },
      ]);
      assert.deepEqual(decodeNodes(same, F, model), new Map([['/3/0/9', single(9, 'integer', 1)]]));
      assert.deepEqual(
        decodeTimestamped(same, F, model).map((entry) => entry.path.toString()),
        ['/3/0/9'],
      );
      // overlapping requested paths, each answered
      assert.deepEqual(
        decodeNodes(same, F, model, [p('/3/0'), p('/3/0/9')]),
        new Map<string, LwM2mNode>([
          ['/3/0', instance(0, [single(9, 'integer', 1)])],
          ['/3/0/9', single(9, 'integer', 1)],
        ]),
      );
      const different = json([
        { n: '/3/0/9', v: 1 },
        { n: '/3/0/9', v: 2 },
      ]);
      assertCodecError(() => decodeNodes(different, F, model), /more than one value for \/3\/0\/9/);
      assertCodecError(() => decodeNode(different, F, p('/3/0'), model), /more than one value for \/3\/0\/9/);
      assertCodecError(() => decodePatch(different, F, model), /more than one value for \/3\/0\/9/);
      const series = json([
        { bn: '/3/0/9', bt: 1700000000, v: 1 },
        { t: 60, v: 2 },
        { t: 60, v: 2 },
      ]);
      assert.deepEqual(
        decodeTimestamped(series, F, model).map((entry) => [
          entry.time?.getTime(),
          (entry.node as { value: unknown }).value,
        ]),
        [
          [1700000000000, 1],
          [1700000060000, 2],
        ],
      );
      assert.deepEqual(
        decodeTimestamped(series, F, model, p('/3/0')).map((entry) => entry.node),
        [instance(0, [single(9, 'integer', 1)]), instance(0, [single(9, 'integer', 2)])],
      );
    });
  });

  describe('OMA LwM2M JSON (11543)', () => {
    const F = ContentFormat.JSON;
    /** An OMA JSON payload of `entries` under the base name /3/0/, decoded as `path`. */
    const decodeEntries = (path: string, entries: object[]) =>
      decodeNode(json({ bn: '/3/0/', e: entries }), F, p(path), model);

    it('a member given twice is a 4.00; entries for the same path merge like SenML records', () => {
      assertCodecError(
        () =>
          decodeNode(Buffer.from('{"bn":"/3/0/","e":[{"n":"9","v":1}],"e":[{"n":"9","v":2}]}'), F, p('/3/0'), model),
        /duplicate member "e"/,
      );
      assert.deepEqual(
        decodeEntries('/3/0', [
          { n: '9', v: 1 },
          { n: '9', v: 1 },
        ]),
        instance(0, [single(9, 'integer', 1)]),
      );
      assertCodecError(
        () =>
          decodeEntries('/3/0', [
            { n: '9', v: 1 },
            { n: '9', v: 2 },
          ]),
        /more than one value for \/3\/0\/9/,
      );
      assertCodecError(
        () =>
          decodeEntries('/3/0/7', [
            { n: '7/0', v: 1 },
            { n: '7/0', v: 2 },
          ]),
        /more than one value for \/3\/0\/7\/0/,
      );
    });
  });

  describe('TLV (11542)', () => {
    const F = ContentFormat.TLV;

    it('a resource, resource instance or object instance given twice is a 4.00, even with the same value', () => {
      assertCodecError(() => decodeNode(hex('C1 09 64 C1 09 64'), F, p('/3/0'), model), /duplicate resource 9/);
      assertCodecError(() => decodeNode(hex('C1 09 64 C1 09 65'), F, p('/3/0'), model), /duplicate resource 9/);
      assertCodecError(
        () => decodeNode(hex('86 07 41 00 01 41 00 02'), F, p('/3/0'), model),
        /duplicate resource instance 0/,
      );
      assertCodecError(
        () => decodeNode(hex('41 00 01 41 00 02'), F, p('/3/0/7'), model),
        /duplicate resource instance 0/,
      );
      assertCodecError(
        () => decodeNode(hex('03 00 C1 09 64 03 00 C1 09 65'), F, p('/3'), model),
        /duplicate object instance 0/,
      );
    });
  });
});
