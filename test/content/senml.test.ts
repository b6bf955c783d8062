import { strict as assert } from 'node:assert';
import { LwM2mPath } from '../../lib/model/path';
import type {
  LwM2mMultipleResource,
  LwM2mNode,
  LwM2mObject,
  LwM2mObjectInstance,
  LwM2mSingleResource,
} from '../../lib/model/types';
import {
  decodeNode,
  decodeNodes,
  decodePaths,
  decodeTimestamped,
  encodeNode,
  encodeNodes,
  encodePaths,
  parseSenmlCbor,
  parseSenmlJson,
} from '../../lib/content';
import { ContentFormat } from '../../lib/content/types';
import { assertCodecError, hex, instance, model, multiple, single, specDevice } from './fixtures';

const p = (text: string) => LwM2mPath.parse(text);
const JSON_ = ContentFormat.SENML_JSON;
const CBOR = ContentFormat.SENML_CBOR;
const OMA = ContentFormat.JSON;
const json = (text: string) => Buffer.from(text, 'utf8');

/** The SenML JSON Read response for /3/0 of the LwM2M 1.1 Core specification (§7.4.4 example). */
const SPEC_DEVICE_SENML =
  '[{"bn":"/3/0/","n":"0","vs":"Open Mobile Alliance"},' +
  '{"n":"1","vs":"Lightweight M2M Client"},' +
  '{"n":"2","vs":"345000123"},' +
  '{"n":"3","vs":"1.0"},' +
  '{"n":"6/0","v":1},' +
  '{"n":"6/1","v":5},' +
  '{"n":"7/0","v":3800},' +
  '{"n":"7/1","v":5000},' +
  '{"n":"8/0","v":125},' +
  '{"n":"8/1","v":900},' +
  '{"n":"9","v":100},' +
  '{"n":"10","v":15},' +
  '{"n":"11/0","v":0},' +
  '{"n":"13","v":1367491215},' +
  '{"n":"14","vs":"+02:00"},' +
  '{"n":"16","vs":"U"}]';

/** The same instance in LwM2M 1.0 JSON (TS 1.0 §6.4.4 example). */
const SPEC_DEVICE_OMA_JSON =
  '{"bn":"/3/0/","e":[' +
  '{"n":"0","sv":"Open Mobile Alliance"},' +
  '{"n":"1","sv":"Lightweight M2M Client"},' +
  '{"n":"2","sv":"345000123"},' +
  '{"n":"3","sv":"1.0"},' +
  '{"n":"6/0","v":1},' +
  '{"n":"6/1","v":5},' +
  '{"n":"7/0","v":3800},' +
  '{"n":"7/1","v":5000},' +
  '{"n":"8/0","v":125},' +
  '{"n":"8/1","v":900},' +
  '{"n":"9","v":100},' +
  '{"n":"10","v":15},' +
  '{"n":"11/0","v":0},' +
  '{"n":"13","v":1367491215},' +
  '{"n":"14","sv":"+02:00"},' +
  '{"n":"16","sv":"U"}]}';

