/**
 * Conversions between what a Node-RED flow holds (`msg.payload`) and the typed value tree of types.ts.
 *
 * - `coerceValue` turns one user-supplied value into the JavaScript shape of a resource type.
 * - `toPlain` turns a value tree read from a device into plain msg data.
 * - `fromPlain` turns plain msg data into a value tree to write to a device.
 */
import { Lwm2mError } from '../errors';
import { LwM2mPath } from './path';
import { findResourceByName } from './object-model';
import type {
  LwM2mMultipleResource,
  LwM2mNode,
  LwM2mObject,
  LwM2mObjectInstance,
  LwM2mResource,
  ObjectLink,
  ObjectModelLookup,
  ResourceDefinition,
  ResourceType,
  ResourceValue,
} from './types';

export class ValueError extends Lwm2mError {
  override name = 'ValueError';
}

const INT64_MIN = -(2n ** 63n);
const INT64_MAX = 2n ** 63n - 1n;
const UINT64_MAX = 2n ** 64n - 1n;
/** Largest |ms| a JavaScript Date can hold. */
const MAX_DATE_MS = 8.64e15;

const TYPE_LABELS: Record<ResourceType, string> = {
  string: 'a string',
  integer: 'an integer',
  unsigned: 'an unsigned integer',
  float: 'a float',
  boolean: 'a boolean',
  opaque: 'opaque bytes (Buffer, hex or base64 string)',
  time: 'a time (Date, ISO string or seconds since 1970)',
  objlnk: 'an object link ({objectId, instanceId} or "3:0")',
  corelnk: 'a CoRE link string',
  none: 'no value',
};

/**
 * Converts a value a flow might send into the shape of `type` (see types.ts), or throws ValueError saying
 * what was expected and what came (`/3303/0/5700 expects a float, got "abc"`).
 *
 * Accepted input per type:
 * - string: string; numbers, bigints and booleans are turned into text.
 * - corelnk: string.
 * - integer / unsigned: integer number (safe range only, larger numbers have already lost digits),
 *   bigint, or decimal string. Checked against the 64-bit range (-2^63..2^63-1, 0..2^64-1). The result is
 *   a number when it is a safe integer, else a bigint.
 * - float: finite number, numeric string, bigint.
 * - boolean: true/false, 1/0, and the strings "true"/"false", "1"/"0", "on"/"off", "yes"/"no" (any case).
 * - opaque: Buffer, Uint8Array, ArrayBuffer, array of bytes, a JSON-serialised Buffer
 *   `{type: 'Buffer', data: [...]}`, or a string: "hex:…", "base64:…", "utf8:…" say how to read it;
 *   without prefix a string of hex digit pairs (optionally "0x…") is hex, otherwise it must be base64.
 * - time: Date, ISO 8601 string, or seconds since 1970 (number, bigint or digit string). The result is a
 *   Date truncated to whole seconds, which is what LwM2M carries.
 * - objlnk: `{objectId, instanceId}` or "objectId:instanceId", each 0..65535.
 * - none (executable resources): nothing is accepted.
 */
export function coerceValue(input: unknown, type: ResourceType, path?: string | LwM2mPath): ResourceValue {
  const where = path === undefined ? 'value' : String(path);
  const fail = (detail?: string): never => {
    throw new ValueError(`${where} expects ${TYPE_LABELS[type]}, got ${describe(input)}${detail ? `: ${detail}` : ''}`);
  };
  switch (type) {
    case 'string':
      if (typeof input === 'string') return input;
      if (typeof input === 'number' || typeof input === 'bigint' || typeof input === 'boolean') return String(input);
      return fail();
    case 'corelnk':
      return typeof input === 'string' ? input : fail();
    case 'integer':
    case 'unsigned':
      return coerceInteger(input, type === 'unsigned', fail);
    case 'float':
      return coerceFloat(input, fail);
    case 'boolean':
      return coerceBoolean(input, fail);
    case 'opaque':
      return coerceOpaque(input, fail);
    case 'time':
      return coerceTime(input, fail);
    case 'objlnk':
      return coerceObjectLink(input, fail);
    case 'none':
      throw new ValueError(`${where} is executable and holds no value`);
    default:
      throw new ValueError(`${where} has unknown resource type "${String(type)}"`);
  }
}

type Fail = (detail?: string) => never;

