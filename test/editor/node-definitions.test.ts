import { strict as assert } from 'node:assert';
import fs from 'node:fs';
import path from 'node:path';
import vm from 'node:vm';
import { projectRoot } from './node-red-process';

/** A property of a node's `defaults` as the editor reads it. */
interface PropertyDefinition {
  value?: unknown;
  required?: boolean;
  type?: string;
  validate?: (this: unknown, value: unknown, opt: unknown) => unknown;
}
type Definitions = Map<string, { defaults: Record<string, PropertyDefinition> }>;

/**
 * The node definitions of every nodes/*.html, run in Node with Node-RED's validators stood in for, the shared
 * editor script as the page has it. (Only the scripts that define the nodes: the templates and help are HTML.)
 */
function loadDefinitions(): Definitions {
  const definitions: Definitions = new Map();
  const validators = {
    // As Node-RED's own: a number (or blank when allowed), a regular expression, a typedInput (not checked here).
    // (Node-RED 3.1+ gives its own two parameters as well.)
    number: (blankAllowed?: boolean) => (value: unknown, _opt: unknown) =>
      (blankAllowed && (value === '' || value === undefined)) || (value !== '' && !Number.isNaN(Number(value))),
    regex: (pattern: RegExp) => (value: unknown, _opt: unknown) => pattern.test(String(value)),
    typedInput: () => (_value: unknown, _opt: unknown) => true,
  };
  const page: Record<string, unknown> = {
    RED: {
      nodes: {
        registerType: (type: string, definition: { defaults: Record<string, PropertyDefinition> }) =>
          definitions.set(type, definition),
        id: () => 'generated',
      },
      validators,
    },
    $: () => ({}),
  };
  page.self = page;
  page.window = page;
  vm.runInNewContext(fs.readFileSync(path.join(projectRoot, 'resources', 'lwm2m-editor.js'), 'utf8'), page);
  const nodesDir = path.join(projectRoot, 'nodes');
  for (const file of fs.readdirSync(nodesDir).filter((name) => name.endsWith('.html'))) {
    const html = fs.readFileSync(path.join(nodesDir, file), 'utf8');
    for (const [, script] of html.matchAll(/<script type="text\/javascript">([\s\S]*?)<\/script>/g)) {
      vm.runInNewContext(script, page, { filename: file });
    }
  }
  return definitions;
}

/** Why Node-RED's editor would mark this property of this node invalid, or undefined when it is fine. */
function problemWith(node: Record<string, unknown>, name: string, property: PropertyDefinition): string | undefined {
  const value = node[name] ?? property.value;
  if (typeof value === 'string' && /^\$\{[a-zA-Z_][a-zA-Z0-9_]*\}$/.test(value)) return undefined;
  if (property.required && (value === '' || value === undefined)) return 'required';
  if (!property.validate || property.type) return undefined;
  const verdict = property.validate.call(node, value, {});
  return verdict === true ? undefined : typeof verdict === 'string' ? verdict : 'invalid';
}

describe('node definitions in the editor (nodes/*.html run with the shared editor script)', function () {
  const definitions = loadDefinitions();

  it('defines every node of the package.json, each default valid as it comes from the palette', function () {
    const declared = Object.keys(
      (
        JSON.parse(fs.readFileSync(path.join(projectRoot, 'package.json'), 'utf8')) as { 'node-red': { nodes: object } }
      )['node-red'].nodes,
    );
    assert.deepEqual([...definitions.keys()].sort(), declared.sort());
    for (const [type, definition] of definitions) {
      for (const [name, property] of Object.entries(definition.defaults)) {
        if (property.required) continue; // a new node has no server yet: the user picks one
        assert.equal(problemWith({}, name, property), undefined, `${type}.${name}: its default`);
      }
    }
  });

  it('gives every validator two parameters: with one, Node-RED takes a reason (a string) for valid', function () {
    for (const [type, definition] of definitions) {
      for (const [name, property] of Object.entries(definition.defaults)) {
        if (property.validate) assert.equal(property.validate.length, 2, `${type}.${name}`);
      }
    }
  });

  it('takes every field of every example flow (an example imports with no invalid node)', function () {
    const examplesDir = path.join(projectRoot, 'examples');
    const files = fs.readdirSync(examplesDir).filter((name) => name.endsWith('.json'));
    assert.ok(files.length > 0);
    let checked = 0;
    for (const file of files) {
      const flow = JSON.parse(fs.readFileSync(path.join(examplesDir, file), 'utf8')) as Record<string, unknown>[];
      for (const node of flow) {
        const definition = definitions.get(String(node.type));
        if (!definition) continue;
        checked++;
        for (const [name, property] of Object.entries(definition.defaults)) {
          assert.equal(problemWith(node, name, property), undefined, `${file}: ${node.type} ${node.id}.${name}`);
        }
      }
    }
    assert.ok(checked > 30, `${checked} nodes checked`);
  });
});
