/**
 * Between the value tree (LwM2mObject ... LwM2mResourceInstance) and flat leaves (one value per
 * resource or resource instance path), as the SenML and OMA JSON formats carry them.
 * Byte counts in this file's comments are garbage per operation, from `node build/bench/read-allocs.js --profile`.
 */
import { LwM2mPath } from '../model/path';
import type {
  LwM2mMultipleResource,
  LwM2mNode,
  LwM2mObject,
  LwM2mObjectInstance,
  LwM2mResource,
  ObjectModelLookup,
  ResourceType,
  ResourceValue,
} from '../model/types';
import { checkId, checkValue, fail } from './values';

/** One value at a resource (`ri` undefined) or resource instance path. */
export interface Leaf {
  o: number;
  i: number;
  r: number;
  ri: number | undefined;
  type: ResourceType;
  value: ResourceValue;
}

/**
 * True when two leaves for one path carry the same value of the same type. A device may name a
 * value twice (a composite answer to overlapping paths, a repeated record): the same value counts
 * once, a different one is an error (never a silent choice between them).
 */
export function sameLeafValue(a: Leaf, b: Leaf): boolean {
  return a.type === b.type && sameValue(a.value, b.value);
}

function sameValue(a: ResourceValue, b: ResourceValue): boolean {
  if (typeof a !== 'object' || typeof b !== 'object') return Object.is(a, b);
  if (Buffer.isBuffer(a)) return Buffer.isBuffer(b) && a.equals(b);
  if (a instanceof Date) return b instanceof Date && Object.is(a.getTime(), b.getTime());
  if (Buffer.isBuffer(b) || b instanceof Date) return false;
  return a.objectId === b.objectId && a.instanceId === b.instanceId;
}

export function leafName(leaf: Leaf): string {
  return leaf.ri === undefined ? `/${leaf.o}/${leaf.i}/${leaf.r}` : `/${leaf.o}/${leaf.i}/${leaf.r}/${leaf.ri}`;
}

export function leafPath(leaf: Leaf): LwM2mPath {
  return new LwM2mPath(leaf.o, leaf.i, leaf.r, leaf.ri);
}

const KIND_LEVEL: Record<LwM2mNode['kind'], number> = {
  object: 1,
  instance: 2,
  resource: 3,
  multipleResource: 3,
  resourceInstance: 4,
};

/** Throws ContentCodecError unless `node` is the node at `path` (kind matches the level, id the last id). */
export function checkNodeAtPath(node: LwM2mNode, path: LwM2mPath): void {
  if (node === null || typeof node !== 'object' || !(node.kind in KIND_LEVEL)) {
    fail(`cannot encode ${String(node)}: not an LwM2M node`);
  }
  const level = path.level;
  if (KIND_LEVEL[node.kind] !== level) {
    fail(`cannot encode a ${node.kind} node at path ${path} (level ${level})`);
  }
  const lastId =
    level === 1
      ? path.objectId
      : level === 2
        ? path.instanceId
        : level === 3
          ? path.resourceId
          : path.resourceInstanceId;
  if (node.id !== lastId) fail(`${node.kind} node id ${node.id} does not match path ${path}`);
}

/**
 * The type to encode a resource with: the model's when it knows the resource, else the node's.
 */
export function encodeType(
  model: ObjectModelLookup,
  o: number,
  r: number,
  nodeType: ResourceType,
  where: string,
): ResourceType {
  const def = model.getResource(o, r);
  const type = def ? def.type : nodeType;
  if (type === 'none') fail(`${where}: resource is executable (type none) and has no value to encode`);
  return type;
}

/** Flattens `node` (checked against `path`) into leaves, checking every value against its type. */
export function flattenNode(node: LwM2mNode, path: LwM2mPath, model: ObjectModelLookup, out: Leaf[]): void {
  checkNodeAtPath(node, path);
  const o = path.objectId as number;
  switch (node.kind) {
    case 'object':
      for (const [id, instance] of node.instances) {
        if (instance.id !== id) fail(`object ${o}: instance keyed ${id} has id ${instance.id}`);
        flattenInstance(o, instance, model, out);
      }
      return;
    case 'instance':
      flattenInstance(o, node, model, out);
      return;
    case 'resource':
    case 'multipleResource':
      flattenResource(o, path.instanceId as number, node, model, out);
      return;
    case 'resourceInstance': {
      const i = path.instanceId as number;
      const r = path.resourceId as number;
      const where = `/${o}/${i}/${r}/${node.id}`;
      const type = encodeType(model, o, r, node.type, where);
      if (model.getResource(o, r)?.multiple === false)
        fail(`${where}: the model defines /${o}/${i}/${r} as a single resource`);
      out.push({ o, i, r, ri: node.id, type, value: checkValue(type, node.value, where) });
      return;
    }
  }
}

