import { strict as assert } from 'node:assert';
import fs from 'node:fs';
import path from 'node:path';
import { projectRoot } from './node-red-process';

/**
 * The message catalogs (nodes/locales, nodes/plugins/locales) against the code that uses them: every key the
 * editor files, the shared editor script and the runtime ask for exists in every language; every language has
 * the same keys, placeholders and help; and no text a user reads is left in the editor templates or scripts.
 */

const MODULE = 'node-red-contrib-lwm2m-server';
const SHARED = `${MODULE}/lwm2m-server`;
const PLUGIN = `${MODULE}/lwm2m-device-browser`;
const LANGUAGES = ['en-US', 'de'];
const nodesDir = path.join(projectRoot, 'nodes');
const pluginsDir = path.join(nodesDir, 'plugins');

type Catalog = Record<string, unknown>;

/** The catalog of namespace `ns` in `lang`, flattened to `a.b.c` keys. */
function catalogOf(ns: string, lang: string): Map<string, string> {
  let file: string;
  if (ns === 'node-red') file = path.join(projectRoot, 'node_modules/@node-red/nodes/locales', lang, 'messages.json');
  else if (ns === PLUGIN) file = path.join(pluginsDir, 'locales', lang, 'lwm2m-device-browser.json');
  else file = path.join(nodesDir, 'locales', lang, `${ns.slice(MODULE.length + 1)}.json`);
  const flat = new Map<string, string>();
  if (!fs.existsSync(file)) return flat;
  const walk = (node: Catalog, prefix: string) => {
    for (const [key, value] of Object.entries(node)) {
      if (value !== null && typeof value === 'object') walk(value as Catalog, `${prefix}${key}.`);
      else flat.set(`${prefix}${key}`, String(value));
    }
  };
  walk(JSON.parse(fs.readFileSync(file, 'utf8')) as Catalog, '');
  return flat;
}

/** Whether `key` is in the catalog, as i18next finds it: itself, or its plural forms (`key_one`, `key_other`). */
function has(catalog: Map<string, string>, key: string): boolean {
  return catalog.has(key) || (catalog.has(`${key}_one`) && catalog.has(`${key}_other`));
}

/** The node sets of package.json: the name of each (its file's name) and its node types. */
function nodeSets(): string[] {
  const pkg = JSON.parse(fs.readFileSync(path.join(projectRoot, 'package.json'), 'utf8')) as {
    'node-red': { nodes: Record<string, string> };
  };
  return Object.keys(pkg['node-red'].nodes);
}

const htmlFiles = () =>
  fs
    .readdirSync(nodesDir)
    .filter((name) => name.endsWith('.html'))
    .map((name) => path.join(nodesDir, name));
const tsFiles = () =>
  [nodesDir, path.join(nodesDir, 'shared'), pluginsDir].flatMap((dir) =>
    fs
      .readdirSync(dir)
      .filter((name) => name.endsWith('.ts'))
      .map((name) => path.join(dir, name)),
  );
const read = (file: string) => fs.readFileSync(file, 'utf8');
const setOf = (file: string) => `${MODULE}/${path.basename(file).replace(/\.(html|ts)$/, '')}`;

function blocks(html: string, kind: 'javascript' | 'template'): string[] {
  const pattern =
    kind === 'javascript'
      ? /<script type="text\/javascript">([\s\S]*?)<\/script>/g
      : /<script type="text\/html" data-template-name="[^"]+">([\s\S]*?)<\/script>/g;
  return [...html.matchAll(pattern)].map((match) => match[1]);
}

/** `ns:key` → [ns, key]; a key without a namespace belongs to `defaultNs`. */
function split(key: string, defaultNs: string): [string, string] {
  const colon = key.indexOf(':');
  return colon < 0 ? [defaultNs, key] : [key.slice(0, colon), key.slice(colon + 1)];
}

