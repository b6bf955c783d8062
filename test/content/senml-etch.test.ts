/**
 * SenML-ETCH (RFC 8790; content formats 320 JSON, 322 CBOR) as LwM2M 1.2 uses it: FETCH bodies of
 * Read-/Observe-Composite (records naming paths) and iPATCH bodies of Write-Composite, where a
 * record with `"v": null` deletes a resource instance (RFC 8790 §3.2). The CBOR vectors are built by
 * hand (SenML CBOR labels: bn -2, n 0, v 2, vs 3) with their diagnostic notation.
 */
import { strict as assert } from 'node:assert';
import { LwM2mPath } from '../../lib/model/path';
import type { LwM2mNode } from '../../lib/model/types';
import {
  decodeNode,
  decodeNodes,
  decodePatch,
  decodePaths,
  encodeNodes,
  encodePatch,
  encodePaths,
  formatName,
} from '../../lib/content';
import { ContentFormat } from '../../lib/content/types';
import { allTypes, assertCodecError, hex, instance, model, multiple, single, specDevice } from './fixtures';

const p = (text: string) => LwM2mPath.parse(text);
const ETCH_JSON = ContentFormat.SENML_ETCH_JSON;
const ETCH_CBOR = ContentFormat.SENML_ETCH_CBOR;
const json = (text: string) => Buffer.from(text, 'utf8');

