/**
 * Runtime messages (status texts, warnings, errors the nodes make) from the message catalogs in nodes/locales/,
 * through Node-RED's i18n: the language is the runtime's (settings.js `lang`, else the environment's locale).
 *
 * Each node set has its own catalog, `locales/<lang>/<node-file>.json`, under the namespace
 * `node-red-contrib-lwm2m-server/<node-file>`. What several node sets share (status words, the warnings of
 * nodes/shared, the device log of the device browser) is in the `lwm2m` section of lwm2m-server.json.
 *
 * A node file calls `catalog(RED, '<node-file>')` once: that hands Node-RED's lookup to the shared helpers (any
 * node set's `RED._` reaches every catalog with a full `namespace:key`) and gives the node its own lookup.
 * Where no catalog answers (node-red-node-test-helper loads no catalogs), the English catalog is read from disk,
 * so a message is never shown as its key.
 */
import fs from 'node:fs';
import path from 'node:path';
import type { NodeAPI } from './node-red';

const MODULE = 'node-red-contrib-lwm2m-server';
/** The node set whose catalog holds the shared `lwm2m` section. */
const SHARED_SET = 'lwm2m-server';

export type Substitutions = Record<string, unknown>;
/** A message by key (`status.updated`), with `__name__` placeholders filled from `substitutions`. */
export type Translate = (key: string, substitutions?: Substitutions) => string;

let runtimeLookup: ((fullKey: string, substitutions?: Substitutions) => unknown) | undefined;

/**
 * The lookup of node set `set` (its own catalog, keys without the namespace), and Node-RED's lookup handed to the
 * shared helpers. Call it in the node file's module function.
 */
export function catalog(RED: Pick<NodeAPI, '_'>, set: string): Translate {
  useRuntimeCatalogs(RED);
  return (key, substitutions) => lookup(set, key, substitutions);
}

/**
 * Hands Node-RED's lookup to the shared helpers (the first node set to load does it; the shared helpers that get
 * RED, like serverConfig, do it too, for node sets without messages of their own).
 */
export function useRuntimeCatalogs(RED: Pick<NodeAPI, '_'>): void {
  runtimeLookup ??= (fullKey, substitutions) => RED._(fullKey, substitutions);
}

/** A shared message: a key of the `lwm2m` section of lwm2m-server.json (`status.observing`). */
export function t(key: string, substitutions?: Substitutions): string {
  return lookup(SHARED_SET, `lwm2m.${key}`, substitutions);
}

function lookup(set: string, key: string, substitutions?: Substitutions): string {
  const fullKey = `${MODULE}/${set}:${key}`;
  const found = runtimeLookup?.(fullKey, substitutions);
  // i18next answers a key it does not have with the key itself (without the namespace).
  if (typeof found === 'string' && found !== key && found !== fullKey) return found;
  return english(set, key, substitutions);
}

const englishCatalogs = new Map<string, Record<string, unknown>>();

/** The message from the en-US catalog on disk (dist/nodes/locales beside this file's folder). */
function english(set: string, key: string, substitutions?: Substitutions): string {
  let messages = englishCatalogs.get(set);
  if (!messages) {
    const file = path.join(__dirname, '..', 'locales', 'en-US', `${set}.json`);
    try {
      messages = JSON.parse(fs.readFileSync(file, 'utf8')) as Record<string, unknown>;
    } catch {
      messages = {};
    }
    englishCatalogs.set(set, messages);
  }
  const count = substitutions?.count;
  // i18next's plurals (as Node-RED migrates `_plural` to them): `key_one` / `key_other` chosen by `count`.
  const candidates = typeof count === 'number' ? [`${key}_${count === 1 ? 'one' : 'other'}`, key] : [key];
  for (const candidate of candidates) {
    const text = candidate.split('.').reduce<unknown>((at, part) => (at as Record<string, unknown>)?.[part], messages);
    if (typeof text === 'string') return interpolate(text, substitutions);
  }
  return key;
}

/** Fills `__name__` placeholders as Node-RED's i18n does. */
function interpolate(text: string, substitutions?: Substitutions): string {
  return text.replace(/__(\w+)__/g, (whole, name: string) =>
    substitutions && name in substitutions ? String(substitutions[name]) : whole,
  );
}
