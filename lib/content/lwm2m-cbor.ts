/**
 * LwM2M CBOR (content format 11544, application/vnd.oma.lwm2m+cbor), new in LwM2M 1.2 (Core,
 * Data Formats): one CBOR map whose keys are path components, nested down to the values.
 *
 *   {3: {0: {0: "Open Mobile Alliance", 7: {0: 3800, 1: 5000}}}}
 *   {[3, 0]: {0: "Open Mobile Alliance", 7: {0: 3800, 1: 5000}}}    (the same, prefix as an array)
 *   {[3, 0, 9]: 100, [1, 0, 1]: 86400}                              (composite)
 *
 * Keys are unsigned integers or non-empty arrays of them (several path levels at once); paths are
 * absolute (the top map starts at the object id). The same path may be split over several keys
 * ({[3, 0]: {1: "a"}, [3, 0, 2]: "b"}); a leaf given twice is an error. An empty map names an empty
 * object, instance or multiple resource. Values: integer/unsigned as CBOR integers, float as a
 * CBOR float (integers, decimal fractions and bigfloats accepted on input), boolean, string and
 * corelnk as text, opaque as a byte string, objlnk as text "3:0", time as tag 1 with integer
 * seconds (untagged integers and tag 0 text dates accepted on input). `null` is only allowed at
 * resource instance paths of a Write-Composite, where it deletes the instance.
 *
 * Encoding writes definite-length maps with ids in ascending order; the chain of single-entry maps
 * from the top becomes one array key ({[3, 0, 9]: 100}), maps below stay nested.
 */
import { LwM2mPath } from '../model/path';
import type { LwM2mNode, ObjectLink, ObjectModelLookup, ResourceType, ResourceValue } from '../model/types';
import { ContentFormat, type NodeCodec, type TimestampedNode } from './types';
import { buildNode, flattenNode, leavesToNodes, type Leaf } from './tree';
import { cborEncoder, cborHead as head, cborNumber } from './senml-cbor';
import { CborMap, readCbor } from './cbor-reader';
import { encodeFloat, inferCborType, valueFromCbor } from './cbor';
import { checkDeletions, deletionPath, type PatchContent } from './senml';
import { describe, fail, formatObjectLink, secondsFromDate, toBuffer } from './values';

const WHAT = 'LwM2M CBOR';

/** What a payload holds: typed leaves, empty containers and (Write-Composite only) deletions. */
export interface Lwm2mCborContent {
  leaves: Leaf[];
  /** Ids (1 to 3) of empty objects, instances and multiple resources. */
  containers: number[][];
  /** Resource instances a null value deletes (only when parsed with `allowNull`). */
  deletions: LwM2mPath[];
}

interface ParseContext {
  model: ObjectModelLookup;
  allowNull: boolean;
  content: Lwm2mCborContent;
}

/** Parses an LwM2M CBOR payload (an empty payload is an empty map). */
export function parseLwm2mCbor(bytes: Buffer, model: ObjectModelLookup, allowNull = false): Lwm2mCborContent {
  const content: Lwm2mCborContent = { leaves: [], containers: [], deletions: [] };
  if (bytes.length === 0) return content;
  const document = readCbor(bytes, WHAT);
  if (!(document instanceof CborMap)) fail(`${WHAT}: payload must be a map, got ${describe(document)}`);
  walk(document, [], { model, allowNull, content });
  if (content.containers.length > 0) content.containers = keptContainers(content);
  return content;
}

/**
 * Walks the map entries in payload order. A key given again (Anjay opens an object's map once more
 * when the paths of a composite answer are not adjacent) simply adds its leaves: the leaves are
 * merged into one tree later, where a value given twice is checked (tree.ts). Depth is bounded:
 * every map level adds at least one id and there are at most four.
 */
function walk(map: CborMap, prefix: readonly number[], context: ParseContext): void {
  const { keys, values } = map;
  if (keys.length === 0) {
    if (prefix.length > 0) context.content.containers.push(prefix.slice());
    return;
  }
  for (let k = 0; k < keys.length; k++) {
    const ids = pathKey(keys[k], prefix);
    const value = values[k];
    if (value instanceof CborMap) {
      if (ids.length === 4) fail(`${WHAT}: /${ids.join('/')}: a resource instance holds a value, not a map`);
      walk(value, ids, context);
    } else {
      addValue(ids, value, context);
    }
  }
}

