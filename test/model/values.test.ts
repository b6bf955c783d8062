import { strict as assert } from 'node:assert';
import { ObjectModel } from '../../lib/model/object-model';
import { LwM2mPath } from '../../lib/model/path';
import type {
  LwM2mMultipleResource,
  LwM2mNode,
  LwM2mObject,
  LwM2mObjectInstance,
  LwM2mResourceInstance,
  LwM2mSingleResource,
  ResourceType,
  ResourceValue,
} from '../../lib/model/types';
import { coerceValue, fromPlain, toPlain, ValueError } from '../../lib/model/values';

const INT64_MAX = 2n ** 63n - 1n;
const INT64_MIN = -(2n ** 63n);
const UINT64_MAX = 2n ** 64n - 1n;

function assertValueError(action: () => unknown, message: RegExp | string): void {
  assert.throws(action, (err: unknown) => {
    assert.ok(err instanceof ValueError, `expected a ValueError, got ${String(err)}`);
    if (typeof message === 'string') assert.equal(err.message, message);
    else assert.match(err.message, message);
    return true;
  });
}

describe('coerceValue', () => {
  const accepted: [ResourceType, unknown, ResourceValue][] = [
    ['string', 'hello', 'hello'],
    ['string', 42, '42'],
    ['string', 12345678901234567890n, '12345678901234567890'],
    ['string', false, 'false'],
    ['corelnk', '</3/0>,</1/0>', '</3/0>,</1/0>'],
    ['integer', 42, 42],
    ['integer', '-17', -17],
    ['integer', ' +8 ', 8],
    ['integer', 5n, 5],
    ['integer', Number.MAX_SAFE_INTEGER, Number.MAX_SAFE_INTEGER],
    ['integer', '9007199254740992', 9007199254740992n],
    ['integer', INT64_MAX, INT64_MAX],
    ['integer', INT64_MIN.toString(), INT64_MIN],
    ['unsigned', UINT64_MAX, UINT64_MAX],
    ['unsigned', '18446744073709551615', UINT64_MAX],
    ['unsigned', 0, 0],
    ['float', 23.5, 23.5],
    ['float', '23.5', 23.5],
    ['float', ' -1e-3 ', -0.001],
    ['float', '.5', 0.5],
    ['float', 7n, 7],
    ['boolean', true, true],
    ['boolean', 'TRUE', true],
    ['boolean', ' false ', false],
    ['boolean', 1, true],
    ['boolean', 0, false],
    ['boolean', '1', true],
    ['boolean', 'off', false],
    ['time', 1700000000, new Date(1700000000 * 1000)],
    ['time', '1700000000', new Date(1700000000 * 1000)],
    ['time', 1700000000n, new Date(1700000000 * 1000)],
    ['time', '2023-11-14T22:13:20Z', new Date(1700000000 * 1000)],
    ['time', new Date(1700000000 * 1000 + 999), new Date(1700000000 * 1000)],
    ['objlnk', { objectId: 3, instanceId: 0 }, { objectId: 3, instanceId: 0 }],
    ['objlnk', { objectId: '3', instanceId: '1' }, { objectId: 3, instanceId: 1 }],
    ['objlnk', ' 65535:65535 ', { objectId: 65535, instanceId: 65535 }],
  ];
  for (const [type, input, expected] of accepted) {
    it(`${type}: accepts ${describeInput(input)}`, () => {
      const value = coerceValue(input, type);
      assert.deepEqual(value, expected);
      assert.equal(typeof value, typeof expected);
    });
  }

  describe('opaque', () => {
    const bytes = Buffer.from([0xde, 0xad, 0xbe, 0xef]);
    const inputs: [string, unknown][] = [
      ['a Buffer', bytes],
      ['a Uint8Array', new Uint8Array([0xde, 0xad, 0xbe, 0xef])],
      ['an ArrayBuffer', new Uint8Array([0xde, 0xad, 0xbe, 0xef]).buffer],
      ['an array of bytes', [0xde, 0xad, 0xbe, 0xef]],
      ['a JSON-serialised Buffer', JSON.parse(JSON.stringify(bytes))],
      ['a hex string', 'DEADbeef'],
      ['a 0x hex string', '0xdeadbeef'],
      ['a hex: string', 'hex:deadbeef'],
      ['a base64 string', '3q2+7w=='],
      ['a base64: string', 'base64:3q2+7w=='],
    ];
    for (const [what, input] of inputs) {
      it(`accepts ${what}`, () => {
        const value = coerceValue(input, 'opaque');
        assert.ok(Buffer.isBuffer(value));
        assert.deepEqual(value, bytes);
      });
    }
    it('reads utf8: text and the empty string', () => {
      assert.deepEqual(coerceValue('utf8:héllo', 'opaque'), Buffer.from('héllo', 'utf8'));
      assert.deepEqual(coerceValue('', 'opaque'), Buffer.alloc(0));
    });
    it('rejects text that is neither hex nor base64, and arrays with non-bytes', () => {
      assertValueError(
        () => coerceValue('hello world', 'opaque', '/5/0/0'),
        /^\/5\/0\/0 expects opaque bytes .*got "hello world": neither hex nor base64/,
      );
      assertValueError(() => coerceValue([1, 256], 'opaque'), /item 1 is not a byte/);
      assertValueError(() => coerceValue('hex:abc', 'opaque'), /not an even number of hex digits/);
      assertValueError(() => coerceValue(42, 'opaque'), /got 42$/);
    });
  });

  describe('rejects with a reason naming the path, the type and the input', () => {
    it('a float that is not a number', () => {
      assertValueError(() => coerceValue('abc', 'float', '/3303/0/5700'), '/3303/0/5700 expects a float, got "abc"');
      assertValueError(() => coerceValue('', 'float', '/3303/0/5700'), '/3303/0/5700 expects a float, got ""');
      assertValueError(() => coerceValue(NaN, 'float'), 'value expects a float, got NaN: not a finite number');
      assertValueError(() => coerceValue(Infinity, 'float'), /not a finite number/);
      assertValueError(() => coerceValue(true, 'float'), /expects a float, got true/);
    });

    it('integers beyond 64 bits, fractions and unsafe numbers', () => {
      const path = LwM2mPath.parse('/3/0/10');
      assertValueError(
        () => coerceValue(INT64_MAX + 1n, 'integer', path),
        /^\/3\/0\/10 expects an integer, got 9223372036854775808n: out of the 64-bit range/,
      );
      assertValueError(() => coerceValue((INT64_MIN - 1n).toString(), 'integer'), /out of the 64-bit range/);
      assertValueError(() => coerceValue(UINT64_MAX + 1n, 'unsigned'), /out of the unsigned 64-bit range/);
      assertValueError(() => coerceValue(-1, 'unsigned'), /expects an unsigned integer, got -1: out of the unsigned/);
      assertValueError(() => coerceValue(23.5, 'integer'), 'value expects an integer, got 23.5');
      assertValueError(() => coerceValue('1.0', 'integer'), /got "1.0"/);
      assertValueError(() => coerceValue(2 ** 60, 'integer'), /beyond 2\^53 .* send a string or a bigint/);
      assertValueError(() => coerceValue(null, 'integer'), /got null/);
    });

    it('booleans that are not clearly true or false', () => {
      assertValueError(() => coerceValue('maybe', 'boolean'), /expects a boolean, got "maybe"/);
      assertValueError(() => coerceValue(2, 'boolean'), /got 2/);
    });

    it('times that are not times', () => {
      assertValueError(() => coerceValue('yesterday', 'time'), /expects a time .*got "yesterday"/);
      assertValueError(() => coerceValue(new Date(NaN), 'time'), /got an invalid Date/);
      assertValueError(() => coerceValue(1e300, 'time'), /outside the range of a JavaScript Date/);
    });

    it('object links out of range or badly written', () => {
      assertValueError(() => coerceValue('3/0', 'objlnk'), /expects an object link/);
      assertValueError(
        () => coerceValue({ objectId: 70000, instanceId: 0 }, 'objlnk'),
        /ids must be integers in 0\.\.65535/,
      );
      assertValueError(() => coerceValue({ objectId: 3 }, 'objlnk'), /got \{"objectId":3\}/);
    });

    it('strings from objects, and any value for an executable', () => {
      assertValueError(() => coerceValue({ a: 1 }, 'string'), /expects a string, got \{"a":1\}/);
      assertValueError(() => coerceValue(5, 'corelnk'), /expects a CoRE link string/);
      assertValueError(() => coerceValue('go', 'none', '/3/0/4'), '/3/0/4 is executable and holds no value');
    });
  });
});