describe('content/senml-etch (320, 322) and Write-Composite patches', () => {
  describe('path lists (Read-Composite / Observe-Composite FETCH bodies)', () => {
    it('SenML-ETCH JSON', () => {
      const bytes = encodePaths([p('/3/0/9'), p('/1')], ETCH_JSON);
      assert.equal(bytes.toString(), '[{"n":"/3/0/9"},{"n":"/1"}]');
      assert.deepEqual(decodePaths(bytes, ETCH_JSON), [p('/3/0/9'), p('/1')]);
      // base names resolve as in SenML (RFC 8790 §3.1)
      assert.deepEqual(decodePaths(json('[{"bn":"/3/0/","n":"1"},{"n":"2"},{"bn":"/5"}]'), ETCH_JSON), [
        p('/3/0/1'),
        p('/3/0/2'),
        p('/5'),
      ]);
    });

    it('SenML-ETCH CBOR', () => {
      // [{0: "/3/0/9"}, {0: "/1"}]
      const bytes = hex('82 a1 00 66 2f332f302f39 a1 00 62 2f31');
      assert.equal(encodePaths([p('/3/0/9'), p('/1')], ETCH_CBOR).toString('hex'), bytes.toString('hex'));
      assert.deepEqual(decodePaths(bytes, ETCH_CBOR), [p('/3/0/9'), p('/1')]);
      // [{-2: "/3/0/", 0: "14"}]
      assert.deepEqual(decodePaths(hex('81 a2 21 65 2f332f302f 00 62 3134'), ETCH_CBOR), [p('/3/0/14')]);
    });

    it('rejects path lists with values, and names that are not paths', () => {
      assertCodecError(() => decodePaths(json('[{"n":"/3/0/9","v":1}]'), ETCH_JSON), /must not carry a value/);
      assertCodecError(() => decodePaths(json('[{"n":"/3/0/9","v":null}]'), ETCH_JSON), /must be a number, got null/);
      assertCodecError(() => decodePaths(json('[{"n":"/3/x"}]'), ETCH_JSON), /not an LwM2M path/);
      assertCodecError(() => decodePaths(hex('81 a1 00 01'), ETCH_CBOR), /"n" must be a text string/);
    });

    it('the formats are named but are not single-node formats', () => {
      assert.equal(formatName(ETCH_JSON), 'application/senml-etch+json');
      assertCodecError(() => decodeNode(json('[]'), ETCH_JSON, p('/3/0'), model), /unsupported content format/, '4.15');
    });
  });

  describe('Write-Composite (iPATCH) bodies', () => {
    const updates = new Map<string, LwM2mNode>([
      ['/3/0/14', single(14, 'string', '+01:00')],
      ['/1/0/1', single(1, 'integer', 86400)],
    ]);
    const deletions = [p('/3/0/7/1')];

    it('SenML-ETCH JSON: "v": null deletes a resource instance', () => {
      const bytes = encodePatch(updates, deletions, ETCH_JSON, model);
      assert.equal(
        bytes.toString(),
        '[{"n":"/3/0/14","vs":"+01:00"},{"n":"/1/0/1","v":86400},{"n":"/3/0/7/1","v":null}]',
      );
      assert.deepEqual(decodePatch(bytes, ETCH_JSON, model), { updates, deletions });
      // with base names
      const based = json(
        '[{"bn":"/3/0/","n":"14","vs":"+01:00"},{"n":"7/1","v":null},{"bn":"/1/0/","n":"1","v":86400}]',
      );
      assert.deepEqual(decodePatch(based, ETCH_JSON, model), { updates, deletions });
    });

    it('SenML-ETCH CBOR: null (simple value 22) under label 2', () => {
      // [{0: "/3/0/14", 3: "+01:00"}, {0: "/1/0/1", 2: 86400}, {0: "/3/0/7/1", 2: null}]
      const bytes = hex(`
        83
        a2 00 67 2f332f302f3134 03 66 2b30313a3030
        a2 00 66 2f312f302f31 02 1a00015180
        a2 00 68 2f332f302f372f31 02 f6
      `);
      assert.equal(encodePatch(updates, deletions, ETCH_CBOR, model).toString('hex'), bytes.toString('hex'));
      assert.deepEqual(decodePatch(bytes, ETCH_CBOR, model), { updates, deletions });
    });

    it('SenML JSON/CBOR (110/112) and LwM2M CBOR (11544) carry the same patch', () => {
      for (const format of [ContentFormat.SENML_JSON, ContentFormat.SENML_CBOR, ContentFormat.LWM2M_CBOR]) {
        const bytes = encodePatch(updates, deletions, format, model);
        assert.deepEqual(decodePatch(bytes, format, model), { updates, deletions }, formatName(format));
      }
    });

    it('round trips every resource type, with and without deletions', () => {
      const all = new Map<string, LwM2mNode>();
      for (const resource of allTypes(0).resources.values()) all.set(`/9999/0/${resource.id}`, resource);
      const gone = [p('/777/0/1/2'), p('/9999/1/10/3'), p('/9999/1/12/0')]; // ascending: LwM2M CBOR sorts by id
      for (const format of [ETCH_JSON, ETCH_CBOR, ContentFormat.SENML_JSON, ContentFormat.SENML_CBOR, 11544]) {
        // decodePatch gives one node per value path: compare with the same split of the input
        const expected = decodeNodes(encodeNodes(all, format, model), format, model);
        assert.deepEqual(decodePatch(encodePatch(all, gone, format, model), format, model), {
          updates: expected,
          deletions: gone,
        });
        assert.deepEqual(decodePatch(encodePatch(all, [], format, model), format, model), {
          updates: expected,
          deletions: [],
        });
        assert.deepEqual(decodeNodes(encodeNodes(all, format, model), format, model, [...all.keys()].map(p)), all);
      }
    });

    it('a patch record without any value is malformed (RFC 8790: every Patch Record carries a value)', () => {
      assertCodecError(
        () => decodePatch(json('[{"n":"/3/0/7/1"}]'), ETCH_JSON, model),
        /needs a value, or "v": null to delete/,
      );
      assertCodecError(() => decodePatch(hex('81 a1 00 68 2f332f302f372f31'), ETCH_CBOR, model), /needs a value/);
    });

    it('rejects deletions of anything but resource instances of multiple resources', () => {
      assertCodecError(() => decodePatch(json('[{"n":"/3/0/7","v":null}]'), ETCH_JSON, model), /path must name one/);
      assertCodecError(
        () => decodePatch(json('[{"n":"/3/0","v":null}]'), ETCH_JSON, model),
        /resource or resource instance/,
      );
      assertCodecError(() => decodePatch(json('[{"n":"/3/0/9/0","v":null}]'), ETCH_JSON, model), /single resource/);
      assertCodecError(
        () => decodePatch(json('[{"n":"/3/0/7/1","vs":null}]'), ETCH_JSON, model),
        /"vs" must be a string/,
      );
      assertCodecError(
        () => decodePatch(json('[{"n":"/3/0/7/1","v":null},{"n":"/3/0/7/1","v":null}]'), ETCH_JSON, model),
        /\/3\/0\/7\/1 is deleted twice/,
      );
      assertCodecError(
        () => decodePatch(json('[{"n":"/3/0/7/1","v":5},{"n":"/3/0/7/1","v":null}]'), ETCH_JSON, model),
        /both written and deleted/,
      );
      // CBOR: null and a value in one record
      assertCodecError(
        () => decodePatch(hex('81 a3 00 68 2f332f302f372f31 02 f6 03 6178'), ETCH_CBOR, model),
        /more than one value field/,
      );
    });

    it('encodePatch checks the deletions', () => {
      assertCodecError(() => encodePatch(new Map(), [p('/3/0/7')], ETCH_JSON, model), /path must name one/);
      assertCodecError(() => encodePatch(new Map(), [p('/3/0/9/1')], ETCH_CBOR, model), /single resource/);
      assertCodecError(
        () => encodePatch(new Map(), ['/3/0/7/1' as unknown as LwM2mPath], ETCH_JSON, model),
        /expected an LwM2mPath/,
      );
      assertCodecError(
        () => encodePatch(new Map([['/3/0/7', multiple(7, 'integer', [[1, 5]])]]), [p('/3/0/7/1')], ETCH_JSON, model),
        /both written and deleted/,
      );
      assertCodecError(() => encodePatch(new Map(), [p('/3/0/7/1'), p('/3/0/7/1')], ETCH_JSON, model), /deleted twice/);
    });

    it('"v": null is only accepted in patches', () => {
      const bytes = json('[{"n":"/3/0/7/1","v":null}]');
      assertCodecError(() => decodeNodes(bytes, ETCH_JSON, model), /"v" must be a number, got null/);
      assertCodecError(() => decodeNodes(bytes, ContentFormat.SENML_JSON, model), /"v" must be a number, got null/);
      assertCodecError(() => decodeNode(bytes, ContentFormat.SENML_JSON, p('/3/0/7/1'), model), /got null/);
    });

    it('formats without patches answer 4.15', () => {
      for (const format of [ContentFormat.TLV, ContentFormat.JSON, ContentFormat.CBOR, ContentFormat.TEXT, 1234]) {
        assertCodecError(() => decodePatch(json('[]'), format, model), /cannot carry a Write-Composite/, '4.15');
        assertCodecError(() => encodePatch(new Map(), [], format, model), /cannot carry a Write-Composite/, '4.15');
      }
    });
  });

  describe('indefinite-length strings', () => {
    it('are joined, in SenML CBOR and LwM2M CBOR', () => {
      // [{0: (_ "/3/0/", "14"), 3: (_ "+01", ":00")}]
      const senml = hex('81 a2 00 7f 65 2f332f302f 62 3134 ff 03 7f 63 2b3031 63 3a3030 ff');
      assert.deepEqual(
        decodeNodes(senml, ContentFormat.SENML_CBOR, model),
        new Map([['/3/0/14', single(14, 'string', '+01:00')]]),
      );
      // {[9999, 0]: {5: (_ h'0102', h'', h'03'), 12: {0: (_ )}}}
      const cbor = hex('a1 82 19270f 00 a2 05 5f 42 0102 40 41 03 ff 0c a1 00 5f ff');
      assert.deepEqual(
        decodeNode(cbor, ContentFormat.LWM2M_CBOR, p('/9999/0'), model),
        instance(0, [single(5, 'opaque', Buffer.from([1, 2, 3])), multiple(12, 'opaque', [[0, Buffer.alloc(0)]])]),
      );
      // {[3, 0, 7]: {0: (_ "1")}}: joined, then typed by the model
      assertCodecError(
        () => decodeNode(hex('a1 83 030007 a1 00 7f 61 31 ff'), ContentFormat.LWM2M_CBOR, p('/3/0/7'), model),
        /string "1" does not fit resource type integer/,
      );
    });

    it('bytes 0x5f and 0x7f inside definite items are data; malformed chunks are a 4.00', () => {
      // [{0: "/9999/0/5", 8: h'5f7f'}]
      const plain = hex('81 a2 00 69 2f393939392f302f35 08 42 5f7f');
      assert.deepEqual(
        decodeNodes(plain, ContentFormat.SENML_CBOR, model),
        new Map([['/9999/0/5', single(5, 'opaque', Buffer.from([0x5f, 0x7f]))]]),
      );
      // {[9999, 0, 5]: <bad>}: unterminated, a text chunk in a byte string, a nested indefinite chunk,
      // a byte chunk in a text string, a chunk running past the end
      for (const bad of ['5f 41', '5f 61 00 ff', '5f 5f ff ff', '7f 41 00 ff', '5f 5b ffffffffffffffff']) {
        assertCodecError(
          () => decodeNode(hex(`a1 83 19270f 00 05 ${bad}`), ContentFormat.LWM2M_CBOR, p('/9999/0/5'), model),
          /invalid CBOR at byte \d+/,
        );
      }
    });
  });

  it('the spec Device instance goes through SenML-ETCH as through SenML', () => {
    const nodes = new Map<string, LwM2mNode>([['/3/0', specDevice()]]);
    for (const format of [ETCH_JSON, ETCH_CBOR]) {
      const bytes = encodeNodes(nodes, format, model);
      assert.deepEqual(decodeNodes(bytes, format, model, [p('/3/0')]), nodes);
    }
  });
});
