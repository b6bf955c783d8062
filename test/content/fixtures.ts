/**
 * A small fake object model for the codec tests (independent of lib/model/object-model.ts), the
 * Device object instance of the LwM2M specification examples, and helpers.
 */
import { strict as assert } from 'node:assert';
import type {
  LwM2mMultipleResource,
  LwM2mObjectInstance,
  LwM2mResource,
  LwM2mSingleResource,
  ObjectDefinition,
  ObjectModelLookup,
  Operations,
  ResourceDefinition,
  ResourceType,
  ResourceValue,
} from '../../lib/model/types';
import { ContentCodecError } from '../../lib/content/types';

type ResourceSpec = [id: number, name: string, type: ResourceType, multiple?: boolean, operations?: Operations];

function object(id: number, name: string, multiple: boolean, resources: ResourceSpec[]): ObjectDefinition {
  const defs: Record<number, ResourceDefinition> = {};
  for (const [rid, rname, type, rmultiple = false, operations = 'R'] of resources) {
    defs[rid] = { id: rid, name: rname, type, multiple: rmultiple, operations, mandatory: false };
  }
  return { id, name, version: '1.0', lwm2mVersion: '1.0', multiple, mandatory: false, resources: defs };
}

const OBJECTS: ObjectDefinition[] = [
  object(1, 'LwM2M Server', true, [
    [0, 'Short Server ID', 'integer'],
    [1, 'Lifetime', 'integer', false, 'RW'],
    [2, 'Default Minimum Period', 'integer', false, 'RW'],
    [3, 'Default Maximum Period', 'integer', false, 'RW'],
    [4, 'Disable', 'none', false, 'E'],
    [5, 'Disable Timeout', 'integer', false, 'RW'],
    [6, 'Notification Storing When Disabled or Offline', 'boolean', false, 'RW'],
    [7, 'Binding', 'string', false, 'RW'],
    [8, 'Registration Update Trigger', 'none', false, 'E'],
  ]),
  object(2, 'LwM2M Access Control', true, [
    [0, 'Object ID', 'integer'],
    [1, 'Object Instance ID', 'integer'],
    [2, 'ACL', 'integer', true, 'RW'],
    [3, 'Access Control Owner', 'integer', false, 'RW'],
  ]),
  object(3, 'Device', false, [
    [0, 'Manufacturer', 'string'],
    [1, 'Model Number', 'string'],
    [2, 'Serial Number', 'string'],
    [3, 'Firmware Version', 'string'],
    [4, 'Reboot', 'none', false, 'E'],
    [5, 'Factory Reset', 'none', false, 'E'],
    [6, 'Available Power Sources', 'integer', true],
    [7, 'Power Source Voltage', 'integer', true],
    [8, 'Power Source Current', 'integer', true],
    [9, 'Battery Level', 'integer'],
    [10, 'Memory Free', 'integer'],
    [11, 'Error Code', 'integer', true],
    [12, 'Reset Error Code', 'none', false, 'E'],
    [13, 'Current Time', 'time', false, 'RW'],
    [14, 'UTC Offset', 'string', false, 'RW'],
    [15, 'Timezone', 'string', false, 'RW'],
    [16, 'Supported Binding and Modes', 'string'],
    [17, 'Device Type', 'string'],
    [18, 'Hardware Version', 'string'],
    [19, 'Software Version', 'string'],
    [20, 'Battery Status', 'integer'],
    [21, 'Memory Total', 'integer'],
    [22, 'ExtDevInfo', 'objlnk', true],
  ]),
  object(4, 'Connectivity Monitoring', false, [
    [0, 'Network Bearer', 'integer'],
    [1, 'Available Network Bearer', 'integer', true],
    [2, 'Radio Signal Strength', 'integer'],
  ]),
  object(5, 'Firmware Update', false, [
    [0, 'Package', 'opaque', false, 'W'],
    [1, 'Package URI', 'string', false, 'RW'],
    [2, 'Update', 'none', false, 'E'],
    [3, 'State', 'integer'],
  ]),
  object(6, 'Location', false, [
    [0, 'Latitude', 'float'],
    [1, 'Longitude', 'float'],
    [5, 'Timestamp', 'time'],
  ]),
  // objects 65 and 66 of the object link examples in the LwM2M specification (TLV section)
  object(65, 'object link tests 65', false, [
    [0, 'res0', 'objlnk', true],
    [1, 'res1', 'string'],
    [2, 'res2', 'integer'],
  ]),
  object(66, 'object link tests 66', true, [
    [0, 'res0', 'string'],
    [1, 'res1', 'string'],
    [2, 'res2', 'objlnk'],
  ]),
  object(1024, 'custom', true, [
    [0, 'a string', 'string'],
    [1, 'a float', 'float'],
    [2, 'a boolean', 'boolean'],
  ]),
  object(3303, 'Temperature', true, [
    [5601, 'Min Measured Value', 'float'],
    [5602, 'Max Measured Value', 'float'],
    [5603, 'Min Range Value', 'float'],
    [5604, 'Max Range Value', 'float'],
    [5605, 'Reset Min and Max Measured Values', 'none', false, 'E'],
    [5700, 'Sensor Value', 'float'],
    [5701, 'Sensor Units', 'string'],
    [5750, 'Application Type', 'string', false, 'RW'],
    [5518, 'Timestamp', 'time'],
  ]),
  // every resource type, single and multiple
  object(9999, 'All Types', true, [
    [0, 'string', 'string', false, 'RW'],
    [1, 'integer', 'integer', false, 'RW'],
    [2, 'unsigned', 'unsigned', false, 'RW'],
    [3, 'float', 'float', false, 'RW'],
    [4, 'boolean', 'boolean', false, 'RW'],
    [5, 'opaque', 'opaque', false, 'RW'],
    [6, 'time', 'time', false, 'RW'],
    [7, 'objlnk', 'objlnk', false, 'RW'],
    [8, 'corelnk', 'corelnk', false, 'RW'],
    [9, 'execute', 'none', false, 'E'],
    [10, 'integers', 'integer', true, 'RW'],
    [11, 'strings', 'string', true, 'RW'],
    [12, 'opaques', 'opaque', true, 'RW'],
    [13, 'objlnks', 'objlnk', true, 'RW'],
    [14, 'unsigneds', 'unsigned', true, 'RW'],
    [15, 'floats', 'float', true, 'RW'],
    [16, 'booleans', 'boolean', true, 'RW'],
    [17, 'times', 'time', true, 'RW'],
    [18, 'corelnks', 'corelnk', true, 'RW'],
  ]),
];