describe('toPlain', () => {
  const model = ObjectModel.withBuiltins();
  const temperature: LwM2mObjectInstance = {
    kind: 'instance',
    id: 0,
    resources: new Map([
      [5700, { kind: 'resource', id: 5700, type: 'float', value: 23.5 }],
      [5701, { kind: 'resource', id: 5701, type: 'string', value: 'Cel' }],
      [9999, { kind: 'resource', id: 9999, type: 'integer', value: 7 }],
    ]),
  };

  it('gives a single resource or resource instance as its value', () => {
    const resource: LwM2mSingleResource = { kind: 'resource', id: 5700, type: 'float', value: 23.5 };
    assert.equal(toPlain(resource, LwM2mPath.parse('/3303/0/5700'), model), 23.5);
    const instance: LwM2mResourceInstance = { kind: 'resourceInstance', id: 1, type: 'integer', value: 5000 };
    assert.equal(toPlain(instance, LwM2mPath.parse('/3/0/7/1'), model), 5000);
  });

  it('keeps bigint, Date, Buffer and object links in their JavaScript types', () => {
    const values: ResourceValue[] = [2n ** 63n - 1n, new Date(0), Buffer.from([1, 2]), { objectId: 3, instanceId: 0 }];
    for (const value of values) {
      const plain = toPlain({ kind: 'resource', id: 1, type: 'opaque', value }, LwM2mPath.parse('/40000/0/1'), model);
      assert.deepEqual(plain, value);
    }
    const link = { objectId: 3, instanceId: 0 };
    assert.notEqual(
      toPlain({ kind: 'resource', id: 17, type: 'objlnk', value: link }, LwM2mPath.parse('/0/0/17'), model),
      link,
    );
  });

  it('gives a multiple resource keyed by resource instance id', () => {
    const voltages: LwM2mMultipleResource = {
      kind: 'multipleResource',
      id: 7,
      type: 'integer',
      instances: new Map([
        [3, 5000],
        [0, 3800],
      ]),
    };
    const plain = toPlain(voltages, LwM2mPath.parse('/3/0/7'), model);
    assert.deepEqual(plain, { 0: 3800, 3: 5000 });
  });

  it('gives an instance by name and by id, naming unknown resources by their id', () => {
    assert.deepEqual(toPlain(temperature, LwM2mPath.parse('/3303/0'), model), {
      byName: { 'Sensor Value': 23.5, 'Sensor Units': 'Cel', '9999': 7 },
      byId: { 5700: 23.5, 5701: 'Cel', 9999: 7 },
    });
  });

  it('names resources of the version asked for', () => {
    const server: LwM2mObjectInstance = {
      kind: 'instance',
      id: 0,
      resources: new Map([[24, { kind: 'resource', id: 24, type: 'integer', value: 1 }]]),
    };
    assert.deepEqual(toPlain(server, LwM2mPath.parse('/1/0'), model, { version: '1.1' }), {
      byName: { 24: 1 },
      byId: { 24: 1 },
    });
    assert.deepEqual(toPlain(server, LwM2mPath.parse('/1/0'), model, { version: '1.2' }), {
      byName: { 'Alternate APN Links': 1 },
      byId: { 24: 1 },
    });
  });

  it('appends the id to a name an object uses twice', () => {
    const twins = ObjectModel.withBuiltins().extend({
      id: 40000,
      name: 'Twins',
      version: '1.0',
      lwm2mVersion: '1.0',
      multiple: true,
      mandatory: false,
      resources: {
        1: { id: 1, name: 'Enabled', operations: 'R', multiple: false, mandatory: false, type: 'boolean' },
        2: { id: 2, name: 'Enabled', operations: 'R', multiple: false, mandatory: false, type: 'boolean' },
      },
    });
    const instance: LwM2mObjectInstance = {
      kind: 'instance',
      id: 0,
      resources: new Map([
        [2, { kind: 'resource', id: 2, type: 'boolean', value: false }],
        [1, { kind: 'resource', id: 1, type: 'boolean', value: true }],
      ]),
    };
    assert.deepEqual(toPlain(instance, LwM2mPath.parse('/40000/0'), twins), {
      byName: { Enabled: true, 'Enabled (2)': false },
      byId: { 1: true, 2: false },
    });
  });

  it('gives an object keyed by instance id, multiple resources inside shaped the same way', () => {
    const device: LwM2mObject = {
      kind: 'object',
      id: 3,
      instances: new Map([
        [
          0,
          {
            kind: 'instance',
            id: 0,
            resources: new Map<number, LwM2mSingleResource | LwM2mMultipleResource>([
              [0, { kind: 'resource', id: 0, type: 'string', value: 'ACME' }],
              [7, { kind: 'multipleResource', id: 7, type: 'integer', instances: new Map([[0, 3800]]) }],
            ]),
          },
        ],
      ]),
    };
    assert.deepEqual(toPlain(device, LwM2mPath.parse('/3'), model), {
      0: {
        byName: { Manufacturer: 'ACME', 'Power Source Voltage': { 0: 3800 } },
        byId: { 0: 'ACME', 7: { 0: 3800 } },
      },
    });
  });
});

