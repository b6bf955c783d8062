import { strict as assert } from 'node:assert';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { DdfError, parseDdf, readDdf } from '../../lib/model/ddf';
import type { ObjectDefinition } from '../../lib/model/types';
import { registryDir } from './registry';

/** A small, valid 1.1-schema DDF; tests bend it to exercise quirks and errors. */
function ddf({ object = '', items = SENSOR_ITEM } = {}): string {
  return `<?xml version="1.0" encoding="UTF-8"?>
<LWM2M xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xsi:noNamespaceSchemaLocation="http://openmobilealliance.org/tech/profiles/LWM2M-v1_1.xsd">
  <Object ObjectType="MODefinition">
    <Name>Test Sensor</Name>
    <Description1>Used by tests.</Description1>
    <ObjectID>32001</ObjectID>
    <ObjectURN>urn:oma:lwm2m:x:32001:1.1</ObjectURN>
    <LWM2MVersion>1.1</LWM2MVersion>
    <ObjectVersion>1.1</ObjectVersion>
    <MultipleInstances>Multiple</MultipleInstances>
    <Mandatory>Optional</Mandatory>
    ${object}
    <Resources>${items}</Resources>
    <Description2></Description2>
  </Object>
</LWM2M>`;
}

const SENSOR_ITEM = `
      <Item ID="5700">
        <Name>Sensor Value</Name>
        <Operations>R</Operations>
        <MultipleInstances>Single</MultipleInstances>
        <Mandatory>Mandatory</Mandatory>
        <Type>Float</Type>
        <RangeEnumeration>-40..85</RangeEnumeration>
        <Units>Cel</Units>
        <Description>Last measured value.</Description>
      </Item>`;

function item(id: string, fields: Record<string, string>): string {
  const defaults: Record<string, string> = {
    Name: 'Thing',
    Operations: 'R',
    MultipleInstances: 'Single',
    Mandatory: 'Optional',
    Type: 'Integer',
  };
  const body = Object.entries({ ...defaults, ...fields })
    .filter(([, value]) => value !== '<omit>')
    .map(([key, value]) => `<${key}>${value}</${key}>`)
    .join('');
  return `<Item ID="${id}">${body}</Item>`;
}

function only(definitions: ObjectDefinition[]): ObjectDefinition {
  assert.equal(definitions.length, 1);
  return definitions[0];
}

function assertDdfError(xml: string, pattern: RegExp): void {
  assert.throws(
    () => parseDdf(xml, 'broken.xml'),
    (err: unknown) => {
      assert.ok(err instanceof DdfError, `expected a DdfError, got ${String(err)}`);
      assert.equal(err.source, 'broken.xml');
      assert.match(err.message, /^broken\.xml: /);
      assert.match(err.message, pattern);
      return true;
    },
  );
}

