import { strict as assert } from 'node:assert';
import * as fs from 'node:fs';
import * as path from 'node:path';
import {
  builtinDefinitions,
  compareVersions,
  DefinitionFormatError,
  DEFINITION_SET_FORMAT,
  parseDefinitionSet,
} from '../../lib/model/builtins';
import { parseDdf } from '../../lib/model/ddf';
import type { ObjectDefinition } from '../../lib/model/types';
import { registryDir } from './registry';

/** Names compared the way a reader would: case and repeated spaces do not matter. */
function sameName(a: string, b: string): boolean {
  return a.trim().replace(/\s+/g, ' ').toLowerCase() === b.trim().replace(/\s+/g, ' ').toLowerCase();
}

describe('built-in definitions', () => {
  const builtins = builtinDefinitions();

  it('cover the core objects 0-7 and the IPSO objects we promise', () => {
    const ids = new Set(builtins.map((definition) => definition.id));
    const promised = [0, 1, 2, 3, 4, 5, 6, 7, 3300, 3301, 3303, 3304, 3306, 3311, 3312, 3313, 3315, 3316, 3317];
    promised.push(3320, 3323, 3328, 3336, 3342, 3347, 3425);
    for (const id of promised) assert.ok(ids.has(id), `object ${id} is built in`);
  });

  it('hold both 1.1 and 1.2 of the Server object, with Mute Send from 1.1 on', () => {
    const server = builtins.filter((definition) => definition.id === 1);
    const v11 = server.find((definition) => definition.version === '1.1');
    const v12 = server.find((definition) => definition.version === '1.2');
    assert.ok(v11 && v12);
    assert.equal(v11.resources[23]?.name, 'Mute Send');
    assert.equal(v11.resources[23]?.type, 'boolean');
    assert.equal(v11.resources[24], undefined, 'Alternate APN Links came with 1.2');
    assert.equal(v12.resources[24]?.multiple, true);
    assert.equal(v11.lwm2mVersion, '1.1');
    assert.equal(v11.urn, 'urn:oma:lwm2m:oma:1:1.1');
  });

  it('are frozen, because every model shares them', () => {
    const device = builtins.find((definition) => definition.id === 3)!;
    assert.ok(Object.isFrozen(device));
    assert.ok(Object.isFrozen(device.resources[0]));
    assert.throws(() => {
      (device as { name: string }).name = 'changed';
    }, TypeError);
  });

  describe('match the OMA registry', function () {
    let registry: Map<number, ObjectDefinition> | undefined;

    before(function () {
      const dir = registryDir();
      if (dir === undefined) this.skip();
      registry = new Map();
      const ids = new Set(builtins.map((definition) => definition.id));
      for (const id of ids) {
        const file = path.join(dir!, `${id}.xml`);
        if (!fs.existsSync(file)) continue;
        for (const definition of parseDdf(fs.readFileSync(file, 'utf8'), `${id}.xml`))
          registry.set(definition.id, definition);
      }
    });

    it('every built-in object has a registry file', () => {
      const missing = [...new Set(builtins.map((definition) => definition.id))].filter((id) => !registry!.has(id));
      assert.deepEqual(missing, []);
    });

    it('the newest built-in version of each object equals the registry one (ids, names, types, operations, multiplicity, mandatory)', () => {
      const newest = new Map<number, ObjectDefinition>();
      for (const definition of builtins) {
        const known = newest.get(definition.id);
        if (!known || compareVersions(definition.version, known.version) > 0) newest.set(definition.id, definition);
      }
      const problems: string[] = [];
      for (const ours of newest.values()) {
        const theirs = registry!.get(ours.id)!;
        const where = `object ${ours.id}`;
        if (!sameName(ours.name, theirs.name)) problems.push(`${where} name "${ours.name}" vs "${theirs.name}"`);
        for (const key of ['version', 'lwm2mVersion', 'urn', 'multiple', 'mandatory'] as const) {
          if (ours[key] !== theirs[key]) problems.push(`${where} ${key} ${ours[key]} vs ${theirs[key]}`);
        }
        const ourIds = Object.keys(ours.resources).map(Number);
        const theirIds = Object.keys(theirs.resources).map(Number);
        for (const id of theirIds.filter((id) => !ourIds.includes(id))) {
          problems.push(`${where} lacks resource ${id} "${theirs.resources[id].name}"`);
        }
        for (const id of ourIds.filter((id) => !theirIds.includes(id)))
          problems.push(`${where} has extra resource ${id}`);
        for (const id of ourIds.filter((id) => theirIds.includes(id))) {
          const mine = ours.resources[id];
          const reference = theirs.resources[id];
          if (!sameName(mine.name, reference.name)) {
            problems.push(`${where}/${id} name "${mine.name}" vs "${reference.name}"`);
          }
          for (const key of ['type', 'operations', 'multiple', 'mandatory'] as const) {
            if (mine[key] !== reference[key]) {
              problems.push(
                `${where}/${id} (${mine.name}) ${key} ${JSON.stringify(mine[key])} vs ${JSON.stringify(reference[key])}`,
              );
            }
          }
          if (mine.units !== undefined && mine.units !== reference.units) {
            problems.push(`${where}/${id} (${mine.name}) units ${mine.units} vs ${reference.units ?? '(none)'}`);
          }
        }
      }
      assert.deepEqual(problems, []);
    });

    it('older built-in versions are subsets of the newest that agree on every resource they share', () => {
      for (const older of builtins) {
        const theirs = registry!.get(older.id)!;
        for (const [id, resource] of Object.entries(older.resources)) {
          const reference = theirs.resources[Number(id)];
          assert.ok(reference, `object ${older.id} v${older.version} resource ${id} exists in the registry`);
          assert.equal(resource.type, reference.type);
          assert.equal(resource.multiple, reference.multiple);
        }
      }
    });
  });
});