describe('content/senml-json', () => {
  it('decodes the spec Device example and encodes it back to the same text', () => {
    assert.deepEqual(decodeNode(json(SPEC_DEVICE_SENML), JSON_, p('/3/0'), model), specDevice());
    assert.equal(encodeNode(specDevice(), JSON_, p('/3/0'), model).toString('utf8'), SPEC_DEVICE_SENML);
  });

  it('decodes pretty-printed input with whitespace and newlines', () => {
    const pretty = JSON.stringify(JSON.parse(SPEC_DEVICE_SENML), null, 2);
    assert.deepEqual(decodeNode(json(pretty), JSON_, p('/3/0'), model), specDevice());
  });

  it('single resource, multiple resource, resource instance and object', () => {
    const r = single(0, 'string', 'Open Mobile Alliance');
    assert.equal(encodeNode(r, JSON_, p('/3/0/0'), model).toString(), '[{"bn":"/3/0/0","vs":"Open Mobile Alliance"}]');
    assert.deepEqual(decodeNode(json('[{"bn":"/3/0/0","vs":"Open Mobile Alliance"}]'), JSON_, p('/3/0/0'), model), r);
    assert.deepEqual(decodeNode(json('[{"n":"/3/0/0","vs":"Open Mobile Alliance"}]'), JSON_, p('/3/0/0'), model), r);

    const m = multiple(7, 'integer', [
      [0, 3800],
      [1, 5000],
    ]);
    const mText = '[{"bn":"/3/0/7/","n":"0","v":3800},{"n":"1","v":5000}]';
    assert.equal(encodeNode(m, JSON_, p('/3/0/7'), model).toString(), mText);
    assert.deepEqual(decodeNode(json(mText), JSON_, p('/3/0/7'), model), m);

    const ri = { kind: 'resourceInstance' as const, id: 1, type: 'integer' as const, value: 5000 };
    assert.equal(encodeNode(ri, JSON_, p('/3/0/7/1'), model).toString(), '[{"bn":"/3/0/7/1","v":5000}]');
    assert.deepEqual(decodeNode(json('[{"bn":"/3/0/7/1","v":5000}]'), JSON_, p('/3/0/7/1'), model), ri);

    // an object with a base name change per instance
    const acl =
      '[{"bn":"/2/3/","n":"0","v":3},{"n":"1","v":1},{"n":"3","v":123},' +
      '{"bn":"/2/2/","n":"0","v":4},{"n":"1","v":2},{"n":"3","v":124}]';
    const object = decodeNode(json(acl), JSON_, p('/2'), model) as LwM2mObject;
    assert.deepEqual([...object.instances.keys()], [3, 2]);
    assert.deepEqual(
      object.instances.get(2),
      instance(2, [single(0, 'integer', 4), single(1, 'integer', 2), single(3, 'integer', 124)]),
    );
    const reencoded = encodeNode(object, JSON_, p('/2'), model).toString();
    assert.equal(reencoded.slice(0, 37), '[{"bn":"/2/","n":"3/0","v":3},{"n":"3');
    assert.deepEqual(decodeNode(json(reencoded), JSON_, p('/2'), model), object);
  });

  it('composes bn + n by plain concatenation (an id may be cut)', () => {
    const node = decodeNode(json('[{"bn":"/3/0/1","n":"1/0","v":0},{"n":"1/1","v":0}]'), JSON_, p('/3/0/11'), model);
    assert.deepEqual(
      node,
      multiple(11, 'integer', [
        [0, 0],
        [1, 0],
      ]),
    );
  });

  it('keeps 64-bit integers exact', () => {
    const u = decodeNode(json('[{"n":"/9999/0/2","v":18446744073709551615}]'), JSON_, p('/9999/0/2'), model);
    assert.deepEqual(u, single(2, 'unsigned', 18446744073709551615n));
    const i = decodeNode(json('[{"n":"/9999/0/1","v":9223372036854775800}]'), JSON_, p('/9999/0/1'), model);
    assert.deepEqual(i, single(1, 'integer', 9223372036854775800n));
    const negative = decodeNode(json('[{"n":"/9999/0/1","v":-9007199254740993}]'), JSON_, p('/9999/0/1'), model);
    assert.deepEqual(negative, single(1, 'integer', -9007199254740993n));
    assert.equal(
      encodeNode(single(1, 'integer', -(2n ** 63n)), JSON_, p('/9999/0/1'), model).toString(),
      '[{"bn":"/9999/0/1","v":-9223372036854775808}]',
    );
    assertCodecError(
      () => decodeNode(json('[{"n":"/9999/0/1","v":9223372036854775808}]'), JSON_, p('/9999/0/1'), model),
      /out of range/,
    );
  });

  it('opaque as base64url in vd, object links in vlo, booleans in vb, time in v', () => {
    const bytes = hex('abcdef fbff');
    const text = encodeNode(single(5, 'opaque', bytes), JSON_, p('/9999/0/5'), model).toString();
    assert.equal(text, '[{"bn":"/9999/0/5","vd":"q83v-_8"}]');
    assert.deepEqual((decodeNode(json(text), JSON_, p('/9999/0/5'), model) as LwM2mSingleResource).value, bytes);
    // standard base64 with padding is accepted on input
    assert.deepEqual(
      (decodeNode(json('[{"n":"/9999/0/5","vd":"q83v+/8="}]'), JSON_, p('/9999/0/5'), model) as LwM2mSingleResource)
        .value,
      bytes,
    );

    // a plain Uint8Array works like a Buffer
    const u8 = new Uint8Array([0xab, 0xcd, 0xef]);
    for (const format of [JSON_, OMA]) {
      const encoded = encodeNode(single(5, 'opaque', u8 as Buffer), format, p('/9999/0/5'), model);
      assert.deepEqual(
        (decodeNode(encoded, format, p('/9999/0/5'), model) as LwM2mSingleResource).value,
        hex('abcdef'),
      );
    }

    const link = single(7, 'objlnk', { objectId: 66, instanceId: 1 });
    assert.equal(encodeNode(link, JSON_, p('/9999/0/7'), model).toString(), '[{"bn":"/9999/0/7","vlo":"66:1"}]');
    assert.deepEqual(decodeNode(json('[{"n":"/9999/0/7","vlo":"66:1"}]'), JSON_, p('/9999/0/7'), model), link);

    assert.deepEqual(
      decodeNode(json('[{"n":"/9999/0/4","vb":true}]'), JSON_, p('/9999/0/4'), model),
      single(4, 'boolean', true),
    );
    // a time in exponent notation
    assert.deepEqual(
      decodeNode(json('[{"bn":"/3/0/13","v":1.638435E9}]'), JSON_, p('/3/0/13'), model),
      single(13, 'time', new Date(1638435000000)),
    );
  });

  it('types resources the model does not know from the value field', () => {
    const node = decodeNode(
      json(
        '[{"bn":"/1234/0/","n":"0","v":1},{"n":"1","v":1.5},{"n":"2","vs":"x"},{"n":"3","vb":false},{"n":"4","vd":"AQ"},{"n":"5/7","vlo":"1:2"}]',
      ),
      JSON_,
      p('/1234/0'),
      model,
    );
    assert.deepEqual(
      node,
      instance(0, [
        single(0, 'integer', 1),
        single(1, 'float', 1.5),
        single(2, 'string', 'x'),
        single(3, 'boolean', false),
        single(4, 'opaque', Buffer.from([1])),
        multiple(5, 'objlnk', [[7, { objectId: 1, instanceId: 2 }]]),
      ]),
    );
  });

  it('decodes empty payloads like Leshan (OMA issue 494): empty multiple resource / instance / object', () => {
    assert.deepEqual(decodeNode(Buffer.alloc(0), JSON_, p('/3/0/6'), model), multiple(6, 'integer', []));
    assert.deepEqual(decodeNode(json('[]'), JSON_, p('/3/0'), model), instance(0, []));
    assert.deepEqual(decodeNode(json(' [ ] '), JSON_, p('/1'), model), { kind: 'object', id: 1, instances: new Map() });
    assertCodecError(() => decodeNode(json('[]'), JSON_, p('/3/0/9'), model), /no value for \/3\/0\/9/);
  });

  describe('RFC 8428 examples (generic records)', () => {
    it('§5.1.1 single datapoint', () => {
      assert.deepEqual(parseSenmlJson(json('[{"n":"urn:dev:ow:10e2073a01080063","u":"Cel","v":23.1}]')), [
        { name: 'urn:dev:ow:10e2073a01080063', unit: 'Cel', value: 23.1 },
      ]);
    });

    it('§5.1.2 multiple datapoints: base name', () => {
      const records = parseSenmlJson(
        json(`[
          {"bn":"urn:dev:ow:10e2073a01080063:","n":"voltage","u":"V","v":120.1},
          {"n":"current","u":"A","v":1.2}
        ]`),
      );
      assert.deepEqual(records, [
        { name: 'urn:dev:ow:10e2073a01080063:voltage', unit: 'V', value: 120.1 },
        { name: 'urn:dev:ow:10e2073a01080063:current', unit: 'A', value: 1.2 },
      ]);
    });

    it('§5.1.3 multiple measurements: base time, relative times, base unit, version', () => {
      const records = parseSenmlJson(
        json(`[
          {"bn":"urn:dev:ow:10e2073a0108006:","bt":1.276020076001e+09,"bu":"A","bver":5,"n":"voltage","u":"V","v":120.1},
          {"n":"current","t":-5,"v":1.2},
          {"n":"current","t":-4,"v":1.3},
          {"n":"current","t":-3,"v":1.4},
          {"n":"current","t":-2,"v":1.5},
          {"n":"current","t":-1,"v":1.6},
          {"n":"current","v":1.7}
        ]`),
      );
      assert.equal(records.length, 7);
      assert.deepEqual(records[0], {
        name: 'urn:dev:ow:10e2073a0108006:voltage',
        unit: 'V',
        value: 120.1,
        time: 1.276020076001e9,
      });
      assert.deepEqual(records[1], {
        name: 'urn:dev:ow:10e2073a0108006:current',
        unit: 'A',
        value: 1.2,
        time: 1.276020076001e9 - 5,
      });
      assert.deepEqual(records[6], {
        name: 'urn:dev:ow:10e2073a0108006:current',
        unit: 'A',
        value: 1.7,
        time: 1.276020076001e9,
      });
    });

    it('§5.1.6 collection of resources: vs, vb, vd', () => {
      const records = parseSenmlJson(
        json(`[
          {"bn":"urn:dev:ow:10e2073a01080063:","n":"temp","u":"Cel","v":23.1},
          {"n":"label","vs":"Machine Room"},
          {"n":"open","vb":false},
          {"n":"nfc-reader","vd":"aGkgCg"}
        ]`),
      );
      assert.deepEqual(records[1], { name: 'urn:dev:ow:10e2073a01080063:label', stringValue: 'Machine Room' });
      assert.deepEqual(records[2], { name: 'urn:dev:ow:10e2073a01080063:open', boolValue: false });
      assert.deepEqual(records[3].dataValue, Buffer.from('hi \n'));
    });

    it('base value and base sum are added; unknown fields ignored; must-understand fields rejected', () => {
      const records = parseSenmlJson(json('[{"bn":"x","bv":10,"bs":1,"n":"a","v":1,"s":2,"foo":{"bar":[1]}}]'));
      assert.deepEqual(records, [{ name: 'xa', value: 11, sum: 3 }]);
      assertCodecError(() => parseSenmlJson(json('[{"n":"a","v":1,"foo_":1}]')), /must-understand field "foo_"/);
      assertCodecError(() => parseSenmlJson(json('[{"bver":11,"n":"a","v":1}]')), /version 11 is not supported/);
    });
  });

  describe('time series and multi-path decoding', () => {
    it('groups records by absolute time at a base path (times >= 2^28 are absolute)', () => {
      const payload = json(
        '[{"bn":"/1024/0/","bt":268600000,"n":"1","v":22.9},{"n":"1","v":24.1,"t":-50},' +
          '{"bt":268500000,"n":"0","vs":"a string"},{"n":"1","v":22.4}]',
      );
      const series = decodeTimestamped(payload, JSON_, model, p('/1024/0'));
      assert.deepEqual(
        series.map((s) => [s.time?.getTime(), s.path.toString()]),
        [
          [268600000000, '/1024/0'],
          [268599950000, '/1024/0'],
          [268500000000, '/1024/0'],
        ],
      );
      assert.deepEqual(series[2].node, instance(0, [single(0, 'string', 'a string'), single(1, 'float', 22.4)]));
      // decodeNode refuses the same path twice
      assertCodecError(() => decodeNode(payload, JSON_, p('/1024/0'), model), /more than one value for \/1024\/0\/1/);
    });

    it('times below 2^28 are relative to now (RFC 8428 §4.5.3)', () => {
      const before = Date.now();
      const series = decodeTimestamped(
        json('[{"n":"/3303/0/5700","v":22.4,"t":-5},{"n":"/3303/0/5700","v":22.5}]'),
        JSON_,
        model,
      );
      const after = Date.now();
      assert.equal(series.length, 2);
      const t = series[0].time as Date;
      assert.ok(t.getTime() >= before - 5000 && t.getTime() <= after - 5000, `relative time ${t.toISOString()}`);
      assert.equal(series[1].time, undefined);
      assert.deepEqual(series[0].node, single(5700, 'float', 22.4));
      assert.equal(series[0].path.toString(), '/3303/0/5700');
    });

    it('without a base path: one entry per record path and time (Send)', () => {
      const payload = json(
        '[{"bn":"/3303/0/5700","bt":1699877805.766,"v":-128.8},{"bn":"/6/0/0","t":0.101,"v":-39.0},{"bn":"/3/0/7/1","v":5000}]',
      );
      const series = decodeTimestamped(payload, JSON_, model);
      assert.deepEqual(
        series.map((s) => [s.path.toString(), s.time?.getTime(), s.node.kind]),
        [
          // grouped by time: bt persists, so /3/0/7/1 shares the first record's time
          ['/3303/0/5700', 1699877805766, 'resource'],
          ['/3/0/7/1', 1699877805766, 'resourceInstance'],
          ['/6/0/0', 1699877805867, 'resource'],
        ],
      );
    });

    it('decodeNodes: per record path, or grouped under the requested paths', () => {
      const payload = json(
        '[{"bn":"/1/0/1","v":45},{"bn":"/1/0/2","v":30},{"bn":"/1/0/3","v":100},' +
          '{"bn":"/6/0/","n":"0","v":43.918998},{"n":"1","v":2.351149},{"n":"5","v":1610029880}]',
      );
      const flat = decodeNodes(payload, JSON_, model);
      assert.deepEqual([...flat.keys()], ['/1/0/1', '/1/0/2', '/1/0/3', '/6/0/0', '/6/0/1', '/6/0/5']);
      assert.deepEqual(flat.get('/6/0/5'), single(5, 'time', new Date(1610029880000)));
      const grouped = decodeNodes(payload, JSON_, model, [p('/1/0/1'), p('/1/0/2'), p('/1/0/3'), p('/6/0'), p('/3/0')]);
      assert.deepEqual([...grouped.keys()], ['/1/0/1', '/1/0/2', '/1/0/3', '/6/0']);
      assert.deepEqual(grouped.get('/1/0/3'), single(3, 'integer', 100));
      assert.deepEqual(
        grouped.get('/6/0'),
        instance(0, [
          single(0, 'float', 43.918998),
          single(1, 'float', 2.351149),
          single(5, 'time', new Date(1610029880000)),
        ]),
      );
      assertCodecError(() => decodeNodes(payload, JSON_, model, [p('/1')]), /outside the requested paths/);
    });

    it('encodeNodes names every record by its full path, and decodes back', () => {
      const nodes = new Map<string, LwM2mNode>([
        ['/3/0/14', single(14, 'string', '+01:00')],
        ['/1/0/1', single(1, 'integer', 86400)],
        ['/3/0/7', multiple(7, 'integer', [[0, 3800]])],
      ]);
      const bytes = encodeNodes(nodes, JSON_, model);
      assert.equal(
        bytes.toString(),
        '[{"n":"/3/0/14","vs":"+01:00"},{"n":"/1/0/1","v":86400},{"n":"/3/0/7/0","v":3800}]',
      );
      const decoded = decodeNodes(bytes, JSON_, model, [p('/3/0/14'), p('/1/0/1'), p('/3/0/7')]);
      assert.deepEqual(decoded, nodes);
      const cbor = encodeNodes(nodes, CBOR, model);
      assert.deepEqual(decodeNodes(cbor, CBOR, model, [p('/3/0/14'), p('/1/0/1'), p('/3/0/7')]), nodes);
    });

    it('paths of composite requests', () => {
      const paths = [p('/3/0/1'), p('/1'), p('/3303/0/5700/0')];
      const bytes = encodePaths(paths, JSON_);
      assert.equal(bytes.toString(), '[{"n":"/3/0/1"},{"n":"/1"},{"n":"/3303/0/5700/0"}]');
      assert.deepEqual(decodePaths(bytes, JSON_), paths);
      assert.deepEqual(decodePaths(json('[{"bn":"/4/0/","n":"0"},{"n":"1"}]'), JSON_), [p('/4/0/0'), p('/4/0/1')]);
      assert.deepEqual(decodePaths(encodePaths(paths, CBOR), CBOR), paths);
      assertCodecError(() => decodePaths(json('[{"n":"/4/0/0","v":1}]'), JSON_), /must not carry a value/);
      assertCodecError(
        () => decodePaths(json('[{"n":"/4/0/0","t":20000000}]'), JSON_),
        /must not carry a value or time/,
      );
    });
  });

  describe('malformed input and model contradictions', () => {
    const cases: [string, string, string, RegExp][] = [
      [
        'truncated JSON',
        '[{"n":"/3/0/9","v":1',
        '/3/0/9',
        /invalid JSON at character 20: unexpected end of input in an object/,
      ],
      ['not JSON', 'hello', '/3/0/9', /invalid JSON at character 0: unexpected character "h"/],
      ['an object instead of an array', '{"n":"/3/0/9","v":1}', '/3/0/9', /must be an array of records/],
      ['a record that is not an object', '[1]', '/3/0/9', /record 0 must be an object/],
      ['trailing content', '[{"n":"/3/0/9","v":1}] x', '/3/0/9', /unexpected content after the JSON value/],
      ['a number as a string', '[{"n":"/3/0/9","v":"100"}]', '/3/0/9', /record 0 "v" must be a number/],
      [
        'a string where an integer is defined',
        '[{"n":"/3/0/9","vs":"100"}]',
        '/3/0/9',
        /integer resource needs "v", got "vs"/,
      ],
      ['a fraction for an integer', '[{"n":"/3/0/9","v":1.5}]', '/3/0/9', /1.5 is not an integer/],
      ['a number for a string', '[{"n":"/3/0/0","v":1}]', '/3/0/0', /string resource needs "vs"/],
      ['a fractional time', '[{"n":"/3/0/13","v":1.5}]', '/3/0/13', /not whole seconds/],
      ['two value fields', '[{"n":"/3/0/9","v":1,"vs":"1"}]', '/3/0/9', /more than one value field/],
      ['no value', '[{"n":"/3/0/9"}]', '/3/0/9', /record has no value/],
      ['a duplicate key', '[{"n":"/3/0/9","v":1,"v":2}]', '/3/0/9', /duplicate member "v"/],
      ['a name that is not a path', '[{"n":"temp","v":1}]', '/3/0/9', /name is not an LwM2M path/],
      ['a value at instance level', '[{"n":"/3/0","v":1}]', '/3/0', /needs a resource or resource instance path/],
      ['a record outside the target path', '[{"n":"/3/1/9","v":1}]', '/3/0', /outside the target path \/3\/0/],
      [
        'a value for an instance of a single resource',
        '[{"n":"/3/0/9/0","v":1}]',
        '/3/0',
        /names an instance of single resource/,
      ],
      [
        'a single value for a multiple resource',
        '[{"n":"/3/0/6","v":1}]',
        '/3/0',
        /multiple resource; values must name resource instances/,
      ],
      ['an invalid object link', '[{"n":"/9999/0/7","vlo":"66"}]', '/9999/0/7', /invalid object link/],
      ['invalid base64url', '[{"n":"/9999/0/5","vd":"***"}]', '/9999/0/5', /invalid base64 character/],
      ['invalid UTF-8', '\u00ff', '/3/0/0', /./],
      ['deep nesting', '['.repeat(100), '/3/0/0', /nesting deeper than 32/],
      ['an escaped control char in a name', '[{"n":"/3/0/0\\u0000","vs":"x"}]', '/3/0/0', /not an LwM2M path/],
      ['a raw control character in a string', '[{"n":"/3/0/0","vs":"a\u0001"}]', '/3/0/0', /control character/],
      ['a bad escape', '[{"n":"/3/0/0","vs":"\\x"}]', '/3/0/0', /invalid escape/],
      ['a leading zero', '[{"n":"/3/0/9","v":01}]', '/3/0/9', /expected "," or "}"/],
      ['an executable resource', '[{"n":"/3/0/4","v":1}]', '/3/0/4', /executable/],
    ];
    for (const [name, text, path, pattern] of cases) {
      it(`rejects ${name}`, () => {
        const bytes = name === 'invalid UTF-8' ? hex('5bff5d') : json(text);
        assertCodecError(() => decodeNode(bytes, JSON_, p(path), model), pattern);
      });
    }

    it('decodes escapes and unicode', () => {
      const node = decodeNode(
        json('[{"n":"/3/0/0","vs":"a\\"b\\\\c\\/\\n\\u00e9\\ud834\\udd1e ✓"}]'),
        JSON_,
        p('/3/0/0'),
        model,
      );
      assert.equal((node as LwM2mSingleResource).value, 'a"b\\c/\né𝄞 ✓');
      const back = encodeNode(node, JSON_, p('/3/0/0'), model);
      assert.deepEqual(decodeNode(back, JSON_, p('/3/0/0'), model), node);
    });

    it('refuses to encode non-finite floats (4.06)', () => {
      assertCodecError(
        () => encodeNode(single(5700, 'float', Infinity), JSON_, p('/3303/0/5700'), model),
        /cannot be represented in JSON/,
        '4.06',
      );
    });
  });
});

