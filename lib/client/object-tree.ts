/**
 * The device's objects: object -> instance -> resource slots holding values (or handlers that compute
 * them), typed by the same ObjectDefinitions the server uses. Converts to and from the value tree of
 * lib/model so lib/content encodes and decodes it.
 */
import { LwM2mPath } from '../model/path';
import { coerceValue } from '../model/values';
import type {
  LwM2mNode,
  LwM2mObject,
  LwM2mObjectInstance,
  LwM2mResource,
  ObjectDefinition,
  ObjectLink,
  ResourceDefinition,
  ResourceType,
  ResourceValue,
} from '../model/types';
import { ClientError } from './errors';

/** A single resource's value, or a multiple resource's instances. */
export type ResourceContent = ResourceValue | Map<number, ResourceValue>;

export interface WriteInfo {
  /** The path written (resource, or resource instance for a 1.1+ write of one instance). */
  path: string;
  /** 'replace' (PUT) or 'update' (POST partial update). */
  mode: 'replace' | 'update';
}

export interface ExecuteInfo {
  path: string;
}

/** How a resource gets its value and reacts to the server. Every member is optional. */
export interface ResourceOptions {
  /** Initial value; for a multiple resource an array, a `{ id: value }` object or a Map. */
  value?: unknown;
  /** Computes the value on every read (a live reading); the stored value is then ignored. */
  read?: () => unknown;
  /**
   * Called when the server writes this resource, with the checked value. Throw a ClientError to refuse
   * (its code is the answer); return false to keep the old value (the handler stored it elsewhere).
   */
  write?: (value: ResourceContent, info: WriteInfo) => void | boolean | Promise<void | boolean>;
  /** Called when the server executes this resource; `args` is the Execute payload as text. */
  execute?: (args: string, info: ExecuteInfo) => void | Promise<void>;
}

/** Resources of an instance: id -> a value, or ResourceOptions (see `resource()`). */
export type InstanceSpec = Record<number, unknown>;

/** Marks (and types) a resource given by handlers: `{ 5700: resource({ read: () => sensor.value }) }`. */
export function resource(options: ResourceOptions): ResourceOptions {
  return options;
}

const OPTION_KEYS = new Set(['value', 'read', 'write', 'execute']);

/** One empty Buffer for every empty opaque value (a fleet has thousands of them). */
export const EMPTY_BUFFER = Buffer.alloc(0);

/** True for a plain `{ value?, read?, write?, execute? }` object (not a value such as an ObjectLink). */
export function isResourceOptions(input: unknown): input is ResourceOptions {
  if (typeof input !== 'object' || input === null) return false;
  const proto = Object.getPrototypeOf(input);
  if (proto !== Object.prototype && proto !== null) return false;
  const keys = Object.keys(input);
  return keys.length > 0 && keys.every((key) => OPTION_KEYS.has(key));
}

export class ResourceSlot {
  value: ResourceValue | undefined;
  instances: Map<number, ResourceValue> | undefined;
  read?: ResourceOptions['read'];
  write?: ResourceOptions['write'];
  execute?: ResourceOptions['execute'];

  constructor(readonly def: ResourceDefinition) {
    if (def.multiple) this.instances = new Map();
  }

  get id(): number {
    return this.def.id;
  }
  get readable(): boolean {
    return this.def.operations === 'R' || this.def.operations === 'RW';
  }
  get writable(): boolean {
    return this.def.operations === 'W' || this.def.operations === 'RW';
  }
  get executable(): boolean {
    return this.def.operations === 'E';
  }

  /** The current content (calls `read` when set). */
  content(path: LwM2mPath): ResourceContent | undefined {
    if (this.read !== undefined) return coerceContent(this.def, this.read(), path);
    return this.def.multiple ? this.instances : this.value;
  }

  /** The resource as a value-tree node; undefined when it has no value (executable, never set). */
  node(path: LwM2mPath): LwM2mResource | undefined {
    if (this.def.type === 'none') return undefined;
    const content = this.content(path);
    if (content === undefined) return undefined;
    if (content instanceof Map) {
      return { kind: 'multipleResource', id: this.def.id, type: this.def.type, instances: new Map(content) };
    }
    return { kind: 'resource', id: this.def.id, type: this.def.type, value: content };
  }

  /** Stores content (already coerced). Returns true when it differs from what was there. */
  store(content: ResourceContent): boolean {
    if (content instanceof Map) {
      const before = this.instances;
      this.instances = new Map(content);
      return before === undefined || !sameInstances(before, content);
    }
    const before = this.value;
    this.value = content;
    return before === undefined || !sameValue(before, content);
  }
}

export class ClientInstance {
  readonly resources = new Map<number, ResourceSlot>();
  constructor(
    readonly objectId: number,
    readonly id: number,
  ) {}

  get path(): LwM2mPath {
    return new LwM2mPath(this.objectId, this.id);
  }

