import { strict as assert } from 'node:assert';
import fs from 'node:fs';
import path from 'node:path';
import vm from 'node:vm';
import { projectRoot } from './node-red-process';

/** resources/lwm2m-editor.js as the unit tests see it (a CommonJS module in Node). */
interface Validator {
  (value: unknown, opt?: unknown): true | string;
}
interface Suggestion {
  path: string;
  level: number;
  name: string;
  operations?: string;
  multiple?: boolean;
  onDevice?: boolean;
}
interface EditorScript {
  PATH_KINDS: Record<string, { levels: number[]; list?: boolean; operation?: string }>;
  MESSAGES: Record<string, string>;
  checkPath(kind: string, value: unknown): true | string;
  validators: {
    path(kind: string): Validator;
    optionalSeconds: Validator;
    optionalNumber(min: number): Validator;
    port(optional: boolean): Validator;
    optionalInstanceId: Validator;
    endpointFilter: Validator;
    attribute(kind: string, options?: { min?: number; clear?: boolean }): Validator;
  };
  formatChoices(which?: string): { value: string; label: string }[];
  splitLastItem(kind: string, value: string): { head: string; item: string };
  completions(kind: string, value: string, suggestions: Suggestion[]): { value: string; path: string }[];
}

const SCRIPT = path.join(projectRoot, 'resources', 'lwm2m-editor.js');
const SCRIPT_TAG = '<script src="resources/node-red-contrib-lwm2m-server/lwm2m-editor.js"></script>';
const editor = require(SCRIPT) as EditorScript;