describe('content/senml-cbor', () => {
  it('encodes /3303/0/5700 with integer labels, byte for byte', () => {
    const bytes = encodeNode(single(5700, 'float', 22.4), CBOR, p('/3303/0/5700'), model);
    // [{-2: "/3303/0/5700", 2: 22.4}]
    assert.equal(bytes.toString('hex'), '81a2216c2f333330332f302f3537303002fb4036666666666666');
    assert.deepEqual(decodeNode(bytes, CBOR, p('/3303/0/5700'), model), single(5700, 'float', 22.4));
  });

  it('encodes a multiple resource with bn then n', () => {
    const m = multiple(7, 'integer', [
      [0, 3800],
      [1, 5000],
    ]);
    const bytes = encodeNode(m, CBOR, p('/3/0/7'), model);
    // [{-2: "/3/0/7/", 0: "0", 2: 3800}, {0: "1", 2: 5000}]
    assert.equal(bytes.toString('hex'), '82a321672f332f302f372f0061300219' + '0ed8' + 'a2006131021913' + '88');
    assert.deepEqual(decodeNode(bytes, CBOR, p('/3/0/7'), model), m);
  });

  it('decodes an opaque vd byte string (Leshan vector [{-2: "/0/0/3", 8: h\'ABCDEF\'}])', () => {
    assert.deepEqual(
      decodeNode(hex('81a221662f302f302f330843abcdef'), CBOR, p('/0/0/3'), model),
      single(3, 'opaque', hex('abcdef')),
    );
  });

  it('round trips the spec Device instance', () => {
    const bytes = encodeNode(specDevice(), CBOR, p('/3/0'), model);
    assert.deepEqual(decodeNode(bytes, CBOR, p('/3/0'), model), specDevice());
    assert.ok(bytes.length < Buffer.byteLength(SPEC_DEVICE_SENML), 'CBOR is smaller than JSON');
  });

  it('keeps 64-bit integers exact and uses the "vlo" text label for object links', () => {
    const node = instance(0, [
      single(1, 'integer', -(2n ** 63n)),
      single(2, 'unsigned', 2n ** 64n - 1n),
      single(7, 'objlnk', { objectId: 3, instanceId: 0 }),
      single(6, 'time', new Date(-5000)),
    ]);
    const bytes = encodeNode(node, CBOR, p('/9999/0'), model);
    assert.ok(bytes.includes(hex('3b7fffffffffffffff')), 'int64 min as a negative integer');
    assert.ok(bytes.includes(hex('1bffffffffffffffff')), 'uint64 max as an unsigned integer');
    assert.ok(bytes.includes(hex('63766c6f63333a30')), '"vlo": "3:0"');
    assert.deepEqual(decodeNode(bytes, CBOR, p('/9999/0'), model), node);
  });

  it('RFC 8428 §6 example (multiple datapoints) as generic records', () => {
    const bytes = hex(
      '82 a4 21 78 1c 75726e3a6465763a6f773a313065323037336130313038303036333a' +
        ' 00 67 766f6c74616765 01 61 56 02 fb 405e066666666666' +
        ' a3 00 67 63757272656e74 01 61 41 02 fb 3ff3333333333333',
    );
    assert.deepEqual(parseSenmlCbor(bytes), [
      { name: 'urn:dev:ow:10e2073a01080063:voltage', unit: 'V', value: 120.1 },
      { name: 'urn:dev:ow:10e2073a01080063:current', unit: 'A', value: 1.2 },
    ]);
  });

  const bad: [string, string, RegExp][] = [
    ['a map instead of an array', 'a0', /must be an array of records/],
    ['a record that is not a map', '8101', /record 0 must be a map/],
    ['truncated CBOR', '81a221662f30', /invalid CBOR/],
    ['trailing bytes', '8000', /invalid CBOR/],
    ['a byte-string label', '81a1410001', /neither an integer nor a text string/],
    ['vs as a number', '81a2216c2f333330332f302f353730300301', /"vs" must be a text string/],
    ['vd as text', '81a2216c2f333330332f302f35373030086161', /"vd" must be a byte string/],
    ['a tagged value', '81a2216c2f333330332f302f3537303002c11a5182428f', /"v" must be a number/],
    ['a must-understand text label', '81a2216c2f333330332f302f3537303063615f5f01', /must-understand/],
    ['a string for a float', '81a2216c2f333330332f302f35373030036178', /float resource needs "v", got "vs"/],
  ];
  for (const [name, bytes, pattern] of bad) {
    it(`rejects ${name}`, () => {
      assertCodecError(() => decodeNode(hex(bytes), CBOR, p('/3303/0/5700'), model), pattern);
    });
  }
});