describe('DDF parser', () => {
  describe('reads an object definition', () => {
    it('with every field mapped', () => {
      const definition = only(parseDdf(ddf(), 'test.xml'));
      assert.deepEqual(definition, {
        id: 32001,
        name: 'Test Sensor',
        description: 'Used by tests.',
        version: '1.1',
        lwm2mVersion: '1.1',
        urn: 'urn:oma:lwm2m:x:32001:1.1',
        multiple: true,
        mandatory: false,
        resources: {
          5700: {
            id: 5700,
            name: 'Sensor Value',
            operations: 'R',
            multiple: false,
            mandatory: true,
            type: 'float',
            range: '-40..85',
            units: 'Cel',
            description: 'Last measured value.',
          },
        },
      });
    });

    it('maps every DDF type name, empty Type meaning an executable', () => {
      const types: Record<string, string> = {
        String: 'string',
        Integer: 'integer',
        'Unsigned Integer': 'unsigned',
        Float: 'float',
        Boolean: 'boolean',
        Opaque: 'opaque',
        Time: 'time',
        Objlnk: 'objlnk',
        Corelnk: 'corelnk',
        '': 'none',
      };
      const items = Object.keys(types)
        .map((type, index) => item(String(index), { Type: type, Operations: type === '' ? 'E' : 'R' }))
        .join('');
      const definition = only(parseDdf(ddf({ items })));
      Object.values(types).forEach((expected, index) => assert.equal(definition.resources[index].type, expected));
      assert.equal(definition.resources[9].operations, 'E');
    });

    it('maps operations R, W, RW, E and none', () => {
      const operations = ['R', 'W', 'RW', 'E', ''];
      const items = operations.map((operation, index) => item(String(index), { Operations: operation })).join('');
      const definition = only(parseDdf(ddf({ items })));
      assert.deepEqual(
        operations.map((_, index) => definition.resources[index].operations),
        ['R', 'W', 'RW', 'E', ''],
      );
    });

    it('tolerates BOM, CDATA, whitespace, lowercase values and element names in another case', () => {
      const items = `
        <item id=" 7 ">
          <name>  Power   Source
             Voltage </name>
          <operations> rw </operations>
          <multipleinstances> multiple </multipleinstances>
          <mandatory>MANDATORY</mandatory>
          <type> unsigned integer </type>
          <description><![CDATA[  Volts & more <b>bold</b>  ]]></description>
        </item>`;
      const xml = '\uFEFF' + ddf({ items }).replace('<MultipleInstances>Multiple', '<MultipleInstances> single ');
      const definition = only(parseDdf(xml));
      assert.equal(definition.multiple, false);
      assert.deepEqual(definition.resources[7], {
        id: 7,
        name: 'Power Source Voltage',
        operations: 'RW',
        multiple: true,
        mandatory: true,
        type: 'unsigned',
        description: 'Volts & more <b>bold</b>',
      });
    });

    it('defaults missing optional elements: versions 1.0, Single, Optional, no range/units/description/urn', () => {
      const xml = `<LWM2M><Object><Name>Bare</Name><ObjectID>32002</ObjectID>
        <Resources>${item('1', { MultipleInstances: '<omit>', Mandatory: '<omit>' })}</Resources></Object></LWM2M>`;
      const definition = only(parseDdf(xml));
      assert.deepEqual(definition, {
        id: 32002,
        name: 'Bare',
        version: '1.0',
        lwm2mVersion: '1.0',
        multiple: false,
        mandatory: false,
        resources: { 1: { id: 1, name: 'Thing', operations: 'R', multiple: false, mandatory: false, type: 'integer' } },
      });
    });

    it('reads an object without resources and several objects in one file', () => {
      const xml = `<LWM2M>
        <Object ObjectType="MODefinition"><Name>A</Name><ObjectID>32003</ObjectID><Resources/></Object>
        <Object ObjectType="MODefinition"><Name>B</Name><ObjectID>32004</ObjectID><ObjectVersion>2</ObjectVersion>
          <Resources>${item('0', {})}</Resources></Object>
      </LWM2M>`;
      const [first, second] = parseDdf(xml);
      assert.deepEqual(first.resources, {});
      assert.equal(second.id, 32004);
      assert.equal(second.version, '2.0', 'a bare major version is read as major.0');
    });
  });

  describe('recognises files that are not object definitions', () => {
    const cases: [string, string, RegExp][] = [
      ['the DDF index', '<DDFList><Item><ObjectID>0</ObjectID></Item></DDFList>', /root element is <DDFList>/],
      [
        'the reusable resource catalogue',
        '<LWM2M><Object ObjectType="CommonResources"><Resources><Item ID="4000"><Name>X</Name></Item></Resources></Object></LWM2M>',
        /ObjectType="CommonResources"/,
      ],
      [
        'a schema',
        '<xs:schema xmlns:xs="http://www.w3.org/2001/XMLSchema"></xs:schema>',
        /root element is <xs:schema>/,
      ],
      ['the units list', '<units><title>Units</title></units>', /root element is <units>/],
      ['an empty LWM2M element', '<LWM2M></LWM2M>', /no <Object>/],
    ];
    for (const [what, xml, reason] of cases) {
      it(`skips ${what}`, () => {
        const document = readDdf(xml, 'other.xml');
        assert.ok('skipped' in document);
        assert.match(document.skipped, reason);
        assert.deepEqual(parseDdf(xml, 'other.xml'), []);
      });
    }
  });

  describe('rejects broken definitions with a DdfError naming the file', () => {
    it('XML that is not well formed, with line and column', () => {
      assertDdfError(ddf().replace('</Name>', '</Nmae>'), /not well-formed XML at line 4, column \d+/);
      assertDdfError('<LWM2M><Object>', /not well-formed XML/);
      assertDdfError('just text', /not well-formed XML/);
    });
    it('an empty file', () => assertDdfError('\uFEFF  \n', /file is empty/));
    it('a missing ObjectID', () =>
      assertDdfError(ddf().replace(/<ObjectID>.*<\/ObjectID>/, ''), /<Object> has no <ObjectID>/));
    it('an ObjectID that is not an integer', () => {
      assertDdfError(ddf().replace('<ObjectID>32001', '<ObjectID>32001a'), /ObjectID "32001a", expected an integer/);
      assertDdfError(ddf().replace('<ObjectID>32001', '<ObjectID>70000'), /ObjectID "70000"/);
    });
    it('a missing object name', () =>
      assertDdfError(ddf().replace('<Name>Test Sensor</Name>', '<Name> </Name>'), /object 32001 has no <Name>/));
    it('a resource ID that is not an integer', () => {
      assertDdfError(ddf({ items: item('5.5', {}) }), /object 32001 resource <Item> #1 has ID "5.5"/);
      assertDdfError(ddf({ items: '<Item><Name>X</Name></Item>' }), /<Item> #1 has no ID attribute/);
    });
    it('a resource without a name', () =>
      assertDdfError(ddf({ items: item('3', { Name: '' }) }), /object 32001 resource 3 has no <Name>/));
    it('a resource defined twice', () => {
      assertDdfError(ddf({ items: item('3', {}) + item('3', { Name: 'Other' }) }), /defines resource 3 twice/);
    });
    it('unknown Type, Operations, MultipleInstances or Mandatory values', () => {
      assertDdfError(ddf({ items: item('3', { Type: 'Double' }) }), /resource 3 has unknown <Type> "Double"/);
      assertDdfError(ddf({ items: item('3', { Operations: 'RX' }) }), /resource 3 has unknown <Operations> "RX"/);
      assertDdfError(ddf({ items: item('3', { MultipleInstances: 'Many' }) }), /<MultipleInstances> "Many"/);
      assertDdfError(ddf({ items: item('3', { Mandatory: 'Yes' }) }), /<Mandatory> "Yes"/);
    });
    it('an unreadable version', () => {
      assertDdfError(ddf().replace('<ObjectVersion>1.1', '<ObjectVersion>v1.1'), /<ObjectVersion> is "v1.1"/);
    });
  });

  describe('the OMA registry', function () {
    const dir = registryDir();
    const objects = new Map<string, ObjectDefinition[]>();
    const skipped = new Map<string, string>();
    const errors = new Map<string, string>();

    before(function () {
      if (dir === undefined) this.skip();
      for (const file of fs.readdirSync(dir).sort()) {
        if (!/\.(xml|xsd)$/i.test(file)) continue;
        try {
          const document = readDdf(fs.readFileSync(path.join(dir, file), 'utf8'), file);
          if ('skipped' in document) skipped.set(file, document.skipped);
          else objects.set(file, document.objects);
        } catch (err) {
          errors.set(file, (err as Error).message);
        }
      }
      const definitionCount = [...objects.values()].reduce((sum, list) => sum + list.length, 0);
      console.log(
        `      registry ${dir}: ${objects.size} object files (${definitionCount} definitions), ` +
          `${skipped.size} skipped, ${errors.size} errors`,
      );
    });

    it('loads every object file without error', () => {
      assert.deepEqual(Object.fromEntries(errors), {});
      assert.ok(objects.size >= 300, `expected the full registry, found ${objects.size} object files`);
    });

    it('skips exactly the files that are not object definitions', () => {
      assert.deepEqual(
        [...skipped.keys()],
        ['Common.xml', 'DDF.xml', 'LWM2M-v1_1.xsd', 'LWM2M.xsd', 'LWM2M_senml_units.xml'],
      );
    });

    it('finds in each <id>.xml one object with that id and a name', () => {
      for (const [file, definitions] of objects) {
        assert.equal(definitions.length, 1, file);
        assert.equal(`${definitions[0].id}.xml`, file);
        assert.ok(definitions[0].name.length > 0);
      }
    });

    it('reads 3303 Temperature 1.1: resource 5700 Sensor Value is a mandatory single readable float', () => {
      const temperature = objects.get('3303.xml')![0];
      assert.equal(temperature.name, 'Temperature');
      assert.equal(temperature.version, '1.1');
      assert.equal(temperature.lwm2mVersion, '1.0');
      assert.equal(temperature.urn, 'urn:oma:lwm2m:ext:3303:1.1');
      assert.equal(temperature.multiple, true);
      assert.deepEqual(
        { ...temperature.resources[5700], description: undefined },
        {
          id: 5700,
          name: 'Sensor Value',
          operations: 'R',
          multiple: false,
          mandatory: true,
          type: 'float',
          description: undefined,
        },
      );
    });

    it('reads 3 Device: resource 0 Manufacturer, the mandatory executable Reboot, the multiple Error Code', () => {
      const device = objects.get('3.xml')![0];
      assert.equal(device.multiple, false);
      assert.equal(device.mandatory, true);
      assert.deepEqual(
        [device.resources[0].name, device.resources[0].type, device.resources[0].operations],
        ['Manufacturer', 'string', 'R'],
      );
      assert.deepEqual(
        [device.resources[4].type, device.resources[4].operations, device.resources[4].mandatory],
        ['none', 'E', true],
      );
      assert.equal(device.resources[11].multiple, true);
    });

    it('carries object versions beyond 1.0 (e.g. 3336 Location 2.0, Security 1.2) and LwM2M 1.1/1.2 objects', () => {
      const all = [...objects.values()].flat();
      const versions = new Set(all.map((definition) => definition.version));
      for (const version of ['1.0', '1.1', '1.2', '2.0']) assert.ok(versions.has(version), `has objects at ${version}`);
      assert.equal(objects.get('3336.xml')![0].version, '2.0');
      assert.equal(objects.get('0.xml')![0].version, '1.2');
      assert.ok(all.some((definition) => definition.lwm2mVersion === '1.1'));
      assert.ok(all.some((definition) => definition.lwm2mVersion === '1.2'));
    });

    it('copes with the registry quirks: BOM files, missing RangeEnumeration, doubled spaces, empty Type on a readable resource', () => {
      assert.equal(objects.get('19.xml')![0].name, 'BinaryAppDataContainer', '19.xml starts with a BOM');
      assert.equal(objects.get('3458.xml')![0].resources[5]?.range, undefined);
      assert.equal(
        objects.get('0.xml')![0].resources[0].name,
        'LWM2M Server URI',
        'registry writes "LWM2M  Server URI"',
      );
      const readData = objects.get('10482.xml')![0].resources[5];
      assert.deepEqual([readData.operations, readData.type], ['R', 'none']);
    });
  });
});