/** Every [namespace, key] the code asks for, with where (for the failure message). */
function usedKeys(): { ns: string; key: string; where: string }[] {
  const used: { ns: string; key: string; where: string }[] = [];
  const add = (full: string, defaultNs: string, where: string) => {
    if (full.endsWith('.')) return; // the start of a key made from a value: its values are listed below
    const [ns, key] = split(full, defaultNs);
    used.push({ ns, key, where });
  };
  // A string that names a key of a node set's own catalog: `lwm2m-read.paletteLabel` (not an icon, not a file).
  const ownKey = /'((?:lwm2m-[a-z-]+)\.[A-Za-z][\w.-]*)'/g;
  const fileName = /\.(svg|js|json|html|ts)$/;
  for (const file of htmlFiles()) {
    const html = read(file);
    const ns = setOf(file);
    for (const template of blocks(html, 'template'))
      for (const [, attr] of template.matchAll(/data-i18n="([^"]+)"/g))
        for (const part of attr.split(';')) add(part.replace(/^\[[a-z]+\]/, ''), ns, path.basename(file));
    for (const script of blocks(html, 'javascript')) {
      for (const [, key] of script.matchAll(ownKey)) if (!fileName.test(key)) add(key, ns, path.basename(file));
      for (const [, key] of script.matchAll(/RED\._\('([^']+)'/g)) add(key, ns, path.basename(file));
    }
  }
  for (const file of tsFiles()) {
    const code = read(file);
    const where = path.relative(nodesDir, file);
    // The node's own catalog: `_('lwm2m-read.status.x')`; the shared section: `t('status.x')`.
    for (const [, key] of code.matchAll(ownKey)) if (!fileName.test(key)) add(key, setOf(file), where);
    for (const [, key] of code.matchAll(/\bt\(\s*'([\w.-]+)'/g)) add(`lwm2m.${key}`, SHARED, where);
    for (const [, a, b] of code.matchAll(/\bt\(\s*[\w.!=' ]+\?\s*'([\w.-]+)'\s*:\s*'([\w.-]+)'/g)) {
      add(`lwm2m.${a}`, SHARED, where);
      add(`lwm2m.${b}`, SHARED, where);
    }
  }
  const plugin = read(path.join(pluginsDir, 'lwm2m-device-browser.html'));
  for (const [, key] of plugin.matchAll(/\b_\(\s*'([\w.-]+)'/g)) add(key, PLUGIN, 'lwm2m-device-browser.html');
  for (const [, a, b] of plugin.matchAll(/\b_\(\s*[\w.[\]!=' ]+\?\s*'([\w.-]+)'\s*:\s*'([\w.-]+)'/g)) {
    add(a, PLUGIN, 'lwm2m-device-browser.html');
    add(b, PLUGIN, 'lwm2m-device-browser.html');
  }
  // Keys the plugin makes from a value: each value it can have.
  for (const state of ['online', 'awake', 'sleeping']) add(`state.${state}`, PLUGIN, 'device states');
  for (const filter of ['all', 'awake', 'sleeping', 'queue', 'secured', 'unsecured'])
    add(`filter.${filter}`, PLUGIN, 'device filters');
  for (const action of ['update', 'disable', 'periods', 'muteSend', 'unmuteSend', 'bootstrap', 'none'])
    add(`lwm2m-server-object.nodeLabel.${action}`, `${MODULE}/lwm2m-server-object`, 'server account actions');
  return used;
}

/** The string literals of a script (quotes, double quotes, template literals), comments skipped. */
function stringLiterals(code: string): string[] {
  const found: string[] = [];
  let i = 0;
  while (i < code.length) {
    const char = code[i];
    if (char === '/' && code[i + 1] === '/') i = code.indexOf('\n', i) < 0 ? code.length : code.indexOf('\n', i);
    else if (char === '/' && code[i + 1] === '*') i = code.indexOf('*/', i + 2) + 2;
    else if (char === "'" || char === '"' || char === '`') {
      let j = i + 1;
      let value = '';
      while (j < code.length && code[j] !== char) {
        if (code[j] === '\\') j++;
        value += code[j];
        j++;
      }
      found.push(value);
      i = j + 1;
    } else i++;
  }
  return found;
}

describe('message catalogs (nodes/locales: en-US and de)', function () {
  it('has every key the editor files, the device browser and the runtime use, in every language', function () {
    const used = usedKeys();
    assert.ok(used.length > 400, `${used.length} keys found: the patterns still find the code's keys`);
    const missing: string[] = [];
    for (const lang of LANGUAGES) {
      const catalogs = new Map<string, Map<string, string>>();
      for (const { ns, key, where } of used) {
        if (!catalogs.has(ns)) catalogs.set(ns, catalogOf(ns, lang));
        if (!has(catalogs.get(ns)!, key)) missing.push(`${lang} ${ns}:${key} (${where})`);
      }
    }
    assert.deepEqual([...new Set(missing)], []);
  });

  it('has the keys the shared editor script builds (path kinds, attribute kinds, formats, tabs)', function () {
    const editor = require(path.join(projectRoot, 'resources', 'lwm2m-editor.js')) as {
      PATH_KINDS: Record<string, unknown>;
    };
    const script = read(path.join(projectRoot, 'resources', 'lwm2m-editor.js'));
    const keys = [
      ...Object.keys(editor.PATH_KINDS).map((kind) => `editor.path.${kind}`),
      'editor.path.ids',
      'editor.path.empty-item',
      ...['number', 'seconds', 'integer', 'flag', 'min'].flatMap((kind) => [
        `editor.attribute.${kind}`,
        `editor.attribute.${kind}-clear`,
      ]),
      ...[...script.matchAll(/key: '(\w+)'/g)].map(([, key]) => `format.${key}`),
      ...[...script.matchAll(/message\('([\w.-]*\w)'/g)].map(([, key]) => `editor.${key}`),
      ...[...read(path.join(nodesDir, 'lwm2m-server.html')).matchAll(/data-label="([\w.]+)"/g)].map(([, key]) => key),
    ];
    assert.ok(keys.length > 30);
    for (const lang of LANGUAGES) {
      const catalog = catalogOf(SHARED, lang);
      for (const key of keys) assert.ok(has(catalog, `lwm2m.${key}`), `${lang}: lwm2m.${key}`);
    }
  });

  it('has the same keys and the same __placeholders__ in every language, and no empty message', function () {
    const namespaces = [...nodeSets().map((set) => `${MODULE}/${set}`), PLUGIN];
    for (const ns of namespaces) {
      const english = catalogOf(ns, 'en-US');
      for (const lang of LANGUAGES.slice(1)) {
        const other = catalogOf(ns, lang);
        assert.deepEqual([...other.keys()].sort(), [...english.keys()].sort(), `${lang} ${ns}: the same keys`);
        for (const [key, text] of english) {
          const placeholders = (value: string) => [...value.matchAll(/__(\w+)__/g)].map((m) => m[1]).sort();
          assert.deepEqual(placeholders(other.get(key)!), placeholders(text), `${lang} ${ns}:${key} placeholders`);
          assert.notEqual(other.get(key)!.trim(), '', `${lang} ${ns}:${key} is empty`);
        }
      }
    }
  });

  it('has help for every node type in every language, in locales/<lang>/<node-file>.html only', function () {
    for (const set of nodeSets()) {
      const html = read(path.join(nodesDir, `${set}.html`));
      assert.doesNotMatch(html, /data-help-name=/, `${set}.html keeps no help of its own`);
      const types = [...html.matchAll(/data-template-name="([^"]+)"/g)].map((match) => match[1]);
      assert.ok(types.length > 0, set);
      for (const lang of LANGUAGES) {
        const file = path.join(nodesDir, 'locales', lang, `${set}.html`);
        assert.ok(fs.existsSync(file), `${lang}/${set}.html`);
        const help = read(file);
        for (const type of types) {
          assert.match(help, new RegExp(`<script type="text/html" data-help-name="${type}">`), `${lang}: ${type}`);
          const body = help.slice(help.indexOf(`data-help-name="${type}"`));
          assert.ok(body.replace(/<[^>]+>/g, '').trim().length > 200, `${lang}: help of ${type} has text`);
        }
      }
    }
  });

  it('leaves no text a user reads in the editor templates: every label, option, tip and placeholder is data-i18n', function () {
    // Names that are the same in every language: protocol names, CoAP attribute names, units without words.
    const technical = new Set(['CoAP', 'CoAPs', 'NSTART', 'PSK', 'LwM2M', 'Short Server ID', 'pmin / pmax']);
    const attributeNames = /^(pmin|pmax|gt|lt|st|epmin|epmax|edge|con|hqmax)$/;
    const literalPlaceholder = /^(::|[\d.,\s]+|[a-z]+:\/\/[^\s]*|lwm2m:|pmin|pmax)$/;
    const problems: string[] = [];
    for (const file of htmlFiles()) {
      for (const template of blocks(read(file), 'template')) {
        const text = template.replace(/<[^>]*>/g, '\n').replace(/&nbsp;/g, ' ');
        for (const piece of text
          .split('\n')
          .map((line) => line.trim())
          .filter((line) => /[A-Za-z]/.test(line))) {
          if (!technical.has(piece) && !attributeNames.test(piece))
            problems.push(`${path.basename(file)}: text "${piece}"`);
        }
        for (const [, attr, value] of template.matchAll(/\s(placeholder|title)="([^"]*)"/g)) {
          if (/[A-Za-z]/.test(value) && !literalPlaceholder.test(value))
            problems.push(`${path.basename(file)}: ${attr}="${value}"`);
        }
      }
    }
    assert.deepEqual(problems, []);
  });

  it('leaves no sentence in the editor scripts, the shared editor script or the device browser', function () {
    // A string of two words or more that is not markup, a selector, an icon or a CSS class list.
    const markup = /^(<|#|\.|fa |fa-|node_label|red-ui|lwm2m-db|use strict)/;
    // Thrown only when a node file passes a path kind the script does not have: a bug, not a user's mistake.
    const forDevelopers = /^unknown path kind $/;
    const scripts = [
      ...htmlFiles().flatMap((file) => blocks(read(file), 'javascript').map((code) => ({ file, code }))),
      ...blocks(read(path.join(pluginsDir, 'lwm2m-device-browser.html')), 'javascript').map((code) => ({
        file: 'lwm2m-device-browser.html',
        code,
      })),
      { file: 'lwm2m-editor.js', code: read(path.join(projectRoot, 'resources', 'lwm2m-editor.js')) },
    ];
    const problems: string[] = [];
    for (const { file, code } of scripts) {
      for (const literal of stringLiterals(code)) {
        const words = literal.replace(/\$\{[^}]*\}/g, ' ');
        if (!/[A-Za-z]{2,} [A-Za-z]{2,}/.test(words) || markup.test(literal) || forDevelopers.test(literal)) continue;
        if (/^[\w-]+(, [#.][\w-]+)+$/.test(literal)) continue; // a jQuery selector list
        problems.push(`${path.basename(file)}: '${literal}'`);
      }
    }
    assert.deepEqual(problems, []);
  });

  it("leaves no literal message in the runtime's status, warn, error and log calls", function () {
    const call = /(\.(warn|error|log)|Status\.(ok|error|busy|waiting)|new \w*Error)\(\s*(['`"])((?:(?!\4).)*)\4/;
    // An invariant of the host registry: a bug, never something a user did.
    const forDevelopers = /^no server under /;
    const problems: string[] = [];
    for (const file of tsFiles()) {
      read(file)
        .split('\n')
        .forEach((line, index) => {
          const found = call.exec(line);
          if (!found || /^\s*(\/\/|\*)/.test(line) || forDevelopers.test(found[5])) return;
          if (/[A-Za-z]{2,}/.test(found[5].replace(/\$\{[^}]*\}/g, '')))
            problems.push(`${path.relative(nodesDir, file)}:${index + 1}: ${line.trim()}`);
        });
    }
    assert.deepEqual(problems, []);
  });
});