function coerceInteger(input: unknown, unsigned: boolean, fail: Fail): number | bigint {
  let value: bigint;
  if (typeof input === 'number') {
    if (!Number.isInteger(input)) return fail();
    if (!Number.isSafeInteger(input)) {
      return fail('beyond 2^53 a JavaScript number is not exact; send a string or a bigint');
    }
    value = BigInt(input);
  } else if (typeof input === 'bigint') {
    value = input;
  } else if (typeof input === 'string' && /^\s*[+-]?\d+\s*$/.test(input)) {
    value = BigInt(input.trim());
  } else {
    return fail();
  }
  if (unsigned ? value < 0n || value > UINT64_MAX : value < INT64_MIN || value > INT64_MAX) {
    return fail(unsigned ? 'out of the unsigned 64-bit range 0..2^64-1' : 'out of the 64-bit range -2^63..2^63-1');
  }
  return value >= BigInt(Number.MIN_SAFE_INTEGER) && value <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(value) : value;
}

const FLOAT_TEXT = /^[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?$/;

function coerceFloat(input: unknown, fail: Fail): number {
  let value: number;
  if (typeof input === 'number') value = input;
  else if (typeof input === 'bigint') value = Number(input);
  else if (typeof input === 'string' && FLOAT_TEXT.test(input.trim())) value = Number(input.trim());
  else return fail();
  return Number.isFinite(value) ? value : fail('not a finite number');
}

const TRUE_WORDS = new Set(['true', '1', 'on', 'yes']);
const FALSE_WORDS = new Set(['false', '0', 'off', 'no']);

function coerceBoolean(input: unknown, fail: Fail): boolean {
  if (typeof input === 'boolean') return input;
  if (input === 1 || input === 1n) return true;
  if (input === 0 || input === 0n) return false;
  if (typeof input === 'string') {
    const word = input.trim().toLowerCase();
    if (TRUE_WORDS.has(word)) return true;
    if (FALSE_WORDS.has(word)) return false;
  }
  return fail();
}

const HEX_TEXT = /^(?:[0-9a-fA-F]{2})*$/;
const BASE64_TEXT = /^(?:[A-Za-z0-9+/_-]{4})*(?:[A-Za-z0-9+/_-]{2}(?:==)?|[A-Za-z0-9+/_-]{3}=?)?$/;

function coerceOpaque(input: unknown, fail: Fail): Buffer {
  if (Buffer.isBuffer(input)) return input;
  if (input instanceof Uint8Array) return Buffer.from(input.buffer, input.byteOffset, input.byteLength);
  if (input instanceof ArrayBuffer) return Buffer.from(input);
  if (Array.isArray(input)) return bytesToBuffer(input, fail);
  if (isPlainObject(input) && input.type === 'Buffer' && Array.isArray(input.data)) {
    return bytesToBuffer(input.data, fail);
  }
  if (typeof input === 'string') {
    const prefix = /^(hex|base64|utf8):/i.exec(input);
    if (prefix) {
      const body = input.slice(prefix[0].length);
      switch (prefix[1].toLowerCase()) {
        case 'hex':
          return HEX_TEXT.test(body) ? Buffer.from(body, 'hex') : fail('not an even number of hex digits');
        case 'base64':
          return BASE64_TEXT.test(body) ? Buffer.from(body, 'base64') : fail('not base64');
        default:
          return Buffer.from(body, 'utf8');
      }
    }
    const text = input.trim();
    const hex = /^0x/i.test(text) ? text.slice(2) : text;
    if (HEX_TEXT.test(hex)) return Buffer.from(hex, 'hex');
    if (BASE64_TEXT.test(text)) return Buffer.from(text, 'base64');
    return fail('neither hex nor base64; prefix it with "utf8:" to send text');
  }
  return fail();
}

function bytesToBuffer(bytes: unknown[], fail: Fail): Buffer {
  const bad = bytes.findIndex((byte) => typeof byte !== 'number' || !Number.isInteger(byte) || byte < 0 || byte > 255);
  if (bad >= 0) return fail(`item ${bad} is not a byte (0..255)`);
  return Buffer.from(bytes as number[]);
}

function coerceTime(input: unknown, fail: Fail): Date {
  let ms: number;
  if (input instanceof Date) ms = input.getTime();
  else if (typeof input === 'number') ms = Number.isFinite(input) ? input * 1000 : NaN;
  else if (typeof input === 'bigint') ms = Number(input) * 1000;
  else if (typeof input === 'string' && /^\s*[+-]?\d+\s*$/.test(input)) ms = Number(input.trim()) * 1000;
  else if (typeof input === 'string' && input.trim() !== '') ms = Date.parse(input.trim());
  else return fail();
  if (Number.isNaN(ms)) return fail();
  const seconds = Math.floor(ms / 1000);
  if (Math.abs(seconds * 1000) > MAX_DATE_MS) return fail('outside the range of a JavaScript Date');
  return new Date(seconds * 1000);
}

function coerceObjectLink(input: unknown, fail: Fail): ObjectLink {
  let objectId: unknown;
  let instanceId: unknown;
  if (typeof input === 'string') {
    const match = /^\s*(\d{1,5})\s*:\s*(\d{1,5})\s*$/.exec(input);
    if (!match) return fail();
    objectId = Number(match[1]);
    instanceId = Number(match[2]);
  } else if (isPlainObject(input) && 'objectId' in input && 'instanceId' in input) {
    objectId =
      typeof input.objectId === 'string' && /^\d+$/.test(input.objectId) ? Number(input.objectId) : input.objectId;
    instanceId =
      typeof input.instanceId === 'string' && /^\d+$/.test(input.instanceId)
        ? Number(input.instanceId)
        : input.instanceId;
  } else {
    return fail();
  }
  if (!isId(objectId) || !isId(instanceId)) return fail('ids must be integers in 0..65535');
  return { objectId, instanceId };
}

// ---------------------------------------------------------------------------------------------------------
// Value tree -> plain msg data
// ---------------------------------------------------------------------------------------------------------

/** A multiple resource as plain data: resource instance id -> value. */
export type PlainMultipleResource = Record<string, ResourceValue>;
/** A resource as plain data: its value, or its instances for a multiple resource. */
export type PlainResource = ResourceValue | PlainMultipleResource;
/** An object instance as plain data, addressable by resource name or by resource id. */
export interface PlainInstance {
  byName: Record<string, PlainResource>;
  byId: Record<string, PlainResource>;
}
/** An object as plain data: instance id -> instance. */
export type PlainObject = Record<string, PlainInstance>;
export type PlainValue = PlainResource | PlainInstance | PlainObject;

export interface ModelOptions {
  /** Object version to take names and types from (as the client registered it); default: the newest. */
  version?: string;
}

/**
 * Turns a value tree into msg data. Shapes, by what the node is:
 * - single resource or resource instance: the value itself (`23.5`).
 * - multiple resource: `{ "0": 3800, "1": 5000 }`, keyed by resource instance id.
 * - object instance: `{ byName: { "Sensor Value": 23.5, ... }, byId: { "5700": 23.5, ... } }`; names come
 *   from the model, resources it does not know are named by their id; a name used twice in an object gets
 *   its id appended (`"Object Enabled (934)"`). Multiple resources inside are shaped as above.
 * - object: `{ "0": <instance>, "1": <instance> }`, keyed by instance id.
 *
 * Values keep their JavaScript type: bigint stays bigint, time stays Date, opaque stays Buffer, objlnk is
 * a fresh `{ objectId, instanceId }`.
 * `path` is where the node was read; its object id selects the names.
 */
export function toPlain(
  node: LwM2mNode,
  path: LwM2mPath,
  model: ObjectModelLookup,
  options: ModelOptions = {},
): PlainValue {
  switch (node.kind) {
    case 'resource':
    case 'resourceInstance':
      return plainValue(node.value);
    case 'multipleResource':
      return plainMultiple(node);
    case 'instance':
      return plainInstance(node, path.objectId, model, options);
    case 'object': {
      const plain: PlainObject = {};
      for (const instance of sortedValues(node.instances)) {
        plain[instance.id] = plainInstance(instance, node.id, model, options);
      }
      return plain;
    }
    default:
      throw new ValueError(`cannot convert a node of kind "${(node as { kind: unknown }).kind}" at ${path}`);
  }
}

function plainInstance(
  instance: LwM2mObjectInstance,
  objectId: number | undefined,
  model: ObjectModelLookup,
  options: ModelOptions,
): PlainInstance {
  const byName: Record<string, PlainResource> = {};
  const byId: Record<string, PlainResource> = {};
  const definition = objectId === undefined ? undefined : model.getObject(objectId, options.version);
  for (const resource of sortedValues(instance.resources)) {
    const value = resource.kind === 'multipleResource' ? plainMultiple(resource) : plainValue(resource.value);
    byId[resource.id] = value;
    const name = definition?.resources[resource.id]?.name ?? String(resource.id);
    byName[name in byName ? `${name} (${resource.id})` : name] = value;
  }
  return { byName, byId };
}

function plainMultiple(resource: LwM2mMultipleResource): PlainMultipleResource {
  const plain: PlainMultipleResource = {};
  for (const id of [...resource.instances.keys()].sort((a, b) => a - b)) {
    plain[id] = plainValue(resource.instances.get(id)!);
  }
  return plain;
}

function plainValue(value: ResourceValue): ResourceValue {
  if (isObjectLink(value)) return { objectId: value.objectId, instanceId: value.instanceId };
  return value;
}

// ---------------------------------------------------------------------------------------------------------
// Plain msg data -> value tree
// ---------------------------------------------------------------------------------------------------------

/**
 * Turns msg data into a value tree for a Write at `path`; types come from the model, each value goes
 * through `coerceValue`. Accepted shapes, by path level:
 * - resource instance `/3/0/7/1`: a value.
 * - single resource `/3303/0/5750`: a value.
 * - multiple resource `/3/0/7`: an array (instance ids 0, 1, ...) or an object / Map keyed by resource
 *   instance id (`{ "0": 3800, "3": 5000 }`).
 * - object instance `/3303/0`: an object / Map keyed by resource id or resource name (case-insensitive),
 *   e.g. `{ "Application Type": "fridge", "5750": ... }`, or the `{ byId, byName }` shape toPlain produces
 *   (byId is used when present). Undefined values are left out.
 * - object `/3303`: an object / Map keyed by instance id, each entry an instance as above.
 *
 * Throws ValueError for resources the model does not know (their type is unknown), unknown or ambiguous
 * names, and values that do not fit. Whether a resource is writable is not checked here.
 */
export function fromPlain(
  value: unknown,
  path: LwM2mPath,
  model: ObjectModelLookup,
  options: ModelOptions = {},
): LwM2mNode {
  switch (path.level) {
    case 0:
      throw new ValueError('cannot write to the root path /; give an object, instance or resource path');
    case 1:
      return objectFromPlain(value, path, model, options);
    case 2:
      return instanceFromPlain(value, path, model, options);
    case 3:
      return resourceFromPlain(value, path, model, options);
    default: {
      const definition = requireResource(path, model, options);
      if (!definition.multiple) {
        throw new ValueError(`${path} addresses an instance of ${resourceLabel(definition)}, which is single`);
      }
      return {
        kind: 'resourceInstance',
        id: path.resourceInstanceId!,
        type: definition.type,
        value: coerceValue(value, definition.type, path),
      };
    }
  }
}

function objectFromPlain(
  value: unknown,
  path: LwM2mPath,
  model: ObjectModelLookup,
  options: ModelOptions,
): LwM2mObject {
  const entries = plainEntries(value, path, 'an object keyed by instance id');
  const instances = new Map<number, LwM2mObjectInstance>();
  for (const [key, instanceValue] of entries) {
    const instanceId = parseIdKey(key);
    if (instanceId === undefined) throw new ValueError(`${path}: "${key}" is not an instance id (0..65535)`);
    instances.set(instanceId, instanceFromPlain(instanceValue, path.append(instanceId), model, options));
  }
  return { kind: 'object', id: path.objectId!, instances };
}

function instanceFromPlain(
  value: unknown,
  path: LwM2mPath,
  model: ObjectModelLookup,
  options: ModelOptions,
): LwM2mObjectInstance {
  let entries = plainEntries(value, path, 'an object keyed by resource id or name');
  // Accept toPlain's own shape so a read result can be edited and written back.
  const keys = entries.map(([key]) => key);
  if (keys.length > 0 && keys.every((key) => key === 'byId' || key === 'byName')) {
    const chosen = entries.find(([key]) => key === 'byId') ?? entries[0];
    entries = plainEntries(chosen[1], path, `an object keyed by resource ${chosen[0] === 'byId' ? 'id' : 'name'}`);
  }

  const definition = model.getObject(path.objectId!, options.version);
  const resources = new Map<number, LwM2mResource>();
  const keyOfId = new Map<number, string>();
  for (const [key, resourceValue] of entries) {
    if (resourceValue === undefined) continue;
    let resourceId = parseIdKey(key);
    if (resourceId === undefined) {
      if (definition === undefined) {
        throw new ValueError(
          `${path}: object ${path.objectId} is not in the object model, so "${key}" cannot be resolved`,
        );
      }
      let resource: ResourceDefinition | undefined;
      try {
        resource = findResourceByName(definition, key);
      } catch (err) {
        throw new ValueError(`${path}: ${(err as Error).message}`);
      }
      if (resource === undefined) {
        const known = Object.values(definition.resources)
          .map((candidate) => candidate.name)
          .join(', ');
        throw new ValueError(
          `${path}: object ${definition.id} (${definition.name}) has no resource named "${key}"; known: ${known}`,
        );
      }
      resourceId = resource.id;
    }
    const earlierKey = keyOfId.get(resourceId);
    if (earlierKey !== undefined) {
      throw new ValueError(`${path}: resource ${resourceId} is given twice (as "${earlierKey}" and "${key}")`);
    }
    keyOfId.set(resourceId, key);
    resources.set(resourceId, resourceFromPlain(resourceValue, path.append(resourceId), model, options));
  }
  return { kind: 'instance', id: path.instanceId!, resources };
}

function resourceFromPlain(
  value: unknown,
  path: LwM2mPath,
  model: ObjectModelLookup,
  options: ModelOptions,
): LwM2mResource {
  const definition = requireResource(path, model, options);
  if (!definition.multiple) {
    return {
      kind: 'resource',
      id: definition.id,
      type: definition.type,
      value: coerceValue(value, definition.type, path),
    };
  }
  let entries: [string, unknown][];
  if (Array.isArray(value)) {
    entries = value.map((item, index) => [String(index), item]);
  } else if (value instanceof Map || isPlainObject(value)) {
    entries = plainEntries(value, path, 'an array or an object keyed by resource instance id');
  } else {
    throw new ValueError(
      `${path} is ${resourceLabel(definition)}, a multiple resource: expects an array or an object keyed by ` +
        `resource instance id, got ${describe(value)}`,
    );
  }
  const instances = new Map<number, ResourceValue>();
  for (const [key, item] of entries) {
    const instanceId = parseIdKey(key);
    if (instanceId === undefined) throw new ValueError(`${path}: "${key}" is not a resource instance id (0..65535)`);
    instances.set(instanceId, coerceValue(item, definition.type, path.append(instanceId)));
  }
  return { kind: 'multipleResource', id: definition.id, type: definition.type, instances };
}

function requireResource(path: LwM2mPath, model: ObjectModelLookup, options: ModelOptions): ResourceDefinition {
  const definition = model.getResource(path.objectId!, path.resourceId!, options.version);
  if (definition !== undefined) return definition;
  const object = model.getObject(path.objectId!, options.version);
  throw new ValueError(
    object === undefined
      ? `${path}: object ${path.objectId} is not in the object model, so the value's type is unknown (load its DDF)`
      : `${path}: object ${object.id} (${object.name}) has no resource ${path.resourceId}`,
  );
}

function resourceLabel(definition: ResourceDefinition): string {
  return `"${definition.name}" (${definition.type})`;
}

/** Entries of a plain object or Map; anything else is an error naming what was expected. */
function plainEntries(value: unknown, path: LwM2mPath, expected: string): [string, unknown][] {
  if (value instanceof Map) return [...value.entries()].map(([key, item]) => [String(key), item]);
  if (isPlainObject(value)) return Object.entries(value);
  throw new ValueError(`${path} expects ${expected}, got ${describe(value)}`);
}

function parseIdKey(key: string): number | undefined {
  if (!/^\d{1,5}$/.test(key)) return undefined;
  const id = Number(key);
  return id <= 65535 ? id : undefined;
}

// ---------------------------------------------------------------------------------------------------------

function sortedValues<T extends { id: number }>(map: Map<number, T>): T[] {
  return [...map.values()].sort((a, b) => a.id - b.id);
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return false;
  const prototype = Object.getPrototypeOf(value);
  return prototype === Object.prototype || prototype === null;
}

function isObjectLink(value: unknown): value is ObjectLink {
  return isPlainObject(value) && typeof value.objectId === 'number' && typeof value.instanceId === 'number';
}

function isId(value: unknown): value is number {
  return typeof value === 'number' && Number.isInteger(value) && value >= 0 && value <= 65535;
}

/** A short, readable rendering of a bad input for error messages. */
function describe(input: unknown): string {
  if (input === undefined) return 'undefined';
  if (input === null) return 'null';
  if (typeof input === 'string') return JSON.stringify(input.length > 60 ? `${input.slice(0, 57)}...` : input);
  if (typeof input === 'bigint') return `${input}n`;
  if (typeof input === 'number' || typeof input === 'boolean') return String(input);
  if (Buffer.isBuffer(input)) return `a Buffer of ${input.length} bytes`;
  if (input instanceof Date) return Number.isNaN(input.getTime()) ? 'an invalid Date' : `Date ${input.toISOString()}`;
  if (Array.isArray(input)) return `an array of ${input.length} items`;
  if (input instanceof Map) return `a Map of ${input.size} entries`;
  if (typeof input === 'object') {
    let text: string;
    try {
      text = JSON.stringify(input, (_key, item: unknown) => (typeof item === 'bigint' ? `${item}n` : item));
    } catch {
      text = 'an object';
    }
    return text.length > 60 ? `${text.slice(0, 57)}...` : text;
  }
  return typeof input;
}