describe('content/oma-json (LwM2M 1.0 JSON)', () => {
  it('decodes the spec Device example and encodes it back to the same text', () => {
    assert.deepEqual(decodeNode(json(SPEC_DEVICE_OMA_JSON), OMA, p('/3/0'), model), specDevice());
    assert.equal(encodeNode(specDevice(), OMA, p('/3/0'), model).toString(), SPEC_DEVICE_OMA_JSON);
    assert.deepEqual(decodeNode(json(SPEC_DEVICE_OMA_JSON), ContentFormat.OLD_JSON, p('/3/0'), model), specDevice());
  });

  it('decodes names with an empty root base name or without base name', () => {
    const rooted = SPEC_DEVICE_OMA_JSON.replace('"bn":"/3/0/"', '"bn":"/"').replace(/"n":"/g, '"n":"3/0/');
    assert.deepEqual(decodeNode(json(rooted), OMA, p('/3/0'), model), specDevice());
    const bare = SPEC_DEVICE_OMA_JSON.replace('"bn":"/3/0/",', '').replace(/"n":"/g, '"n":"/3/0/');
    assert.deepEqual(decodeNode(json(bare), OMA, p('/3/0'), model), specDevice());
  });

  it('bv booleans, ov object links, sv opaque (base64)', () => {
    const node = instance(0, [
      single(4, 'boolean', true),
      single(7, 'objlnk', { objectId: 3, instanceId: 0 }),
      single(5, 'opaque', Buffer.from([1, 2, 3, 4, 5])),
    ]);
    const text = encodeNode(node, OMA, p('/9999/0'), model).toString();
    assert.equal(text, '{"bn":"/9999/0/","e":[{"n":"4","bv":true},{"n":"7","ov":"3:0"},{"n":"5","sv":"AQIDBAU="}]}');
    assert.deepEqual(decodeNode(json(text), OMA, p('/9999/0'), model), node);
  });

  it('time series with bt and t', () => {
    const payload = json(
      '{"bn":"/1024/0/1","e":[{"v":22.9,"t":-30},{"v":22.4,"t":-5},{"v":24.1,"t":-50}],"bt":1300000000}',
    );
    const series = decodeTimestamped(payload, OMA, model, p('/1024/0/1'));
    assert.deepEqual(
      series.map((s) => [(s.time as Date).getTime() / 1000, (s.node as LwM2mSingleResource).value]),
      [
        [1299999970, 22.9],
        [1299999995, 22.4],
        [1299999950, 24.1],
      ],
    );
  });

  it('rejects malformed documents', () => {
    assertCodecError(() => decodeNode(json('{}'), OMA, p('/3/0'), model), /"e" must be an array/);
    assertCodecError(() => decodeNode(json('[]'), OMA, p('/3/0'), model), /must be an object/);
    assertCodecError(
      () => decodeNode(json('{"e":[{"n":"9","sv":"x"}],"bn":"/3/0/"}'), OMA, p('/3/0'), model),
      /integer resource needs "v", got "sv"/,
    );
    assertCodecError(
      () => decodeNode(json('{"e":[{"n":"/3/0/9","v":true}]}'), OMA, p('/3/0'), model),
      /"v" must be a number/,
    );
    assertCodecError(
      () => decodeNode(json('{"e":[{"n":"/3/0/6","v":1}]}'), OMA, p('/3/0'), model),
      /multiple resource/,
    );
  });

  it('empty entries: empty multiple resource, error for a single resource', () => {
    assert.deepEqual(
      decodeNode(json('{"bn":"3/0/6","e":[]}'), OMA, p('/3/0/6'), model) as LwM2mMultipleResource,
      multiple(6, 'integer', []),
    );
    assertCodecError(() => decodeNode(json('{"bn":"2/0/0","e":[]}'), OMA, p('/2/0/0'), model), /no value/);
    assert.deepEqual(decodeNode(json('{"e":[]}'), OMA, p('/2/0'), model) as LwM2mObjectInstance, instance(0, []));
  });
});
