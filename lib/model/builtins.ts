/**
 * Built-in object definitions and the compact JSON format they are written in.
 *
 * The built-ins are data, not XML: `definitions/core.json` (LwM2M objects 0-7) and `definitions/ipso.json`
 * (IPSO smart objects), written by hand and checked against the OMA registry by
 * `test/model/builtins.test.ts`. The same format can be dropped into a user folder (`ObjectModel.loadFolder`
 * reads `*.json` files that carry the format marker).
 *
 * Format ("lwm2m-objects@1"):
 *
 * ```jsonc
 * {
 *   "format": "lwm2m-objects@1",          // marker; files without it are not definition sets
 *   "reusable": {                          // optional: resources shared by several objects of this file
 *     "5700": ["Sensor Value", "R", "float", "M"]          // same tuple as below, without the id
 *   },
 *   "objects": [
 *     {
 *       "id": 3303, "name": "Temperature",
 *       "multiple": true,                  // object instances: true = Multiple, false = Single
 *       "mandatory": false,
 *       "versions": { "1.1": "1.0" },      // object version -> LwM2M version it was written for;
 *                                          // optional, default { "1.0": "1.0" }; one definition per entry
 *       "urn": "...",                      // optional, default urn:oma:lwm2m:{oma|ext|x}:{id}[:{version}]
 *       "description": "...",              // optional, one short line
 *       "resources": [
 *         5700,                            // a number: the resource of that id from "reusable"
 *         [5750, "Application Type", "RW", "string"],
 *         [7, "Power Source Voltage", "R", "integer", "*", { "units": "mV" }]
 *       ]
 *     }
 *   ]
 * }
 * ```
 *
 * Resource tuple: `[id, name, operations, type, flags?, extra?]`
 * - operations: "R" | "W" | "RW" | "E" | "" (no access, e.g. the Security object)
 * - type: a ResourceType ("string", "integer", "unsigned", "float", "boolean", "opaque", "time", "objlnk",
 *   "corelnk", "none" for executables)
 * - flags: letters, any order: "M" mandatory (else optional), "*" multiple instances (else single)
 * - extra: `{ range?, units?, description?, since? }`; `since` is the first object version that has the
 *   resource, so one entry describes several versions (e.g. /1/x/23 Mute Send: `"since": "1.1"`).
 *   A resource whose mandatory flag changed between versions cannot be expressed; none of ours did.
 */
import { Lwm2mError } from '../errors';
import coreDefinitions from './definitions/core.json';
import ipsoDefinitions from './definitions/ipso.json';
import type { ObjectDefinition, Operations, ResourceDefinition, ResourceType } from './types';

export const DEFINITION_SET_FORMAT = 'lwm2m-objects@1';

export class DefinitionFormatError extends Lwm2mError {
  override name = 'DefinitionFormatError';
  constructor(
    readonly source: string,
    readonly reason: string,
  ) {
    super(`${source}: ${reason}`);
  }
}

const RESOURCE_TYPES: readonly ResourceType[] = [
  'string',
  'integer',
  'unsigned',
  'float',
  'boolean',
  'opaque',
  'time',
  'objlnk',
  'corelnk',
  'none',
];
const OPERATIONS: readonly Operations[] = ['', 'R', 'W', 'RW', 'E'];

/** True when `data` (parsed JSON) carries the definition set format marker. */
export function isDefinitionSet(data: unknown): boolean {
  return isRecord(data) && data.format === DEFINITION_SET_FORMAT;
}

/**
 * Expands a definition set (parsed JSON in the format above) into one ObjectDefinition per object version.
 * Throws DefinitionFormatError naming the source and the entry at fault.
 */
