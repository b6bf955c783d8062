import { strict as assert } from 'node:assert';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { DEFINITION_SET_FORMAT } from '../../lib/model/builtins';
import { ObjectModel } from '../../lib/model/object-model';
import type { ObjectDefinition, ObjectModelLookup } from '../../lib/model/types';
import { registryDir } from './registry';

function definition(id: number, version: string, names: Record<number, string>): ObjectDefinition {
  const resources: ObjectDefinition['resources'] = {};
  for (const [resourceId, name] of Object.entries(names)) {
    resources[Number(resourceId)] = {
      id: Number(resourceId),
      name,
      operations: 'R',
      multiple: false,
      mandatory: false,
      type: 'string',
    };
  }
  return { id, name: `Object ${id}`, version, lwm2mVersion: '1.0', multiple: true, mandatory: false, resources };
}

function objectXml(id: number, name: string, version = '1.0'): string {
  return `<?xml version="1.0"?><LWM2M><Object ObjectType="MODefinition"><Name>${name}</Name><ObjectID>${id}</ObjectID>
    <ObjectVersion>${version}</ObjectVersion><MultipleInstances>Multiple</MultipleInstances><Mandatory>Optional</Mandatory>
    <Resources><Item ID="1"><Name>Level</Name><Operations>R</Operations><MultipleInstances>Single</MultipleInstances>
    <Mandatory>Optional</Mandatory><Type>Integer</Type></Item></Resources></Object></LWM2M>`;
}