describe('fromPlain', () => {
  const model = ObjectModel.withBuiltins();

  it('writes a single resource from a plain value, coerced to its type', () => {
    assert.deepEqual(fromPlain('21.5', LwM2mPath.parse('/3303/0/5700'), model), {
      kind: 'resource',
      id: 5700,
      type: 'float',
      value: 21.5,
    });
  });

  it('writes a resource instance of a multiple resource', () => {
    assert.deepEqual(fromPlain('4200', LwM2mPath.parse('/3/0/7/2'), model), {
      kind: 'resourceInstance',
      id: 2,
      type: 'integer',
      value: 4200,
    });
    assertValueError(
      () => fromPlain(1, LwM2mPath.parse('/3303/0/5700/0'), model),
      /addresses an instance of "Sensor Value" \(float\), which is single/,
    );
  });

  it('writes a multiple resource from an array, an id-keyed object or a Map', () => {
    const expected: LwM2mNode = {
      kind: 'multipleResource',
      id: 25,
      type: 'string',
      instances: new Map([
        [0, '1.1'],
        [1, '1.2'],
      ]),
    };
    const path = LwM2mPath.parse('/1/0/25');
    assert.deepEqual(fromPlain(['1.1', '1.2'], path, model), expected);
    assert.deepEqual(fromPlain({ 0: '1.1', 1: '1.2' }, path, model), expected);
    assert.deepEqual(
      fromPlain(
        new Map([
          [0, '1.1'],
          [1, '1.2'],
        ]),
        path,
        model,
      ),
      expected,
    );
    assertValueError(
      () => fromPlain('1.1', path, model),
      /a multiple resource: expects an array or an object keyed by resource instance id, got "1.1"/,
    );
    assertValueError(() => fromPlain({ first: '1.1' }, path, model), /"first" is not a resource instance id/);
    assertValueError(
      () => fromPlain([1, 'x'], LwM2mPath.parse('/3/0/7'), model),
      /^\/3\/0\/7\/1 expects an integer, got "x"$/,
    );
  });

  it('writes an instance keyed by resource id or case-insensitive name', () => {
    const node = fromPlain(
      { 'application type': 'fridge', 5701: 'Cel', 5750: undefined },
      LwM2mPath.parse('/3303/1'),
      model,
    );
    assert.deepEqual(node, {
      kind: 'instance',
      id: 1,
      resources: new Map([
        [5750, { kind: 'resource', id: 5750, type: 'string', value: 'fridge' }],
        [5701, { kind: 'resource', id: 5701, type: 'string', value: 'Cel' }],
      ]),
    });
  });

  it('accepts what toPlain produced, so a read can be edited and written back', () => {
    const path = LwM2mPath.parse('/3303/0');
    const read = fromPlain({ 'Sensor Value': 20, 'Application Type': 'room' }, path, model);
    const plain = toPlain(read, path, model);
    assert.deepEqual(fromPlain(plain, path, model), read);
    assert.deepEqual(fromPlain({ byName: { 'Sensor Value': 20, 'Application Type': 'room' } }, path, model), read);
  });

  it('writes an object keyed by instance id', () => {
    const node = fromPlain({ 0: { 5750: 'a' }, 2: { 'Application Type': 'b' } }, LwM2mPath.parse('/3303'), model);
    assert.equal(node.kind, 'object');
    assert.deepEqual([...(node as LwM2mObject).instances.keys()], [0, 2]);
    assert.equal((node as LwM2mObject).instances.get(2)!.resources.get(5750)!.kind, 'resource');
    assertValueError(() => fromPlain({ first: {} }, LwM2mPath.parse('/3303'), model), /"first" is not an instance id/);
  });

  it('keeps 64-bit integers exact through a write', () => {
    const node = fromPlain('9223372036854775807', LwM2mPath.parse('/3/0/10'), model) as LwM2mSingleResource;
    assert.equal(node.value, INT64_MAX);
  });

  describe('refuses with a clear reason', () => {
    it('unknown resource names, listing the known ones', () => {
      assertValueError(
        () => fromPlain({ 'Sensr Value': 1 }, LwM2mPath.parse('/3303/0'), model),
        /^\/3303\/0: object 3303 \(Temperature\) has no resource named "Sensr Value"; known: Timestamp, .*Sensor Value, /,
      );
    });

    it('the same resource given by id and by name', () => {
      assertValueError(
        () => fromPlain({ 5750: 'a', 'Application Type': 'b' }, LwM2mPath.parse('/3303/0'), model),
        '/3303/0: resource 5750 is given twice (as "5750" and "Application Type")',
      );
    });

    it('resources and objects the model does not know', () => {
      assertValueError(
        () => fromPlain(1, LwM2mPath.parse('/3303/0/1234'), model),
        '/3303/0/1234: object 3303 (Temperature) has no resource 1234',
      );
      assertValueError(
        () => fromPlain(1, LwM2mPath.parse('/40999/0/1'), model),
        /object 40999 is not in the object model, so the value's type is unknown/,
      );
      assertValueError(
        () => fromPlain({ Level: 1 }, LwM2mPath.parse('/40999/0'), model),
        /object 40999 is not in the object model, so "Level" cannot be resolved/,
      );
    });

    it('values of the wrong shape or type', () => {
      assertValueError(
        () => fromPlain(5, LwM2mPath.parse('/3303/0'), model),
        '/3303/0 expects an object keyed by resource id or name, got 5',
      );
      assertValueError(() => fromPlain(['a'], LwM2mPath.parse('/3303/0'), model), /got an array of 1 items/);
      assertValueError(
        () => fromPlain({ 'Sensor Value': 'warm' }, LwM2mPath.parse('/3303/0'), model),
        '/3303/0/5700 expects a float, got "warm"',
      );
      assertValueError(() => fromPlain({}, LwM2mPath.parse('/'), model), /cannot write to the root path/);
    });

    it('executable resources, which hold no value', () => {
      assertValueError(
        () => fromPlain('', LwM2mPath.parse('/3/0/4'), model),
        '/3/0/4 is executable and holds no value',
      );
    });
  });

  it('does not check whether a resource is writable (the server does)', () => {
    const node = fromPlain('Acme', LwM2mPath.parse('/3/0/0'), model) as LwM2mSingleResource;
    assert.equal(node.value, 'Acme');
  });
});

function describeInput(input: unknown): string {
  if (typeof input === 'bigint') return `${input}n`;
  if (input instanceof Date) return `Date ${input.toISOString()}`;
  return JSON.stringify(input);
}