  /** Readable resources with a value, as an instance node. */
  node(): LwM2mObjectInstance {
    const resources = new Map<number, LwM2mResource>();
    const base = this.path;
    for (const slot of sortedSlots(this)) {
      if (!slot.readable) continue;
      const node = slot.node(base.append(slot.id));
      if (node !== undefined) resources.set(slot.id, node);
    }
    return { kind: 'instance', id: this.id, resources };
  }
}

export class ClientObject {
  readonly instances = new Map<number, ClientInstance>();
  constructor(
    readonly definition: ObjectDefinition,
    /** The object version announced at registration (`ver=`), undefined to announce none. */
    readonly announcedVersion: string | undefined,
  ) {}

  get id(): number {
    return this.definition.id;
  }

  node(): LwM2mObject {
    const instances = new Map<number, LwM2mObjectInstance>();
    for (const id of [...this.instances.keys()].sort((a, b) => a - b))
      instances.set(id, this.instances.get(id)!.node());
    return { kind: 'object', id: this.id, instances };
  }

  /** The lowest instance id not in use. */
  freeInstanceId(): number {
    let id = 0;
    while (this.instances.has(id)) id++;
    if (id > 65534) throw new ClientError('5.00', `object ${this.id} has no free instance id`);
    return id;
  }
}

export function sortedSlots(instance: ClientInstance): ResourceSlot[] {
  return [...instance.resources.values()].sort((a, b) => a.id - b.id);
}

/** Converts user input to a resource's content: one coerced value, or a Map for a multiple resource. */
export function coerceContent(def: ResourceDefinition, input: unknown, path: LwM2mPath | string): ResourceContent {
  if (!def.multiple) return coerceValue(input, def.type, path);
  const out = new Map<number, ResourceValue>();
  let entries: [unknown, unknown][];
  if (input instanceof Map) entries = [...input.entries()];
  else if (Array.isArray(input)) entries = input.map((value, index) => [index, value]);
  else if (typeof input === 'object' && input !== null && !Buffer.isBuffer(input) && !(input instanceof Date)) {
    entries = Object.entries(input);
  } else entries = [[0, input]];
  for (const [key, value] of entries) {
    const id = Number(key);
    if (!Number.isInteger(id) || id < 0 || id > 65535) {
      throw new ClientError('4.00', `${path}: "${String(key)}" is not a resource instance id`);
    }
    out.set(id, coerceValue(value, def.type, `${path}/${id}`));
  }
  return out;
}

/** A neutral value of a type, for mandatory resources nobody gave a value. */
export function defaultValue(type: ResourceType): ResourceValue | undefined {
  switch (type) {
    case 'string':
    case 'corelnk':
      return '';
    case 'integer':
    case 'unsigned':
    case 'float':
      return 0;
    case 'boolean':
      return false;
    case 'opaque':
      return EMPTY_BUFFER;
    case 'time':
      return new Date(Math.floor(Date.now() / 1000) * 1000);
    case 'objlnk':
      return { objectId: 65535, instanceId: 65535 };
    default:
      return undefined;
  }
}

export function sameValue(a: ResourceValue, b: ResourceValue): boolean {
  if (a === b) return true;
  if (Buffer.isBuffer(a) && Buffer.isBuffer(b)) return a.equals(b);
  if (a instanceof Date && b instanceof Date) return a.getTime() === b.getTime();
  if (typeof a === 'object' && typeof b === 'object' && !Buffer.isBuffer(a) && !Buffer.isBuffer(b)) {
    const la = a as ObjectLink;
    const lb = b as ObjectLink;
    return la.objectId === lb.objectId && la.instanceId === lb.instanceId;
  }
  return false;
}

function sameInstances(a: Map<number, ResourceValue>, b: Map<number, ResourceValue>): boolean {
  if (a.size !== b.size) return false;
  for (const [id, value] of a) {
    const other = b.get(id);
    if (other === undefined || !sameValue(value, other)) return false;
  }
  return true;
}

/** A number for gt/lt/st checks, or undefined when the value is not numeric. */
export function numericValue(node: LwM2mNode | undefined): number | undefined {
  if (node === undefined || (node.kind !== 'resource' && node.kind !== 'resourceInstance')) return undefined;
  const value = node.value;
  if (typeof value === 'number') return value;
  if (typeof value === 'bigint') return Number(value);
  if (typeof value === 'boolean') return value ? 1 : 0;
  return undefined;
}

/** The content a write stores: one value, or the resource instances (merged with the old ones for an update). */
export function contentOf(
  slot: ResourceSlot,
  resource: LwM2mResource,
  path: LwM2mPath,
  merge: boolean,
): ResourceContent {
  if (resource.kind === 'multipleResource') {
    if (!slot.def.multiple) throw new ClientError('4.00', `${path} is a single resource`);
    return merge ? new Map([...(slot.instances ?? []), ...resource.instances]) : resource.instances;
  }
  if (slot.def.multiple) throw new ClientError('4.00', `${path} is a multiple resource`);
  return resource.value;
}