describe('ObjectModel', () => {
  it('implements ObjectModelLookup', () => {
    const lookup: ObjectModelLookup = ObjectModel.withBuiltins();
    assert.equal(lookup.getResource(3303, 5700)?.name, 'Sensor Value');
  });

  describe('versions', () => {
    const model = new ObjectModel([
      definition(40000, '1.0', { 0: 'A' }),
      definition(40000, '1.10', { 0: 'A', 1: 'B', 2: 'C' }),
      definition(40000, '1.2', { 0: 'A', 1: 'B' }),
    ]);

    it('answers the newest version by default, comparing versions as numbers (1.10 > 1.2)', () => {
      assert.equal(model.getObject(40000)?.version, '1.10');
      assert.equal(model.getResource(40000, 2)?.name, 'C');
    });

    it('answers the requested version, "1" meaning "1.0"', () => {
      assert.equal(model.getObject(40000, '1.2')?.version, '1.2');
      assert.equal(model.getResource(40000, 2, '1.2'), undefined);
      assert.equal(model.getObject(40000, '1')?.version, '1.0');
    });

    it('falls back to the newest for an unknown version, unless asked for exactly that version', () => {
      assert.equal(model.getObject(40000, '3.0')?.version, '1.10');
      assert.equal(model.getObjectVersion(40000, '3.0'), undefined);
      assert.equal(model.has(40000, '3.0'), false);
      assert.equal(model.has(40000), true);
    });

    it('lists versions, ids and definitions in order', () => {
      assert.deepEqual(model.versionsOf(40000), ['1.0', '1.2', '1.10']);
      assert.deepEqual(model.versionsOf(1), []);
      assert.equal(model.size, 3);
      assert.deepEqual(
        model.definitions().map((entry) => entry.version),
        ['1.0', '1.2', '1.10'],
      );
      assert.equal(model.getObject(1), undefined);
      assert.equal(model.getResource(1, 0), undefined);
    });
  });

  describe('built-ins', () => {
    it('hold the core and IPSO objects, several versions of the Server object', () => {
      const model = ObjectModel.withBuiltins();
      assert.deepEqual(model.objectIds().slice(0, 8), [0, 1, 2, 3, 4, 5, 6, 7]);
      assert.deepEqual(model.versionsOf(1), ['1.1', '1.2']);
      assert.equal(model.getResource(1, 23, '1.1')?.name, 'Mute Send');
      assert.equal(model.getResource(1, 24, '1.1'), undefined);
      assert.equal(model.getResource(1, 24)?.name, 'Alternate APN Links');
      assert.equal(model.getResource(3303, 5700)?.type, 'float');
      assert.equal(model.getObject(3425)?.name, 'Irrigation valve');
    });

    it('give a new model each time, so adding to one leaves the others alone', () => {
      const first = ObjectModel.withBuiltins();
      const second = ObjectModel.withBuiltins();
      first.add(definition(3303, '1.1', { 5700: 'Overridden' }));
      assert.equal(first.getResource(3303, 5700)?.name, 'Overridden');
      assert.equal(second.getResource(3303, 5700)?.name, 'Sensor Value');
      assert.equal(ObjectModel.withBuiltins().getResource(3303, 5700)?.name, 'Sensor Value');
    });
  });

  describe('add, clone and extend', () => {
    it('a later definition for the same id and version replaces the earlier one; other versions stay', () => {
      const model = new ObjectModel([definition(40001, '1.0', { 0: 'Old' }), definition(40001, '1.1', { 0: 'Other' })]);
      model.add(definition(40001, '1.0', { 0: 'New' }));
      assert.equal(model.getResource(40001, 0, '1.0')?.name, 'New');
      assert.equal(model.getResource(40001, 0, '1.1')?.name, 'Other');
      assert.equal(model.size, 2);
    });

    it('clone() and extend() leave the original untouched', () => {
      const base = new ObjectModel([definition(40002, '1.0', { 0: 'Base' })]);
      const clone = base.clone();
      clone.add(definition(40003, '1.0', { 0: 'Clone only' }));
      const extended = base.extend([definition(40002, '1.0', { 0: 'Extended' })]);
      assert.equal(base.getResource(40002, 0)?.name, 'Base');
      assert.equal(base.has(40003), false);
      assert.equal(clone.getResource(40002, 0)?.name, 'Base');
      assert.equal(extended.getResource(40002, 0)?.name, 'Extended');
      assert.notEqual(extended, base);
    });
  });

  describe('findResourceByName', () => {
    const model = ObjectModel.withBuiltins().extend(definition(40004, '1.0', { 1: 'Twin', 2: 'twin', 3: 'Solo' }));

    it('matches case-insensitively and ignores repeated spaces', () => {
      assert.equal(model.findResourceByName(3303, 'sensor value')?.id, 5700);
      assert.equal(model.findResourceByName(3303, '  SENSOR   Value ')?.id, 5700);
      assert.equal(model.findResourceByName(3303, 'nope'), undefined);
      assert.equal(model.findResourceByName(65000, 'Sensor Value'), undefined);
    });

    it('refuses a name that several resources share', () => {
      assert.throws(() => model.findResourceByName(40004, 'TWIN'), /2 resources named "TWIN" \(ids 1, 2\)/);
      assert.equal(model.findResourceByName(40004, 'solo')?.id, 3);
    });
  });

  describe('loadFolder', () => {
    let dir: string;

    before(() => {
      dir = fs.mkdtempSync(path.join(os.tmpdir(), 'lwm2m-model-'));
      fs.writeFileSync(path.join(dir, '3303.xml'), objectXml(3303, 'My Temperature', '1.1'));
      fs.writeFileSync(path.join(dir, '40010.xml'), objectXml(40010, 'Tank'));
      fs.writeFileSync(path.join(dir, '40011.xml'), objectXml(40011, 'Broken').replace('</Name>', ''));
      fs.writeFileSync(
        path.join(dir, '40012.xml'),
        objectXml(40012, 'Bad id').replace('<ObjectID>40012', '<ObjectID>x'),
      );
      fs.writeFileSync(path.join(dir, 'DDF.xml'), '<DDFList><Item><ObjectID>1</ObjectID></Item></DDFList>');
      fs.writeFileSync(path.join(dir, 'LWM2M.xsd'), '<xs:schema xmlns:xs="http://www.w3.org/2001/XMLSchema"/>');
      fs.writeFileSync(path.join(dir, 'README.md'), '# my objects');
      fs.writeFileSync(
        path.join(dir, 'extra.json'),
        JSON.stringify({
          format: DEFINITION_SET_FORMAT,
          objects: [
            { id: 40020, name: 'Pump', multiple: false, mandatory: false, resources: [[0, 'Speed', 'RW', 'float']] },
          ],
        }),
      );
      fs.writeFileSync(path.join(dir, 'package.json'), '{"name": "not definitions"}');
      fs.writeFileSync(path.join(dir, 'bad.json'), '{ not json');
      fs.mkdirSync(path.join(dir, 'archive'));
    });

    after(() => {
      fs.rmSync(dir, { recursive: true, force: true });
    });

    it('loads good files, skips others and reports bad ones without stopping', async () => {
      const model = ObjectModel.withBuiltins();
      const report = await model.loadFolder(dir);
      assert.equal(report.loaded, 3);
      assert.deepEqual(
        report.skipped.map((entry) => entry.file),
        ['DDF.xml', 'LWM2M.xsd', 'README.md', 'archive', 'package.json'],
      );
      assert.match(report.skipped.find((entry) => entry.file === 'DDF.xml')!.reason, /<DDFList>/);
      assert.deepEqual(
        report.errors.map((entry) => entry.file),
        ['40011.xml', '40012.xml', 'bad.json'],
      );
      assert.match(report.errors[0].error, /^40011\.xml: not well-formed XML/);
      assert.match(report.errors[1].error, /^40012\.xml: .*ObjectID "x"/);
      assert.match(report.errors[2].error, /^bad\.json: not valid JSON/);

      assert.equal(model.getObject(3303)?.name, 'My Temperature', 'the folder overrides the built-in 3303 1.1');
      assert.equal(model.getResource(3303, 5700), undefined);
      assert.equal(model.getObject(40010)?.name, 'Tank');
      assert.equal(model.getResource(40020, 0)?.type, 'float');
      assert.equal(model.has(40011), false);
      assert.equal(
        ObjectModel.withBuiltins().getObject(3303)?.name,
        'Temperature',
        'the shared built-ins are untouched',
      );
    });

    it('rejects when the folder cannot be read', async () => {
      await assert.rejects(
        new ObjectModel().loadFolder(path.join(dir, 'missing')),
        /cannot read object definition folder/,
      );
    });

    it('loads the whole OMA registry on top of the built-ins', async function () {
      const registry = registryDir();
      if (registry === undefined) this.skip();
      const model = ObjectModel.withBuiltins();
      const builtinCount = model.size;
      const report = await model.loadFolder(registry!);
      assert.deepEqual(report.errors, []);
      assert.ok(report.loaded >= 300, `loaded ${report.loaded}`);
      assert.deepEqual(
        report.skipped.map((entry) => entry.file),
        ['Common.xml', 'DDF.xml', 'LWM2M-v1_1.xsd', 'LWM2M.xsd', 'LWM2M_senml_units.xml', 'README.md', 'SOURCE.txt'],
      );
      // Registry objects at the same version replace built-ins; Server 1.1 (not in the registry) stays.
      assert.equal(model.getObject(1, '1.1')?.version, '1.1');
      assert.equal(model.getObject(1)?.version, '1.2');
      assert.ok(model.size >= report.loaded && model.size <= report.loaded + builtinCount);
    });
  });
});