export function parseDefinitionSet(data: unknown, source = '<definitions>'): ObjectDefinition[] {
  const fail = (reason: string): never => {
    throw new DefinitionFormatError(source, reason);
  };
  if (!isRecord(data)) return fail('expected a JSON object');
  if (data.format !== DEFINITION_SET_FORMAT) return fail(`"format" must be "${DEFINITION_SET_FORMAT}"`);

  const reusable = new Map<number, unknown[]>();
  if (data.reusable !== undefined) {
    if (!isRecord(data.reusable)) return fail('"reusable" must be an object keyed by resource id');
    for (const [key, tuple] of Object.entries(data.reusable)) {
      const id = Number(key);
      if (!/^\d+$/.test(key) || id > 65535) return fail(`reusable resource id "${key}" is not an integer in 0..65535`);
      if (!Array.isArray(tuple)) {
        return fail(`reusable resource ${key} must be [name, operations, type, flags?, extra?]`);
      }
      reusable.set(id, [id, ...tuple]);
    }
  }

  if (!Array.isArray(data.objects)) return fail('"objects" must be an array');
  const definitions: ObjectDefinition[] = [];
  data.objects.forEach((entry: unknown, index: number) => {
    definitions.push(...expandObject(entry, `objects[${index}]`, reusable, fail));
  });
  return definitions;
}

function expandObject(
  entry: unknown,
  where: string,
  reusable: Map<number, unknown[]>,
  fail: (reason: string) => never,
): ObjectDefinition[] {
  if (!isRecord(entry)) return fail(`${where} must be an object`);
  const id = entry.id;
  if (!isId(id)) return fail(`${where}.id must be an integer in 0..65535`);
  const what = `object ${id}`;
  if (typeof entry.name !== 'string' || entry.name.trim() === '') return fail(`${what} has no name`);
  if (typeof entry.multiple !== 'boolean') return fail(`${what}: "multiple" must be true or false`);
  if (typeof entry.mandatory !== 'boolean') return fail(`${what}: "mandatory" must be true or false`);
  if (entry.urn !== undefined && typeof entry.urn !== 'string') return fail(`${what}: "urn" must be a string`);
  if (entry.description !== undefined && typeof entry.description !== 'string') {
    return fail(`${what}: "description" must be a string`);
  }

  const versions = entry.versions ?? { '1.0': '1.0' };
  if (!isRecord(versions) || Object.keys(versions).length === 0) {
    return fail(`${what}: "versions" must map object versions to LwM2M versions`);
  }
  for (const [objectVersion, lwm2mVersion] of Object.entries(versions)) {
    if (!isVersion(objectVersion) || typeof lwm2mVersion !== 'string' || !isVersion(lwm2mVersion)) {
      return fail(`${what}: version entry "${objectVersion}": "${String(lwm2mVersion)}" is not like "1.1": "1.0"`);
    }
  }

  if (!Array.isArray(entry.resources)) return fail(`${what}: "resources" must be an array`);
  const resources = entry.resources.map((resourceEntry: unknown, index: number) => {
    let tuple: unknown;
    if (typeof resourceEntry === 'number') {
      tuple = reusable.get(resourceEntry);
      if (tuple === undefined) {
        return fail(`${what}: resources[${index}] refers to unknown reusable resource ${resourceEntry}`);
      }
    } else {
      tuple = resourceEntry;
    }
    return readResourceTuple(tuple, `${what} resources[${index}]`, fail);
  });
  const seen = new Set<number>();
  for (const { definition } of resources) {
    if (seen.has(definition.id)) return fail(`${what} lists resource ${definition.id} twice`);
    seen.add(definition.id);
  }

  return Object.entries(versions).map(([version, lwm2mVersion]) => {
    const included: Record<number, ResourceDefinition> = {};
    for (const { definition, since } of resources) {
      if (since === undefined || compareVersions(since, version) <= 0) included[definition.id] = { ...definition };
    }
    const definition: ObjectDefinition = {
      id,
      name: (entry.name as string).trim(),
      version,
      lwm2mVersion: lwm2mVersion as string,
      urn: (entry.urn as string | undefined) ?? defaultUrn(id, version),
      multiple: entry.multiple as boolean,
      mandatory: entry.mandatory as boolean,
      resources: included,
    };
    if (entry.description !== undefined) definition.description = entry.description as string;
    return definition;
  });
}