/**
 * The empty containers that stay empty once repeated keys are merged: one entry per path, and none
 * that has values or other containers below it ({1024: {}, 1024: {5: {0: "x"}}} is instance 5 only).
 */
function keptContainers(content: Lwm2mCborContent): number[][] {
  const filled = new Set<string>();
  for (const leaf of content.leaves) {
    filled.add(`${leaf.o}`);
    filled.add(`${leaf.o}/${leaf.i}`);
    // a single value next to an empty map of instances stays a contradiction (buildNode refuses it)
    if (leaf.ri !== undefined) filled.add(`${leaf.o}/${leaf.i}/${leaf.r}`);
  }
  for (const ids of content.containers) {
    for (let length = 1; length < ids.length; length++) filled.add(ids.slice(0, length).join('/'));
  }
  const kept: number[][] = [];
  const seen = new Set<string>();
  for (const ids of content.containers) {
    const name = ids.join('/');
    if (filled.has(name) || seen.has(name)) continue;
    seen.add(name);
    kept.push(ids);
  }
  return kept;
}

function pathKey(key: unknown, prefix: readonly number[]): number[] {
  const ids = prefix.slice();
  if (Array.isArray(key)) {
    if (key.length === 0) fail(`${WHAT}: ${where(prefix)}: empty array as a path key`);
    for (const id of key) ids.push(pathId(id, prefix));
  } else {
    ids.push(pathId(key, prefix));
  }
  if (ids.length > 4) fail(`${WHAT}: /${ids.slice(0, 5).join('/')}...: path is deeper than a resource instance`);
  return ids;
}

function pathId(id: unknown, prefix: readonly number[]): number {
  if (typeof id === 'number' && Number.isInteger(id) && id >= 0 && id <= 65535) return id;
  if (typeof id === 'bigint' && id >= 0n && id <= 65535n) return Number(id);
  return fail(
    `${WHAT}: ${where(prefix)}: path key must be an unsigned integer up to 65535 or an array of them, got ${describe(id)}`,
  );
}

function where(ids: readonly number[]): string {
  return ids.length === 0 ? 'top map' : `/${ids.join('/')}`;
}

function addValue(ids: number[], item: unknown, context: ParseContext): void {
  const at = `${WHAT}: /${ids.join('/')}`;
  if (ids.length < 3) fail(`${at}: a value needs a resource or resource instance path, got ${describe(item)}`);
  const o = ids[0];
  const r = ids[2];
  const def = context.model.getResource(o, r);
  if (item === null) {
    if (!context.allowNull)
      fail(`${at}: null is only allowed in a Write-Composite, where it deletes a resource instance`);
    context.content.deletions.push(deletionPath(ids, def, at));
    return;
  }
  const type = def ? def.type : inferCborType(item);
  if (type === undefined) fail(`${at}: ${describe(item)} is not a resource value`);
  context.content.leaves.push({ o, i: ids[1], r, ri: ids[3], type, value: valueFromCbor(type, item, at) });
}

/** Decodes the node at `path` (all values must lie below it). */
export function decodeLwm2mCbor(bytes: Buffer, path: LwM2mPath, model: ObjectModelLookup): LwM2mNode {
  const { leaves, containers } = parseLwm2mCbor(bytes, model);
  return buildNode(path, leaves, model, WHAT, containers);
}

/** Composite decoding (Read-Composite response, Send), as decodeNodes in index.ts. */
export function decodeLwm2mCborNodes(
  bytes: Buffer,
  model: ObjectModelLookup,
  paths?: readonly LwM2mPath[],
): Map<string, LwM2mNode> {
  const { leaves, containers } = parseLwm2mCbor(bytes, model);
  return leavesToNodes(leaves, model, WHAT, paths, containers);
}