export class FakeModel implements ObjectModelLookup {
  private readonly objects = new Map<number, ObjectDefinition>();
  constructor(objects: ObjectDefinition[] = OBJECTS) {
    for (const o of objects) this.objects.set(o.id, o);
  }
  getObject(objectId: number): ObjectDefinition | undefined {
    return this.objects.get(objectId);
  }
  getResource(objectId: number, resourceId: number): ResourceDefinition | undefined {
    return this.objects.get(objectId)?.resources[resourceId];
  }
}

export const model = new FakeModel();

export function hex(text: string): Buffer {
  const clean = text.replace(/\s+/g, '');
  assert.ok(/^([0-9a-fA-F]{2})*$/.test(clean), `bad hex in test: ${text}`);
  return Buffer.from(clean, 'hex');
}

export function single(id: number, type: ResourceType, value: ResourceValue): LwM2mSingleResource {
  return { kind: 'resource', id, type, value };
}

export function multiple(id: number, type: ResourceType, values: [number, ResourceValue][]): LwM2mMultipleResource {
  return { kind: 'multipleResource', id, type, instances: new Map(values) };
}

export function instance(id: number, resources: LwM2mResource[]): LwM2mObjectInstance {
  return { kind: 'instance', id, resources: new Map(resources.map((r) => [r.id, r])) };
}

/** An instance of the All Types object 9999 with every resource type, single and multiple, and edge values. */
export function allTypes(id: number): LwM2mObjectInstance {
  return instance(id, [
    single(0, 'string', 'héllo, "world" ✓ 𝄞\n'),
    single(1, 'integer', 2n ** 62n),
    single(2, 'unsigned', 2n ** 64n - 1n),
    single(3, 'float', Math.PI),
    single(4, 'boolean', false),
    single(5, 'opaque', Buffer.from(Array.from({ length: 256 }, (_, i) => i))),
    single(6, 'time', new Date(1700000000000)),
    single(7, 'objlnk', { objectId: 3, instanceId: 0 }),
    single(8, 'corelnk', '</3/0>;ver=1.1,</1/0>'),
    multiple(10, 'integer', [
      [0, -1],
      [1, 0],
      [2, 2147483648],
      [65535, -(2n ** 63n)],
    ]),
    multiple(11, 'string', [
      [0, 'a'],
      [7, ''],
    ]),
    multiple(12, 'opaque', [
      [0, Buffer.alloc(0)],
      [1, Buffer.from([1, 2, 3])],
    ]),
    multiple(13, 'objlnk', [
      [0, { objectId: 65535, instanceId: 65535 }],
      [1, { objectId: 1, instanceId: 2 }],
    ]),
    multiple(14, 'unsigned', [
      [0, 0],
      [1, 4294967295],
      [2, 9007199254740992n],
    ]),
    multiple(15, 'float', [
      [0, 1.5],
      [1, -1e-7],
      [2, 1e21],
    ]),
    multiple(16, 'boolean', [
      [0, true],
      [1, false],
    ]),
    multiple(17, 'time', [
      [0, new Date(0)],
      [1, new Date(-86400000)],
    ]),
    multiple(18, 'corelnk', [[0, '</1>']]),
  ]);
}