function readResourceTuple(
  tuple: unknown,
  where: string,
  fail: (reason: string) => never,
): { definition: ResourceDefinition; since?: string } {
  if (!Array.isArray(tuple) || tuple.length < 4 || tuple.length > 6) {
    return fail(`${where} must be [id, name, operations, type, flags?, extra?]`);
  }
  const [id, name, operations, type, flags = '', extra = {}] = tuple as unknown[];
  if (!isId(id)) return fail(`${where}: id must be an integer in 0..65535`);
  const what = `${where} (resource ${id})`;
  if (typeof name !== 'string' || name.trim() === '') return fail(`${what} has no name`);
  if (!OPERATIONS.includes(operations as Operations)) {
    return fail(`${what}: operations "${String(operations)}" is not one of R, W, RW, E, ""`);
  }
  if (!RESOURCE_TYPES.includes(type as ResourceType)) {
    return fail(`${what}: type "${String(type)}" is not one of ${RESOURCE_TYPES.join(', ')}`);
  }
  if (typeof flags !== 'string' || !/^[M*]*$/.test(flags)) return fail(`${what}: flags must use only "M" and "*"`);
  if (!isRecord(extra)) return fail(`${what}: the last element must be an object { range?, units?, since? }`);
  for (const [key, value] of Object.entries(extra)) {
    if (!['range', 'units', 'description', 'since'].includes(key)) return fail(`${what}: unknown extra "${key}"`);
    if (typeof value !== 'string') return fail(`${what}: "${key}" must be a string`);
  }
  if (extra.since !== undefined && !isVersion(extra.since as string)) {
    return fail(`${what}: since "${String(extra.since)}" is not a version like "1.1"`);
  }

  const definition: ResourceDefinition = {
    id,
    name: name.trim(),
    operations: operations as Operations,
    multiple: flags.includes('*'),
    mandatory: flags.includes('M'),
    type: type as ResourceType,
  };
  if (extra.range !== undefined) definition.range = extra.range as string;
  if (extra.units !== undefined) definition.units = extra.units as string;
  if (extra.description !== undefined) definition.description = extra.description as string;
  return { definition, since: extra.since as string | undefined };
}

/** URN as the OMA registry forms it: namespace by id range, version suffix for versions other than 1.0. */
export function defaultUrn(objectId: number, version: string): string {
  const namespace = objectId < 2048 ? 'oma' : objectId < 10241 ? 'ext' : 'x';
  const base = `urn:oma:lwm2m:${namespace}:${objectId}`;
  return version === '1.0' ? base : `${base}:${version}`;
}

/** Compares "major.minor" versions numerically ("1.10" > "1.9"). */
export function compareVersions(a: string, b: string): number {
  const [aMajor = 0, aMinor = 0] = a.split('.').map(Number);
  const [bMajor = 0, bMinor = 0] = b.split('.').map(Number);
  return aMajor - bMajor || aMinor - bMinor;
}

let builtins: readonly ObjectDefinition[] | undefined;

/**
 * The built-in definitions, parsed once and deep-frozen because every ObjectModel.withBuiltins() shares them.
 */
export function builtinDefinitions(): readonly ObjectDefinition[] {
  if (builtins === undefined) {
    const parsed = [
      ...parseDefinitionSet(coreDefinitions, 'definitions/core.json'),
      ...parseDefinitionSet(ipsoDefinitions, 'definitions/ipso.json'),
    ];
    builtins = Object.freeze(parsed.map(deepFreeze));
  }
  return builtins;
}

function deepFreeze<T>(value: T): T {
  if (typeof value === 'object' && value !== null && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const inner of Object.values(value)) deepFreeze(inner);
  }
  return value;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function isId(value: unknown): value is number {
  return typeof value === 'number' && Number.isInteger(value) && value >= 0 && value <= 65535;
}

function isVersion(value: string): boolean {
  return /^\d{1,4}\.\d{1,4}$/.test(value);
}