/** LwM2M CBOR has no time series: one untimed entry (at `basePath`, or per value path). */
export function decodeLwm2mCborTimestamped(
  bytes: Buffer,
  model: ObjectModelLookup,
  basePath?: LwM2mPath,
): TimestampedNode[] {
  if (basePath) return [{ path: basePath, node: decodeLwm2mCbor(bytes, basePath, model) }];
  const out: TimestampedNode[] = [];
  for (const [name, node] of decodeLwm2mCborNodes(bytes, model)) out.push({ path: LwM2mPath.parse(name), node });
  return out;
}

/** A Write-Composite: written nodes (one per value path) and resource instances deleted with null. */
export function decodeLwm2mCborPatch(bytes: Buffer, model: ObjectModelLookup): PatchContent {
  const { leaves, containers, deletions } = parseLwm2mCbor(bytes, model, true);
  const updates = leavesToNodes(leaves, model, WHAT, undefined, containers);
  return { updates, deletions: checkDeletions(deletions, WHAT, updates) };
}

// ---------------------------------------------------------------------------------------------
// Encoding

/** A map level of the tree being encoded; leaves are encoded values. */
type Tree = Map<number, Tree | Buffer>;

const NULL = Buffer.from([0xf6]);

/** One CBOR data item of a checked value; time is tag 1 with integer seconds. */
function encodeValue(type: ResourceType, value: ResourceValue): Buffer {
  switch (type) {
    case 'integer':
    case 'unsigned':
      return cborEncoder.encode(cborNumber(value as number | bigint));
    case 'float':
      return encodeFloat(value as number);
    case 'time':
      return Buffer.concat([Buffer.from([0xc1]), cborEncoder.encode(cborNumber(secondsFromDate(value as Date)))]);
    case 'objlnk':
      return cborEncoder.encode(formatObjectLink(value as ObjectLink));
    case 'opaque':
      return cborEncoder.encode(toBuffer(value as Uint8Array));
    default:
      return cborEncoder.encode(value);
  }
}

function nameOf(ids: readonly number[], end: number): string {
  return '/' + ids.slice(0, end).join('/');
}

/** Puts an encoded value (or, with `value` undefined, an empty map) at `ids`. */
function insert(root: Tree, ids: readonly number[], value: Buffer | undefined): void {
  let map = root;
  const last = ids.length - 1;
  for (let k = 0; k < last; k++) {
    const existing = map.get(ids[k]);
    if (existing === undefined) {
      const child: Tree = new Map();
      map.set(ids[k], child);
      map = child;
    } else if (Buffer.isBuffer(existing)) {
      return fail(`${WHAT}: ${nameOf(ids, k + 1)} has both a value and values below it`);
    } else {
      map = existing;
    }
  }
  const existing = map.get(ids[last]);
  if (value === undefined) {
    if (existing === undefined) map.set(ids[last], new Map());
    else if (Buffer.isBuffer(existing))
      fail(`${WHAT}: ${nameOf(ids, ids.length)} has both a value and resource instances`);
    return;
  }
  if (existing !== undefined) {
    fail(
      Buffer.isBuffer(existing)
        ? `${WHAT}: more than one value for ${nameOf(ids, ids.length)}`
        : `${WHAT}: ${nameOf(ids, ids.length)} has both a value and values below it`,
    );
  }
  map.set(ids[last], value);
}

/** Empty objects, instances and multiple resources of a node already checked by flattenNode. */
function collectContainers(node: LwM2mNode, path: LwM2mPath, out: number[][]): void {
  const o = path.objectId as number;
  switch (node.kind) {
    case 'object':
      if (node.instances.size === 0) out.push([o]);
      for (const instance of node.instances.values()) instanceContainers(o, instance.id, instance.resources, out);
      return;
    case 'instance':
      instanceContainers(o, node.id, node.resources, out);
      return;
    case 'multipleResource':
      if (node.instances.size === 0) out.push([o, path.instanceId as number, node.id]);
      return;
    default:
      return;
  }
}

function instanceContainers(o: number, i: number, resources: ReadonlyMap<number, LwM2mNode>, out: number[][]): void {
  if (resources.size === 0) out.push([o, i]);
  for (const resource of resources.values()) {
    if (resource.kind === 'multipleResource' && resource.instances.size === 0) out.push([o, i, resource.id]);
  }
}