function flattenInstance(o: number, instance: LwM2mObjectInstance, model: ObjectModelLookup, out: Leaf[]): void {
  if (instance === null || typeof instance !== 'object' || instance.kind !== 'instance') {
    fail(`object ${o}: expected an instance node`);
  }
  checkId(instance.id, `object ${o}`);
  for (const [id, resource] of instance.resources) {
    if (resource?.id !== id) fail(`/${o}/${instance.id}: resource keyed ${id} has id ${resource?.id}`);
    checkId(id, `/${o}/${instance.id}`);
    flattenResource(o, instance.id, resource, model, out);
  }
}

function flattenResource(o: number, i: number, resource: LwM2mResource, model: ObjectModelLookup, out: Leaf[]): void {
  const r = resource.id;
  const where = `/${o}/${i}/${r}`;
  const type = encodeType(model, o, r, resource.type, where);
  const def = model.getResource(o, r);
  if (resource.kind === 'resource') {
    if (def?.multiple) fail(`${where}: the model defines a multiple resource, got a single value`);
    out.push({ o, i, r, ri: undefined, type, value: checkValue(type, resource.value, where) });
  } else if (resource.kind === 'multipleResource') {
    if (def && !def.multiple) fail(`${where}: the model defines a single resource, got multiple instances`);
    for (const [ri, value] of resource.instances) {
      checkId(ri, where);
      const whereRi = `${where}/${ri}`;
      out.push({ o, i, r, ri, type, value: checkValue(type, value, whereRi) });
    }
  } else {
    fail(`${where}: expected a resource node, got ${(resource as { kind?: unknown }).kind}`);
  }
}

/**
 * Builds the node at `path` from leaves that must all lie below it. `where` prefixes messages.
 * An empty leaf list gives an empty object / instance / multiple resource, and an error for a
 * single resource or a resource instance.
 *
 * `containers` (LwM2M CBOR, which can name them) are the ids of empty objects, instances and
 * multiple resources: those at or below `path` are added to the node, those above it (an empty
 * instance when a resource of it was asked for) add nothing; others are outside the target.
 */
