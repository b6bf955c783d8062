/**
 * LwM2M nodes as SenML records (LwM2M Core §7.4.4 / §7.4.5), for the JSON and CBOR writers alike: the value
 * field of each leaf, the records of one node or of several (composite), and Write-Composite deletions.
 */
import { LwM2mPath } from '../model/path';
import type { LwM2mNode, ObjectLink, ObjectModelLookup, ResourceType, ResourceValue } from '../model/types';
import { checkDeletions, deletionPath } from './senml';
import { flattenNode, leafName, type Leaf } from './tree';
import { describe, fail, formatObjectLink, secondsFromDate } from './values';

/** One record to write: name parts and the value in its SenML field. */
export interface OutRecord {
  bn?: string;
  n?: string;
  /** Absent for records that only name a path (composite requests). */
  field?: 'v' | 'vs' | 'vb' | 'vd' | 'vlo';
  /** null (with field 'v') deletes the resource instance (LwM2M 1.2 Write-Composite, RFC 8790 §3.2). */
  value?: number | bigint | string | boolean | Buffer | null;
}

/** SenML value field and wire value of a checked leaf value. */
export function senmlField(type: ResourceType, value: ResourceValue, where: string): OutRecord {
  switch (type) {
    case 'integer':
    case 'unsigned':
      return { field: 'v', value: value as number | bigint };
    case 'float':
      return { field: 'v', value: value as number };
    case 'time':
      return { field: 'v', value: secondsFromDate(value as Date) };
    case 'string':
    case 'corelnk':
      return { field: 'vs', value: value as string };
    case 'boolean':
      return { field: 'vb', value: value as boolean };
    case 'opaque':
      return { field: 'vd', value: value as Buffer };
    case 'objlnk':
      return { field: 'vlo', value: formatObjectLink(value as ObjectLink) };
    default:
      return fail(`${where}: resource type ${type} has no value`);
  }
}

/**
 * The records for `node` at `path`: the first carries bn (the path, with a trailing slash when the
 * node is above a leaf), the others only n relative to it.
 */
export function nodeToRecords(node: LwM2mNode, path: LwM2mPath, model: ObjectModelLookup): OutRecord[] {
  const leaves: Leaf[] = [];
  flattenNode(node, path, model, leaves);
  const base = path.toString();
  const out: OutRecord[] = new Array(leaves.length);
  const prefixLength = base.length + 1;
  for (let i = 0; i < leaves.length; i++) {
    const leaf = leaves[i];
    const name = leafName(leaf);
    const record = senmlField(leaf.type, leaf.value, name);
    if (name.length === base.length) {
      if (i === 0) record.bn = base;
    } else {
      if (i === 0) record.bn = base + '/';
      record.n = name.slice(prefixLength);
    }
    out[i] = record;
  }
  return out;
}

/** Records for several nodes (composite operations); each record names its full path. */
export function nodesToRecords(nodes: ReadonlyMap<string, LwM2mNode>, model: ObjectModelLookup): OutRecord[] {
  const out: OutRecord[] = [];
  const leaves: Leaf[] = [];
  for (const [pathText, node] of nodes) {
    let path: LwM2mPath;
    try {
      path = LwM2mPath.parse(pathText);
    } catch (err) {
      return fail(`cannot encode node at ${JSON.stringify(pathText)}: ${(err as Error).message}`);
    }
    leaves.length = 0;
    flattenNode(node, path, model, leaves);
    for (const leaf of leaves) {
      const name = leafName(leaf);
      const record = senmlField(leaf.type, leaf.value, name);
      record.n = name;
      out.push(record);
    }
  }
  return out;
}

/**
 * Checks the resource instances a Write-Composite deletes (LwM2mPath objects at resource instance
 * level, of resources the model does not define as single, none twice nor also written).
 */
export function checkDeletionPaths(
  deletions: readonly LwM2mPath[],
  model: ObjectModelLookup,
  written?: ReadonlySet<string>,
): LwM2mPath[] {
  if (!Array.isArray(deletions)) fail(`deletions must be an array of paths, got ${describe(deletions)}`);
  const out: LwM2mPath[] = new Array(deletions.length);
  for (let i = 0; i < deletions.length; i++) {
    const path: unknown = deletions[i];
    if (!(path instanceof LwM2mPath)) fail(`deletion ${i}: expected an LwM2mPath, got ${describe(path)}`);
    const def = path.level === 4 ? model.getResource(path.objectId as number, path.resourceId as number) : undefined;
    out[i] = deletionPath(path.ids, def, `cannot delete ${path}`);
  }
  return checkDeletions(out, 'Write-Composite', written);
}

/** Records deleting resource instances: `{"n":"/3/0/7/1","v":null}`. */
export function deletionRecords(deletions: readonly LwM2mPath[]): OutRecord[] {
  const out: OutRecord[] = new Array(deletions.length);
  for (let i = 0; i < deletions.length; i++) out[i] = { n: deletions[i].toString(), field: 'v', value: null };
  return out;
}