describe('shared editor script (resources/lwm2m-editor.js)', function () {
  it('attaches itself to the page as window.lwm2mEditor when it is not a module', function () {
    const page: Record<string, unknown> = {};
    page.self = page;
    vm.runInNewContext(fs.readFileSync(SCRIPT, 'utf8'), page);
    assert.equal(typeof (page.lwm2mEditor as EditorScript).checkPath, 'function');
  });

  it('takes, per kind of path field, the paths the runtime takes, and says why not', function () {
    const cases: Record<string, { good: string[]; bad: string[] }> = {
      read: {
        good: [
          '/3303',
          '/3303/0',
          '3303/0/5700',
          '/3/0/7/1',
          '/3303/0/5700/',
          '/3303/0/5700,/3/0/9',
          '/3/0/0, /3/0/13',
        ],
        bad: ['/', '/3/0/7/1/2', '/3303/x', '/3303//0', '/3303/0,', ',/3/0', 'temperature'],
      },
      observe: { good: ['/3303/0/5700', '/3303/0/5700,/3/0/13'], bad: ['/3303/0/5700;/3/0/13'] },
      write: { good: ['/3303/0', '/3/0/14', '/3/0/7/0'], bad: ['/3303', '/3303/0,/3/0/14'] },
      execute: { good: ['/3/0/4'], bad: ['/3/0', '/3', '/3/0/4/0'] },
      discover: { good: ['/3', '/3/0', '/3/0/4'], bad: ['/3/0/7/1', '/'] },
      create: { good: ['/3303', '3303/'], bad: ['/3303/0', '/'] },
      delete: { good: ['/3303/1', '/3/0/7/1'], bad: ['/3303', '/3303/0/5700'] },
      attributes: { good: ['/3303', '/3303/0/5700', '/3/0/7/1'], bad: ['/3303/0/5700,/3/0/9', '/'] },
      filter: { good: ['/', '/3303', '/3303/0/5700'], bad: ['/3303/x', '/3303,/3'] },
    };
    assert.deepEqual(Object.keys(cases).sort(), Object.keys(editor.PATH_KINDS).sort());
    for (const [kind, { good, bad }] of Object.entries(cases)) {
      const validate = editor.validators.path(kind);
      for (const value of ['', '  ', '${LWM2M_PATH}', ...good])
        assert.equal(validate(value, {}), true, `${kind}: ${value}`);
      for (const value of bad) {
        const verdict = validate(value, {});
        assert.equal(typeof verdict, 'string', `${kind}: ${value} is refused`);
        assert.ok((verdict as string).length > 10, `${kind}: ${value}: ${verdict}`);
      }
    }
    assert.equal(editor.checkPath('read', '/3303/70000'), 'ids are 0..65535');
    assert.equal(editor.checkPath('read', '/3303/0/5700,,/3/0/9'), 'an empty path between commas');
    assert.equal(editor.checkPath('execute', '/3/0'), 'a resource path like /3/0/4');
  });

  it("declares two parameters on every validator: Node-RED shows a string as the reason only then (else it is 'valid')", function () {
    const { validators } = editor;
    const all: Validator[] = [
      ...Object.keys(editor.PATH_KINDS).map((kind) => validators.path(kind)),
      validators.optionalSeconds,
      validators.optionalNumber(0),
      validators.port(true),
      validators.port(false),
      validators.optionalInstanceId,
      validators.endpointFilter,
      validators.attribute('seconds'),
      validators.attribute('number', { min: 0, clear: true }),
    ];
    for (const validator of all) assert.equal(validator.length, 2);
  });

  it('checks seconds, numbers, ports, instance ids, endpoint filters and attributes', function () {
    const { validators } = editor;
    const verdicts = (validator: Validator, values: unknown[]) => values.map((value) => validator(value, {}) === true);
    assert.deepEqual(verdicts(validators.optionalSeconds, ['', undefined, '0.5', 30, '0', '-1', 'soon']), [
      true,
      true,
      true,
      true,
      false,
      false,
      false,
    ]);
    assert.deepEqual(verdicts(validators.optionalNumber(1), ['', '1', 1.5, '0', 'x']), [
      true,
      true,
      true,
      false,
      false,
    ]);
    assert.equal(validators.optionalNumber(1)('0', {}), 'a number >= 1, or blank');
    assert.deepEqual(verdicts(validators.port(false), ['', '0', 5683, '65535', '65536', '5683.5', '${PORT}']), [
      false,
      true,
      true,
      true,
      false,
      false,
      true,
    ]);
    assert.deepEqual(verdicts(validators.port(true), ['', undefined]), [true, true]);
    assert.deepEqual(verdicts(validators.optionalInstanceId, ['', '0', 65534, '65535', '-1', '1.5']), [
      true,
      true,
      true,
      false,
      false,
      false,
    ]);
    assert.deepEqual(verdicts(validators.endpointFilter, ['', '*', 'dev-?', '/^bike-\\d+$/', '/[/']), [
      true,
      true,
      true,
      true,
      false,
    ]);
    assert.match(String(validators.endpointFilter('/[/', {})), /^invalid regular expression: /);
    assert.deepEqual(verdicts(validators.attribute('seconds'), ['', '10', '1.5', '-1', 'clear']), [
      true,
      true,
      false,
      false,
      false,
    ]);
    assert.deepEqual(verdicts(validators.attribute('number', { min: 0, clear: true }), ['-0.5', 'CLEAR', '0']), [
      false,
      true,
      true,
    ]);
    assert.equal(validators.attribute('number', { min: 0, clear: true })('-1', {}), 'a number >= 0, clear, or blank');
    assert.deepEqual(verdicts(validators.attribute('flag', { clear: true }), ['0', '1', '2', 'clear']), [
      true,
      true,
      false,
      true,
    ]);
  });

  it('offers every content format, and for an instance (create) none that carries one resource only', function () {
    assert.deepEqual(
      editor.formatChoices().map((format) => format.value),
      ['', '11542', '110', '112', '11543', '0', '42'],
    );
    assert.deepEqual(
      editor.formatChoices('instances').map((format) => format.value),
      ['', '11542', '110', '112', '11543'],
    );
  });

  it('completes the last path of a composite list, with the paths a field of its kind can use', function () {
    assert.deepEqual(editor.splitLastItem('read', '/3/0/0, /33'), { head: '/3/0/0,', item: '/33' });
    assert.deepEqual(editor.splitLastItem('execute', ' /3/0/'), { head: '', item: '/3/0/' });
    const suggestions: Suggestion[] = [
      { path: '/3', level: 1, name: 'Device' },
      { path: '/3/0', level: 2, name: 'instance 0' },
      { path: '/3/0/0', level: 3, name: 'Manufacturer', operations: 'R', multiple: false },
      { path: '/3/0/4', level: 3, name: 'Reboot', operations: 'E', multiple: false },
      { path: '/3/0/7', level: 3, name: 'Power Source Voltage', operations: 'R', multiple: true },
      { path: '/3/0/14', level: 3, name: 'UTC Offset', operations: 'RW', multiple: false },
    ];
    const pathsFor = (kind: string, value = '') =>
      editor.completions(kind, value, suggestions).map((completion) => completion.path);
    assert.deepEqual(pathsFor('read'), ['/3', '/3/0', '/3/0/0', '/3/0/7', '/3/0/14']);
    assert.deepEqual(pathsFor('execute'), ['/3', '/3/0', '/3/0/4']);
    assert.deepEqual(pathsFor('write'), ['/3', '/3/0', '/3/0/14']);
    assert.deepEqual(pathsFor('create'), ['/3']);
    // Delete takes instances and resource instances: a multiple resource leads to those.
    assert.deepEqual(pathsFor('delete'), ['/3', '/3/0', '/3/0/7']);
    assert.deepEqual(pathsFor('discover'), ['/3', '/3/0', '/3/0/0', '/3/0/4', '/3/0/7', '/3/0/14']);
    assert.deepEqual(
      editor.completions('read', '/3303/0/5700,/3/0/', suggestions).map((completion) => completion.value)[2],
      '/3303/0/5700,/3/0/0',
    );
  });

  it('is what every editor file uses: no copy of a validator left in nodes/*.html, and the script loaded where used', function () {
    const nodesDir = path.join(projectRoot, 'nodes');
    const files = fs.readdirSync(nodesDir).filter((name) => name.endsWith('.html'));
    for (const file of files) {
      const html = fs.readFileSync(path.join(nodesDir, file), 'utf8');
      assert.doesNotMatch(
        html,
        /function (validPath|validObjectPath|validInstanceId|optionalSeconds|validEndpoint\w*|validPathFilter|attribute|optionalNumber|port)\(/,
        `${file} defines its own copy`,
      );
      assert.doesNotMatch(html, /<option value="11542">/, `${file} lists content formats itself`);
      if (/lwm2mEditor/.test(html)) assert.ok(html.startsWith(SCRIPT_TAG + '\n'), `${file} loads the script first`);
    }
  });
});