export function buildNode(
  path: LwM2mPath,
  leaves: readonly Leaf[],
  model: ObjectModelLookup,
  where: string,
  containers: readonly (readonly number[])[] = NO_CONTAINERS,
): LwM2mNode {
  const level = path.level;
  const o = path.objectId as number;
  for (const leaf of leaves) {
    if (
      leaf.o !== o ||
      (level >= 2 && leaf.i !== path.instanceId) ||
      (level >= 3 && leaf.r !== path.resourceId) ||
      (level === 4 && leaf.ri !== path.resourceInstanceId)
    ) {
      fail(`${where}: value for ${leafName(leaf)} is outside the target path ${path}`);
    }
  }
  let inner: (readonly number[])[] = NO_CONTAINERS as (readonly number[])[];
  if (containers.length > 0) {
    inner = [];
    const pathIds = path.ids;
    for (const ids of containers) {
      const common = Math.min(ids.length, level);
      for (let k = 0; k < common; k++) {
        if (ids[k] !== pathIds[k]) fail(`${where}: /${ids.join('/')} is outside the target path ${path}`);
      }
      if (ids.length >= level) inner.push(ids);
    }
  }
  switch (level) {
    case 0:
      return fail(`${where}: cannot decode a value tree for the root path`);
    case 1: {
      const object: LwM2mObject = { kind: 'object', id: o, instances: new Map() };
      for (const leaf of leaves) addLeaf(instanceOf(object, leaf.i), leaf, model, where);
      for (const ids of inner) {
        if (ids.length >= 2) {
          const instance = instanceOf(object, ids[1]);
          if (ids.length === 3) addEmptyMultiple(instance, o, ids[2], model, where);
        }
      }
      return object;
    }
    case 2: {
      const instance: LwM2mObjectInstance = { kind: 'instance', id: path.instanceId as number, resources: new Map() };
      for (const leaf of leaves) addLeaf(instance, leaf, model, where);
      for (const ids of inner) if (ids.length === 3) addEmptyMultiple(instance, o, ids[2], model, where);
      return instance;
    }
    case 3: {
      const r = path.resourceId as number;
      const def = model.getResource(o, r);
      if (leaves.length === 1 && leaves[0].ri === undefined && inner.length === 0) {
        // One value for a single resource (every Read of a resource): what addLeaf below would check and
        // make, without the holder instance and its Map (about 200 bytes a decode).
        const leaf = leaves[0];
        if (def?.multiple)
          fail(`${where}: ${leafName(leaf)} is a multiple resource; values must name resource instances`);
        return { kind: 'resource', id: r, type: leaf.type, value: leaf.value };
      }
      const holder: LwM2mObjectInstance = { kind: 'instance', id: path.instanceId as number, resources: new Map() };
      for (const leaf of leaves) addLeaf(holder, leaf, model, where);
      if (inner.length > 0) addEmptyMultiple(holder, o, r, model, where);
      const resource = holder.resources.get(r);
      if (resource) return resource;
      if (def?.multiple) return { kind: 'multipleResource', id: r, type: def.type, instances: new Map() };
      return fail(`${where}: no value for ${path}`);
    }
    default: {
      if (leaves.length !== 1) {
        return fail(`${where}: expected exactly one value for ${path}, got ${leaves.length}`);
      }
      const leaf = leaves[0];
      const def = model.getResource(o, leaf.r);
      if (def && !def.multiple)
        fail(`${where}: ${leafName(leaf)} names an instance of single resource /${o}/${leaf.i}/${leaf.r}`);
      return { kind: 'resourceInstance', id: leaf.ri as number, type: leaf.type, value: leaf.value };
    }
  }
}

const NO_CONTAINERS: readonly (readonly number[])[] = Object.freeze([]);

function instanceOf(object: LwM2mObject, id: number): LwM2mObjectInstance {
  let instance = object.instances.get(id);
  if (!instance) {
    instance = { kind: 'instance', id, resources: new Map() };
    object.instances.set(id, instance);
  }
  return instance;
}

/** An empty multiple resource /o/i/r (kept when the resource already has instances). */
function addEmptyMultiple(
  instance: LwM2mObjectInstance,
  o: number,
  r: number,
  model: ObjectModelLookup,
  where: string,
): void {
  const existing = instance.resources.get(r);
  const name = `/${o}/${instance.id}/${r}`;
  if (existing) {
    if (existing.kind !== 'multipleResource') fail(`${where}: ${name} has both a single value and resource instances`);
    return;
  }
  const def = model.getResource(o, r);
  if (def && !def.multiple) fail(`${where}: ${name} is a single resource; it cannot be an empty map of instances`);
  // without a model the type is unknown; opaque as in TLV
  instance.resources.set(r, { kind: 'multipleResource', id: r, type: def ? def.type : 'opaque', instances: new Map() });
}

function addLeaf(instance: LwM2mObjectInstance, leaf: Leaf, model: ObjectModelLookup, where: string): void {
  const existing = instance.resources.get(leaf.r);
  const def = model.getResource(leaf.o, leaf.r);
  if (leaf.ri === undefined) {
    if (def?.multiple) fail(`${where}: ${leafName(leaf)} is a multiple resource; values must name resource instances`);
    if (existing) {
      if (existing.kind === 'resource' && existing.type === leaf.type && sameValue(existing.value, leaf.value)) return;
      fail(`${where}: more than one value for ${leafName(leaf)}`);
    }
    instance.resources.set(leaf.r, { kind: 'resource', id: leaf.r, type: leaf.type, value: leaf.value });
    return;
  }
  if (def && !def.multiple)
    fail(`${where}: ${leafName(leaf)} names an instance of single resource /${leaf.o}/${leaf.i}/${leaf.r}`);
  if (existing === undefined) {
    const multiple: LwM2mMultipleResource = {
      kind: 'multipleResource',
      id: leaf.r,
      type: leaf.type,
      instances: new Map(),
    };
    multiple.instances.set(leaf.ri, leaf.value);
    instance.resources.set(leaf.r, multiple);
    return;
  }
  if (existing.kind !== 'multipleResource') {
    fail(`${where}: /${leaf.o}/${leaf.i}/${leaf.r} has both a single value and resource instances`);
  }
  const before = existing.instances.get(leaf.ri);
  if (before !== undefined) {
    if (existing.type === leaf.type && sameValue(before, leaf.value)) return;
    fail(`${where}: more than one value for ${leafName(leaf)}`);
  }
  existing.instances.set(leaf.ri, leaf.value);
}