/** The Device object instance of the LwM2M specification examples (TLV, JSON, SenML JSON). */
export function specDevice(): LwM2mObjectInstance {
  return instance(0, [
    single(0, 'string', 'Open Mobile Alliance'),
    single(1, 'string', 'Lightweight M2M Client'),
    single(2, 'string', '345000123'),
    single(3, 'string', '1.0'),
    multiple(6, 'integer', [
      [0, 1],
      [1, 5],
    ]),
    multiple(7, 'integer', [
      [0, 3800],
      [1, 5000],
    ]),
    multiple(8, 'integer', [
      [0, 125],
      [1, 900],
    ]),
    single(9, 'integer', 100),
    single(10, 'integer', 15),
    multiple(11, 'integer', [[0, 0]]),
    single(13, 'time', new Date(0x5182428f * 1000)),
    single(14, 'string', '+02:00'),
    single(16, 'string', 'U'),
  ]);
}

/** The spec's TLV for the Device object instance /3/0 (resources only, LwM2M 1.0 §6.4.3.1 / 1.1 §7.4.3). */
export const SPEC_DEVICE_TLV = hex(`
  C8 00 14 4F 70 65 6E 20 4D 6F 62 69 6C 65 20 41 6C 6C 69 61 6E 63 65
  C8 01 16 4C 69 67 68 74 77 65 69 67 68 74 20 4D 32 4D 20 43 6C 69 65 6E 74
  C8 02 09 33 34 35 30 30 30 31 32 33
  C3 03 31 2E 30
  86 06 41 00 01 41 01 05
  88 07 08 42 00 0E D8 42 01 13 88
  87 08 41 00 7D 42 01 03 84
  C1 09 64
  C1 0A 0F
  83 0B 41 00 00
  C4 0D 51 82 42 8F
  C6 0E 2B 30 32 3A 30 30
  C1 10 55
`);

/**
 * Anjay 3.x's Read-Composite answer for /3/0/0, /3/0/13, /3303/0/5700, /1/1/1, /3/0/15: values in
 * request order, indefinite-length maps, and the top key 3 opened a second time for /3/0/15.
 */
export const ANJAY_COMPOSITE = hex(
  `
  bf                                                    # {_
    03 bf                                               #   3: {_
      00 bf                                             #     0: {_
        00 74 4f70656e204d6f62696c6520416c6c69616e6365  #       0: "Open Mobile Alliance",
        0d 1a 6553f100                                  #       13: 1700000000
      ff ff                                             #     }},
    19 0ce7 bf                                          #   3303: {_
      00 bf                                             #     0: {_
        19 1644 fb 4035800000000000                     #       5700: 21.5
      ff ff                                             #     }},
    01 bf                                               #   1: {_
      01 bf                                             #     1: {_
        01 19 012c                                      #       1: 300
      ff ff                                             #     }},
    03 bf                                               #   3: {_
      00 bf                                             #     0: {_
        0f 6d 4575726f70652f4265726c696e                #       15: "Europe/Berlin"
      ff ff                                             #     }}
  ff                                                    # }
`.replace(/#[^\n]*/g, ''),
);

export const ANJAY_COMPOSITE_PATHS = ['/3/0/0', '/3/0/13', '/3303/0/5700', '/1/1/1', '/3/0/15'];

/** Asserts that `fn` throws a ContentCodecError (with `code`, and `pattern` in its message when given). */
export function assertCodecError(
  fn: () => unknown,
  pattern?: RegExp,
  code: '4.00' | '4.06' | '4.15' = '4.00',
): ContentCodecError {
  let caught: unknown;
  try {
    fn();
  } catch (err) {
    caught = err;
  }
  assert.ok(caught !== undefined, 'expected a ContentCodecError, nothing was thrown');
  assert.ok(caught instanceof ContentCodecError, `expected a ContentCodecError, got ${String(caught)}`);
  assert.equal(caught.coapCode, code, `wrong CoAP code for: ${caught.message}`);
  if (pattern) assert.match(caught.message, pattern);
  return caught;
}

/** A deterministic PRNG (mulberry32) for fuzzing. */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