function addNode(root: Tree, node: LwM2mNode, path: LwM2mPath, model: ObjectModelLookup): void {
  const leaves: Leaf[] = [];
  flattenNode(node, path, model, leaves);
  for (const leaf of leaves) {
    const ids = leaf.ri === undefined ? [leaf.o, leaf.i, leaf.r] : [leaf.o, leaf.i, leaf.r, leaf.ri];
    insert(root, ids, encodeValue(leaf.type, leaf.value));
  }
  const containers: number[][] = [];
  collectContainers(node, path, containers);
  for (const ids of containers) insert(root, ids, undefined);
}

function pathOf(text: string): LwM2mPath {
  try {
    return LwM2mPath.parse(text);
  } catch (err) {
    return fail(`cannot encode node at ${JSON.stringify(text)}: ${(err as Error).message}`);
  }
}

function sortedKeys(map: Tree): number[] {
  return Array.from(map.keys()).sort((a, b) => a - b);
}

function writeMap(map: Tree, out: Buffer[]): void {
  out.push(head(5, map.size));
  for (const id of sortedKeys(map)) {
    out.push(head(0, id));
    writeItem(map.get(id) as Tree | Buffer, out);
  }
}

function writeItem(item: Tree | Buffer, out: Buffer[]): void {
  if (Buffer.isBuffer(item)) out.push(item);
  else writeMap(item, out);
}

/** The top map: each chain of single-entry maps below a top key is folded into one array key. */
function serialize(root: Tree): Buffer {
  const out: Buffer[] = [head(5, root.size)];
  for (const first of sortedKeys(root)) {
    const ids = [first];
    let item = root.get(first) as Tree | Buffer;
    while (!Buffer.isBuffer(item) && item.size === 1 && ids.length < 4) {
      const [[id, child]] = item;
      ids.push(id);
      item = child;
    }
    if (ids.length === 1) {
      out.push(head(0, first));
    } else {
      out.push(head(4, ids.length));
      for (const id of ids) out.push(head(0, id));
    }
    writeItem(item, out);
  }
  return Buffer.concat(out);
}

/** Encodes `node`, the node at `path`. */
export function encodeLwm2mCbor(node: LwM2mNode, path: LwM2mPath, model: ObjectModelLookup): Buffer {
  const root: Tree = new Map();
  addNode(root, node, path, model);
  return serialize(root);
}

/** Encodes several nodes (path string -> node) in one map; a leaf named twice is an error. */
export function encodeLwm2mCborNodes(nodes: ReadonlyMap<string, LwM2mNode>, model: ObjectModelLookup): Buffer {
  const root: Tree = new Map();
  for (const [text, node] of nodes) addNode(root, node, pathOf(text), model);
  return serialize(root);
}

/** A Write-Composite writing `updates` and deleting `deletions` (checked resource instance paths). */
export function encodeLwm2mCborPatch(
  updates: ReadonlyMap<string, LwM2mNode>,
  deletions: readonly LwM2mPath[],
  model: ObjectModelLookup,
): Buffer {
  const root: Tree = new Map();
  for (const [text, node] of updates) addNode(root, node, pathOf(text), model);
  for (const path of deletions) {
    const ids = path.ids;
    const existing = valueAt(root, ids);
    if (existing !== undefined) fail(`${WHAT}: ${path} is both written and deleted`);
    insert(root, ids, NULL);
  }
  return serialize(root);
}

function valueAt(root: Tree, ids: readonly number[]): Tree | Buffer | undefined {
  let item: Tree | Buffer | undefined = root;
  for (const id of ids) {
    if (item === undefined || Buffer.isBuffer(item)) return undefined;
    item = item.get(id);
  }
  return item;
}

export const lwm2mCborCodec: NodeCodec = {
  format: ContentFormat.LWM2M_CBOR,
  name: 'application/vnd.oma.lwm2m+cbor',
  decode: decodeLwm2mCbor,
  encode: encodeLwm2mCbor,
};
