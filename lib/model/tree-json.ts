/**
 * JSON views of the object model and of values read from a device, for user interfaces (the Node-RED
 * editor's device browser): plain data with no Buffer, Date, bigint or Map, so it survives JSON.stringify.
 *
 * A value is shown as text in the form `coerceValue` accepts back (`hex:0a1b` for opaque, an ISO date for
 * time, `3:0` for an object link, digits for a 64-bit integer): what the user sees can be edited and written.
 */
import { LwM2mPath } from './path';
import type { LwM2mNode, ObjectModelLookup, Operations, ResourceType, ResourceValue } from './types';

/** What a device announced for one object (the shape of a registration's `objects` entries). */
export interface AnnouncedObject {
  version?: string;
  readonly instances: readonly number[];
}

export interface ResourceTreeJson {
  id: number;
  name: string;
  type: ResourceType;
  operations: Operations;
  multiple: boolean;
  mandatory: boolean;
  units?: string;
  range?: string;
  description?: string;
}

export interface ObjectTreeJson {
  id: number;
  /** The model's name, or `Object <id>` for an object the model does not know. */
  name: string;
  /** The version the device announced, else the model's. */
  version?: string;
  /** False for an object the model does not know (no names, no types). */
  known: boolean;
  multiple: boolean;
  instances: number[];
  resources: ResourceTreeJson[];
}

/** One value read from a device, at a resource or resource instance path. */
export interface ValueJson {
  path: string;
  type: ResourceType;
  /** The value as editable text (see the file comment). */
  text: string;
  /** The value as JSON when it has a natural JSON form (string, number, boolean), else undefined. */
  value?: string | number | boolean;
}

/** Descriptions are trimmed to this many characters: a tree of 30 objects should stay a few tens of KB. */
const DESCRIPTION_LIMIT = 240;

/**
 * The objects a device announced, in id order, each with its name, instances and resource definitions from
 * the model (in the version the device announced when the model has it).
 */
export function objectTreeJson(
  objects: Readonly<Record<number, AnnouncedObject>>,
  model: ObjectModelLookup,
): ObjectTreeJson[] {
  return Object.keys(objects)
    .map(Number)
    .sort((a, b) => a - b)
    .map((objectId) => {
      const announced = objects[objectId];
      const definition = model.getObject(objectId, announced.version);
      const resources: ResourceTreeJson[] = definition
        ? Object.values(definition.resources)
            .sort((a, b) => a.id - b.id)
            .map((resource) => ({
              id: resource.id,
              name: resource.name,
              type: resource.type,
              operations: resource.operations,
              multiple: resource.multiple,
              mandatory: resource.mandatory,
              ...(resource.units ? { units: resource.units } : {}),
              ...(resource.range ? { range: resource.range } : {}),
              ...(resource.description ? { description: shorten(resource.description) } : {}),
            }))
        : [];
      const version = announced.version ?? definition?.version;
      return {
        id: objectId,
        name: definition?.name ?? `Object ${objectId}`,
        ...(version ? { version } : {}),
        known: definition !== undefined,
        multiple: definition?.multiple ?? true,
        instances: [...announced.instances].sort((a, b) => a - b),
        resources,
      };
    });
}

/**
 * Every value in a node read at `path`, keyed by resource (or resource instance) path: reading /3/0 gives
 * `/3/0/0`, `/3/0/1`, ..., `/3/0/7/0`, `/3/0/7/1`. A multiple resource also gets an entry at its own path
 * listing its instances, so a tree row for `/3/0/7` can show them at once.
 */
export function valuesByPath(node: LwM2mNode, path: LwM2mPath | string): Record<string, ValueJson> {
  const at = typeof path === 'string' ? LwM2mPath.parse(path) : path;
  const values: Record<string, ValueJson> = {};
  const put = (where: string, type: ResourceType, value: ResourceValue) => {
    values[where] = { path: where, type, ...displayValue(value) };
  };
  const resourceEntries = (base: string, resource: LwM2mNode) => {
    if (resource.kind === 'resource') put(`${base}/${resource.id}`, resource.type, resource.value);
    else if (resource.kind === 'multipleResource') {
      const ids = [...resource.instances.keys()].sort((a, b) => a - b);
      const texts: string[] = [];
      for (const id of ids) {
        const value = resource.instances.get(id)!;
        put(`${base}/${resource.id}/${id}`, resource.type, value);
        texts.push(`${id}: ${displayValue(value).text}`);
      }
      values[`${base}/${resource.id}`] = {
        path: `${base}/${resource.id}`,
        type: resource.type,
        text: texts.join(', '),
      };
    }
  };
  const instanceEntries = (base: string, node: LwM2mNode) => {
    if (node.kind !== 'instance') return;
    const ids = [...node.resources.keys()].sort((a, b) => a - b);
    for (const id of ids) resourceEntries(`${base}/${node.id}`, node.resources.get(id)!);
  };
  switch (node.kind) {
    case 'object':
      for (const instance of node.instances.values()) instanceEntries(`/${node.id}`, instance);
      break;
    case 'instance':
      instanceEntries(`/${at.objectId}`, node);
      break;
    case 'resource':
    case 'multipleResource':
      resourceEntries(`/${at.objectId}/${at.instanceId}`, node);
      break;
    case 'resourceInstance':
      put(at.toString(), node.type, node.value);
      break;
  }
  return values;
}

/** A resource value as editable text, and as JSON when it has a natural JSON form. */
export function displayValue(value: ResourceValue): { text: string; value?: string | number | boolean } {
  if (typeof value === 'string') return { text: value, value };
  if (typeof value === 'number' || typeof value === 'boolean') return { text: String(value), value };
  if (typeof value === 'bigint') return { text: value.toString() };
  if (Buffer.isBuffer(value)) return { text: `hex:${value.toString('hex')}` };
  if (value instanceof Date) return { text: Number.isNaN(value.getTime()) ? 'Invalid Date' : value.toISOString() };
  return { text: `${value.objectId}:${value.instanceId}` };
}

/**
 * Any msg-shaped value (model/values toPlain: Buffers, Dates, bigints, nested records) as JSON-safe data, for
 * logs of notifications and composite values.
 */
export function jsonSafe(value: unknown, depth = 0): unknown {
  if (value === null || value === undefined) return null;
  if (typeof value === 'string' || typeof value === 'number' || typeof value === 'boolean') return value;
  if (typeof value === 'bigint' || Buffer.isBuffer(value) || value instanceof Date)
    return displayValue(value as ResourceValue).text;
  if (depth > 8) return '…';
  if (Array.isArray(value)) return value.map((item) => jsonSafe(item, depth + 1));
  if (value instanceof Map) return jsonSafe(Object.fromEntries(value), depth);
  if (typeof value === 'object') {
    const plain: Record<string, unknown> = {};
    for (const [key, item] of Object.entries(value)) plain[key] = jsonSafe(item, depth + 1);
    return plain;
  }
  return String(value);
}

function shorten(text: string): string {
  const flat = text.replace(/\s+/g, ' ').trim();
  return flat.length > DESCRIPTION_LIMIT ? `${flat.slice(0, DESCRIPTION_LIMIT - 1)}…` : flat;
}