/** True when `leaf` lies at or below `path`. */
export function containsLeaf(path: LwM2mPath, leaf: Leaf): boolean {
  switch (path.level) {
    case 0:
      return true;
    case 1:
      return path.objectId === leaf.o;
    case 2:
      return path.objectId === leaf.o && path.instanceId === leaf.i;
    case 3:
      return path.objectId === leaf.o && path.instanceId === leaf.i && path.resourceId === leaf.r;
    default:
      return (
        path.objectId === leaf.o &&
        path.instanceId === leaf.i &&
        path.resourceId === leaf.r &&
        path.resourceInstanceId === leaf.ri
      );
  }
}

/** 1 when `ids` lies at or below `path`, -1 when it is above it (a strict prefix), 0 when unrelated. */
function relateIds(path: LwM2mPath, ids: readonly number[]): 1 | -1 | 0 {
  const pathIds = path.ids;
  const common = Math.min(ids.length, pathIds.length);
  for (let k = 0; k < common; k++) if (ids[k] !== pathIds[k]) return 0;
  return ids.length >= pathIds.length ? 1 : -1;
}

/**
 * Composite decoding: path string -> node. Without `paths`, one node per leaf path (and per empty
 * container); with them, the node at each requested path built from the leaves below it (paths
 * without values are left out). Values outside every requested path are an error.
 */
export function leavesToNodes(
  leaves: readonly Leaf[],
  model: ObjectModelLookup,
  what: string,
  paths?: readonly LwM2mPath[],
  containers: readonly (readonly number[])[] = NO_CONTAINERS,
): Map<string, LwM2mNode> {
  const out = new Map<string, LwM2mNode>();
  if (!paths) {
    const seen = new Map<string, Leaf>();
    for (const leaf of leaves) {
      const name = leafName(leaf);
      const before = seen.get(name);
      if (before !== undefined) {
        if (sameLeafValue(before, leaf)) continue;
        fail(`${what}: more than one value for ${name}`);
      }
      seen.set(name, leaf);
      out.set(name, buildNode(leafPath(leaf), [leaf], model, what));
    }
    for (const ids of containers) {
      const path = new LwM2mPath(ids[0], ids[1], ids[2]);
      const name = path.toString();
      if (out.has(name)) fail(`${what}: more than one value for ${name}`);
      out.set(name, buildNode(path, [], model, what, [ids]));
    }
    return out;
  }
  const perPath: Leaf[][] = paths.map(() => []);
  for (const leaf of leaves) {
    let matched = false;
    for (let i = 0; i < paths.length; i++) {
      if (containsLeaf(paths[i], leaf)) {
        perPath[i].push(leaf);
        matched = true;
      }
    }
    if (!matched) fail(`${what}: value for ${leafName(leaf)} is outside the requested paths`);
  }
  const containersPerPath: (readonly number[])[][] = paths.map(() => []);
  for (const ids of containers) {
    let related = false;
    for (let i = 0; i < paths.length; i++) {
      const relation = relateIds(paths[i], ids);
      if (relation === 1) containersPerPath[i].push(ids);
      if (relation !== 0) related = true;
    }
    if (!related) fail(`${what}: /${ids.join('/')} is outside the requested paths`);
  }
  for (let i = 0; i < paths.length; i++) {
    if (perPath[i].length === 0 && containersPerPath[i].length === 0) continue;
    out.set(paths[i].toString(), buildNode(paths[i], perPath[i], model, what, containersPerPath[i]));
  }
  return out;
}
