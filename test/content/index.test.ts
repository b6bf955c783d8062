import { strict as assert } from 'node:assert';
import { LwM2mPath } from '../../lib/model/path';
import type { LwM2mNode, LwM2mObject, ResourceType, ResourceValue } from '../../lib/model/types';
import {
  codecFor,
  decodeNode,
  decodeNodes,
  decodeTimestamped,
  encodeNode,
  encodeNodes,
  formatName,
  isSupportedFormat,
} from '../../lib/content';
import { ContentCodecError, ContentFormat } from '../../lib/content/types';
import { SPEC_DEVICE_TLV, allTypes, assertCodecError, model, multiple, single, specDevice } from './fixtures';

const p = (text: string) => LwM2mPath.parse(text);

const TREE_FORMATS = [
  ContentFormat.TLV,
  ContentFormat.OLD_TLV,
  ContentFormat.SENML_JSON,
  ContentFormat.SENML_CBOR,
  ContentFormat.JSON,
  ContentFormat.OLD_JSON,
  ContentFormat.LWM2M_CBOR,
];

describe('content (the one face)', () => {
  describe('format registry', () => {
    it('knows the supported formats and their names', () => {
      for (const format of [0, 42, 60, 110, 112, 1542, 1543, 11542, 11543, 11544]) {
        assert.ok(isSupportedFormat(format), `format ${format}`);
        assert.equal(codecFor(format).format, format);
      }
      // SenML-ETCH (320/322) only carries composite request bodies (decodePaths, decodePatch, ...)
      for (const format of [40, 320, 322, 50, -1, 1.5]) assert.ok(!isSupportedFormat(format), `format ${format}`);
      assert.equal(formatName(110), 'application/senml+json');
      assert.equal(formatName(11544), 'application/vnd.oma.lwm2m+cbor');
      assert.equal(formatName(322), 'application/senml-etch+cbor');
      assert.equal(formatName(11542), 'application/vnd.oma.lwm2m+tlv');
      assert.equal(formatName(40), 'application/link-format');
      assert.equal(formatName(1234), 'content-format 1234');
    });

    it('answers unknown formats with 4.15', () => {
      assertCodecError(() => codecFor(322), /unsupported content format application\/senml-etch\+cbor/, '4.15');
      assertCodecError(() => decodeNode(Buffer.from('1'), 1234, p('/3/0/9'), model), /content-format 1234/, '4.15');
      assertCodecError(() => encodeNode(single(9, 'integer', 1), 40, p('/3/0/9'), model), undefined, '4.15');
      assertCodecError(
        () => decodeNodes(SPEC_DEVICE_TLV, ContentFormat.TLV, model),
        /cannot carry values for several paths/,
        '4.15',
      );
      assertCodecError(() => encodeNodes(new Map(), ContentFormat.JSON, model), /not used for composite/, '4.15');
    });

    it('accepts a Uint8Array payload', () => {
      const u8 = new Uint8Array(SPEC_DEVICE_TLV);
      assert.deepEqual(decodeNode(u8 as Buffer, ContentFormat.TLV, p('/3/0'), model), specDevice());
    });

    it('single-path formats give one untimed entry in decodeTimestamped', () => {
      const series = decodeTimestamped(SPEC_DEVICE_TLV, ContentFormat.TLV, model, p('/3/0'));
      assert.equal(series.length, 1);
      assert.equal(series[0].time, undefined);
      assert.deepEqual(series[0].node, specDevice());
    });
  });

  describe('round trips of every resource type', () => {
    for (const format of TREE_FORMATS) {
      it(`${formatName(format)} (${format}): object instance, object and each resource`, () => {
        const node = allTypes(0);
        const bytes = encodeNode(node, format, p('/9999/0'), model);
        assert.deepEqual(decodeNode(bytes, format, p('/9999/0'), model), node);

        const object: LwM2mObject = {
          kind: 'object',
          id: 9999,
          instances: new Map([
            [0, allTypes(0)],
            [7, allTypes(7)],
          ]),
        };
        assert.deepEqual(decodeNode(encodeNode(object, format, p('/9999'), model), format, p('/9999'), model), object);

        for (const resource of node.resources.values()) {
          const path = p(`/9999/0/${resource.id}`);
          assert.deepEqual(
            decodeNode(encodeNode(resource, format, path, model), format, path, model),
            resource,
            `resource ${resource.id}`,
          );
          if (resource.kind === 'multipleResource') {
            for (const [ri, value] of resource.instances) {
              const riPath = p(`/9999/0/${resource.id}/${ri}`);
              const ri_: LwM2mNode = { kind: 'resourceInstance', id: ri, type: resource.type, value };
              assert.deepEqual(decodeNode(encodeNode(ri_, format, riPath, model), format, riPath, model), ri_);
            }
          }
        }
      });
    }

    for (const format of [ContentFormat.TEXT, ContentFormat.CBOR]) {
      it(`${formatName(format)} (${format}): every single resource and resource instance`, () => {
        for (const resource of allTypes(0).resources.values()) {
          if (resource.kind === 'resource') {
            const path = p(`/9999/0/${resource.id}`);
            assert.deepEqual(
              decodeNode(encodeNode(resource, format, path, model), format, path, model),
              resource,
              `resource ${resource.id}`,
            );
          } else {
            for (const [ri, value] of resource.instances) {
              const path = p(`/9999/0/${resource.id}/${ri}`);
              const node: LwM2mNode = { kind: 'resourceInstance', id: ri, type: resource.type, value };
              assert.deepEqual(decodeNode(encodeNode(node, format, path, model), format, path, model), node);
            }
          }
        }
      });
    }

    it('TLV and LwM2M CBOR keep an empty multiple resource; SenML cannot name one and decodes it back only through the model', () => {
      const empty = multiple(10, 'integer', []);
      const tlv = encodeNode(empty, ContentFormat.TLV, p('/9999/0/10'), model);
      assert.equal(tlv.toString('hex'), '800a');
      assert.deepEqual(decodeNode(tlv, ContentFormat.TLV, p('/9999/0/10'), model), empty);
      // {[9999, 0, 10]: {}}
      const cbor = encodeNode(empty, ContentFormat.LWM2M_CBOR, p('/9999/0/10'), model);
      assert.equal(cbor.toString('hex'), 'a18319270f000aa0');
      assert.deepEqual(decodeNode(cbor, ContentFormat.LWM2M_CBOR, p('/9999/0/10'), model), empty);
      const senml = encodeNode(empty, ContentFormat.SENML_JSON, p('/9999/0/10'), model);
      assert.equal(senml.toString(), '[]');
      assert.deepEqual(decodeNode(senml, ContentFormat.SENML_JSON, p('/9999/0/10'), model), empty);
    });

    it('numbers beyond 2^53 given as integral doubles are encoded exactly as what they are', () => {
      const value = 2 ** 60;
      const node = single(1, 'integer', value);
      for (const format of TREE_FORMATS) {
        const decoded = decodeNode(encodeNode(node, format, p('/9999/0/1'), model), format, p('/9999/0/1'), model);
        assert.deepEqual(decoded, single(1, 'integer', 2n ** 60n), formatName(format));
      }
    });

    it('every encoder refuses values of the wrong JS type with a ContentCodecError', () => {
      const wrong: [ResourceType, number, ResourceValue][] = [
        ['integer', 1, 'x'],
        ['unsigned', 2, -5],
        ['float', 3, 1n],
        ['boolean', 4, 0],
        ['opaque', 5, 'AQ=='],
        ['time', 6, 1700000000],
        ['objlnk', 7, '3:0'],
        ['string', 0, 5],
      ];
      for (const format of [...TREE_FORMATS, ContentFormat.TEXT, ContentFormat.CBOR]) {
        for (const [type, rid, value] of wrong) {
          const err = assertCodecError(() => encodeNode(single(rid, type, value), format, p(`/9999/0/${rid}`), model));
          assert.ok(err instanceof ContentCodecError);
          assert.match(
            err.message,
            /does not fit resource type|out of range/,
            `${formatName(format)} ${type}: ${err.message}`,
          );
        }
      }
    });
  });
});
