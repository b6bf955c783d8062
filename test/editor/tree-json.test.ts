import { strict as assert } from 'node:assert';
import { ObjectModel } from '../../lib/model/object-model';
import { coerceValue } from '../../lib/model/values';
import { displayValue, jsonSafe, objectTreeJson, valuesByPath } from '../../lib/model/tree-json';
import type { LwM2mObjectInstance } from '../../lib/model/types';

describe('object model and values as JSON for the device browser (lib/model/tree-json)', function () {
  const model = ObjectModel.withBuiltins();

  it('names objects and resources from the model, in id order; an unknown object keeps its id', function () {
    const tree = objectTreeJson(
      { 3303: { instances: [1, 0] }, 3: { instances: [0] }, 40000: { instances: [] } },
      model,
    );
    assert.deepEqual(
      tree.map((object) => [object.id, object.name, object.known, object.instances]),
      [
        [3, 'Device', true, [0]],
        [3303, 'Temperature', true, [0, 1]],
        [40000, 'Object 40000', false, []],
      ],
    );
    const reboot = tree[0].resources.find((resource) => resource.id === 4)!;
    assert.deepEqual([reboot.name, reboot.operations, reboot.type], ['Reboot', 'E', 'none']);
    assert.ok(JSON.stringify(tree).length < 60_000);
  });

  it('shows values as the text the write path reads back, keyed by path', function () {
    const instance: LwM2mObjectInstance = {
      kind: 'instance',
      id: 0,
      resources: new Map([
        [0, { kind: 'resource', id: 0, type: 'string', value: 'ACME' }],
        [
          7,
          {
            kind: 'multipleResource',
            id: 7,
            type: 'integer',
            instances: new Map([
              [0, 3800],
              [1, 5000],
            ]),
          },
        ],
        [13, { kind: 'resource', id: 13, type: 'time', value: new Date('2026-01-02T03:04:05Z') }],
      ]),
    };
    const values = valuesByPath(instance, '/3/0');
    assert.equal(values['/3/0/0'].value, 'ACME');
    assert.equal(values['/3/0/7/1'].text, '5000');
    assert.equal(values['/3/0/7'].text, '0: 3800, 1: 5000');
    assert.equal(values['/3/0/13'].text, '2026-01-02T03:04:05.000Z');
    for (const [type, value] of [
      ['opaque', Buffer.from([1, 0xab])],
      ['integer', 2n ** 62n],
      ['time', new Date('2026-01-02T03:04:05Z')],
      ['objlnk', { objectId: 3, instanceId: 0 }],
      ['boolean', true],
    ] as const) {
      const text = displayValue(value).text;
      assert.deepEqual(coerceValue(text, type), value, `${type} round trip through ${text}`);
    }
    assert.deepEqual(jsonSafe({ a: [Buffer.from('hi'), 5n, new Map([['k', 1]])] }), { a: ['hex:6869', '5', { k: 1 }] });
  });
});