describe('definition set format', () => {
  const minimal = {
    format: DEFINITION_SET_FORMAT,
    reusable: { '5700': ['Sensor Value', 'R', 'float', 'M'] },
    objects: [
      {
        id: 32000,
        name: 'Thing',
        multiple: true,
        mandatory: false,
        versions: { '1.0': '1.0', '1.1': '1.1' },
        resources: [5700, [1, 'Tags', 'RW', 'string', '*', { since: '1.1', units: 'x' }]],
      },
    ],
  };

  it('expands one entry into one definition per version, with reusable resources and "since"', () => {
    const [v10, v11] = parseDefinitionSet(minimal, 'thing.json');
    assert.equal(v10.version, '1.0');
    assert.equal(v10.urn, 'urn:oma:lwm2m:x:32000');
    assert.deepEqual(Object.keys(v10.resources), ['5700']);
    assert.equal(v11.urn, 'urn:oma:lwm2m:x:32000:1.1');
    assert.deepEqual(v11.resources[1], {
      id: 1,
      name: 'Tags',
      operations: 'RW',
      multiple: true,
      mandatory: false,
      type: 'string',
      units: 'x',
    });
    assert.deepEqual(v11.resources[5700], {
      id: 5700,
      name: 'Sensor Value',
      operations: 'R',
      multiple: false,
      mandatory: true,
      type: 'float',
    });
  });

  const broken: [string, (data: typeof minimal) => unknown, RegExp][] = [
    ['a wrong marker', (data) => ({ ...data, format: 'other' }), /"format" must be "lwm2m-objects@1"/],
    ['an unknown type', (data) => withResource(data, [2, 'X', 'R', 'double']), /type "double" is not one of/],
    ['unknown operations', (data) => withResource(data, [2, 'X', 'RX', 'string']), /operations "RX"/],
    ['a duplicate id', (data) => withResource(data, [1, 'Again', 'R', 'string']), /lists resource 1 twice/],
    ['an unknown reusable id', (data) => withResource(data, 5701), /unknown reusable resource 5701/],
    ['a bad flag', (data) => withResource(data, [2, 'X', 'R', 'string', 'S']), /flags must use only/],
    [
      'a non-integer object id',
      (data) => ({ ...data, objects: [{ ...data.objects[0], id: 1.5 }] }),
      /id must be an integer/,
    ],
  ];
  for (const [what, mutate, message] of broken) {
    it(`rejects ${what} with a DefinitionFormatError naming the source`, () => {
      assert.throws(
        () => parseDefinitionSet(mutate(minimal), 'thing.json'),
        (err: unknown) =>
          err instanceof DefinitionFormatError && /^thing\.json: /.test(err.message) && message.test(err.message),
      );
    });
  }
});

function withResource(data: { objects: { resources: unknown[] }[] }, resource: unknown): unknown {
  return { ...data, objects: [{ ...data.objects[0], resources: [...data.objects[0].resources, resource] }] };
}
