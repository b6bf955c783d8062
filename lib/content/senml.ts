/**
 * SenML (RFC 8428) records as LwM2M 1.1 uses them (Core §7.4.4 and §7.4.5), shared by the JSON
 * and CBOR representations: base field resolution and the mapping of records to LwM2M leaves and
 * nodes (the way back, nodes to records, is senml-encode.ts).
 * Byte counts in this file's comments are garbage per operation, from `node build/bench/read-allocs.js --profile`.
 */
import { LwM2mPath } from '../model/path';
import type { LwM2mNode, ObjectModelLookup, ResourceDefinition, ResourceType, ResourceValue } from '../model/types';
import type { TimestampedNode } from './types';
import { buildNode, leafName, leafPath, leavesToNodes, sameLeafValue, type Leaf } from './tree';
import { checkDecodedInteger, dateFromSeconds, decodeBase64, describe, fail, parseObjectLink } from './values';

/** A SenML record as it appears in the payload (before base values are applied). */
export interface RawSenmlRecord {
  bn?: string;
  bt?: number;
  bu?: string;
  bv?: number | bigint;
  bs?: number;
  bver?: number;
  n?: string;
  u?: string;
  v?: number | bigint;
  vs?: string;
  vb?: boolean;
  vd?: Buffer;
  vlo?: string;
  /** `"v": null` (SenML-ETCH / LwM2M 1.2 Write-Composite: remove the record's target); parsers set it only when asked. */
  vnull?: true;
  s?: number;
  t?: number;
  ut?: number;
}

/** The SenML fields that JSON and CBOR carry alike (every one but `vd`, whose encoding differs). */
export type CommonSenmlField =
  'bn' | 'n' | 'bu' | 'u' | 'vs' | 'vlo' | 'bt' | 't' | 'bs' | 's' | 'ut' | 'bver' | 'bv' | 'v' | 'vb';

/**
 * Checks and stores one common field of a record being parsed; both SenML parsers call it so the
 * rules (strings, numbers, a `v: null` only when asked) live in one place. `textWord` names a string in
 * that format's terms ('a string' in JSON, 'a text string' in CBOR).
 */
export function setCommonField(
  raw: RawSenmlRecord,
  field: CommonSenmlField,
  value: unknown,
  allowNull: boolean,
  textWord: string,
  bad: (field: string, expected: string, value: unknown) => never,
): void {
  switch (field) {
    case 'bn':
    case 'n':
    case 'bu':
    case 'u':
    case 'vs':
    case 'vlo':
      if (typeof value !== 'string') bad(field, textWord, value);
      raw[field] = value;
      return;
    case 'bt':
    case 't':
    case 'bs':
    case 's':
    case 'ut':
    case 'bver':
      if (typeof value === 'number') raw[field] = value;
      else if (typeof value === 'bigint') raw[field] = Number(value);
      else bad(field, 'a number', value);
      return;
    case 'bv':
    case 'v':
      if (value === null && field === 'v' && allowNull) {
        raw.vnull = true;
        return;
      }
      if (typeof value !== 'number' && typeof value !== 'bigint') bad(field, 'a number', value);
      raw[field] = value;
      return;
    case 'vb':
      if (typeof value !== 'boolean') bad(field, 'a boolean', value);
      raw.vb = value;
      return;
  }
}

/** A resolved SenML record (RFC 8428 §4.6): base name, time, unit and value applied. */
export interface SenmlRecord {
  /** bn + n. */
  name: string;
  /** bt + t in seconds as carried (values below 2^28 are relative to now); absent when neither was given. */
  time?: number;
  unit?: string;
  /** v (+ bv). Integers beyond 2^53 are bigint. */
  value?: number | bigint;
  stringValue?: string;
  boolValue?: boolean;
  dataValue?: Buffer;
  /** LwM2M object link "3:0" (vlo). */
  objlnkValue?: string;
  /** `"v": null`: remove the resource instance (RFC 8790 §3.2, LwM2M 1.2 Write-Composite). */
  nullValue?: true;
  /** s (+ bs). */
  sum?: number;
  updateTime?: number;
}

/** The SenML version this implementation understands (RFC 8428 §4.4). */
export const SENML_VERSION = 10;
/** RFC 8428 §4.5.3: times below 2^28 are relative to now. */
export const SENML_RELATIVE_TIME_LIMIT = 2 ** 28;

/** Applies the base fields of RFC 8428 §4.5/§4.6; `records` are checked by the format parsers. */
export function resolveSenml(records: readonly RawSenmlRecord[], what: string): SenmlRecord[] {
  const out: SenmlRecord[] = new Array(records.length);
  let bn = '';
  let bt: number | undefined;
  let bu: string | undefined;
  let bv: number | bigint | undefined;
  let bs: number | undefined;
  for (let index = 0; index < records.length; index++) {
    const raw = records[index];
    if (raw.bver !== undefined && raw.bver > SENML_VERSION) {
      fail(`${what}: record ${index}: SenML version ${raw.bver} is not supported (understood: ${SENML_VERSION})`);
    }
    if (raw.bn !== undefined) bn = raw.bn;
    if (raw.bt !== undefined) bt = raw.bt;
    if (raw.bu !== undefined) bu = raw.bu;
    if (raw.bv !== undefined) bv = raw.bv;
    if (raw.bs !== undefined) bs = raw.bs;
    let valueFields = 0;
    if (raw.v !== undefined) valueFields++;
    if (raw.vs !== undefined) valueFields++;
    if (raw.vb !== undefined) valueFields++;
    if (raw.vd !== undefined) valueFields++;
    if (raw.vlo !== undefined) valueFields++;
    if (raw.vnull !== undefined) valueFields++;
    if (valueFields > 1) fail(`${what}: record ${index} has more than one value field`);
    const record: SenmlRecord = { name: raw.n === undefined ? bn : bn + raw.n };
    if (raw.t !== undefined || bt !== undefined) record.time = (bt ?? 0) + (raw.t ?? 0);
    const unit = raw.u ?? bu;
    if (unit !== undefined) record.unit = unit;
    if (raw.v !== undefined) record.value = bv === undefined ? raw.v : addNumbers(raw.v, bv);
    else if (raw.vs !== undefined) record.stringValue = raw.vs;
    else if (raw.vb !== undefined) record.boolValue = raw.vb;
    else if (raw.vd !== undefined) record.dataValue = raw.vd;
    else if (raw.vlo !== undefined) record.objlnkValue = raw.vlo;
    else if (raw.vnull !== undefined) record.nullValue = true;
    if (raw.s !== undefined) record.sum = bs === undefined ? raw.s : raw.s + bs;
    if (raw.ut !== undefined) record.updateTime = raw.ut;
    out[index] = record;
  }
  return out;
}

function addNumbers(a: number | bigint, b: number | bigint): number | bigint {
  if (typeof a === 'number' && typeof b === 'number') return a + b;
  if (Number.isInteger(Number(a)) && Number.isInteger(Number(b))) {
    const sum = BigInt(a) + BigInt(b);
    return sum >= -9007199254740991n && sum <= 9007199254740991n ? Number(sum) : sum;
  }
  return Number(a) + Number(b);
}

/** The absolute time of a resolved SenML time (seconds), per RFC 8428 §4.5.3. */
export function senmlTimeToDate(time: number, nowMs: number): Date {
  const ms = time < SENML_RELATIVE_TIME_LIMIT ? nowMs + time * 1000 : time * 1000;
  if (!Number.isFinite(ms) || Math.abs(ms) > 8.64e15) fail(`SenML time ${time} is out of range`);
  return new Date(ms);
}

// ---------------------------------------------------------------------------------------------
// Records -> LwM2M

export type JsonFlavor = 'senml' | 'oma';

/** Parses an LwM2M path name (/3/0/1, 3/0/1) into ids; undefined when it is not one. */
export function parsePathName(name: string): number[] | undefined {
  const count = parsePathIds(name, PATH_IDS);
  return count < 0 ? undefined : PATH_IDS.slice(0, count);
}

/** Where parsePathIds puts the ids of the record being read (one record at a time, no reentry). */
const PATH_IDS: number[] = [0, 0, 0, 0];

/**
 * Parses an LwM2M path name into `ids` (room for 4); returns how many it has, or -1 when it is not one. Writing
 * into a given array instead of growing a new one by push saves about 150 bytes a record.
 */
function parsePathIds(name: string, ids: number[]): number {
  const length = name.length;
  let i = name.charCodeAt(0) === 47 ? 1 : 0;
  let count = 0;
  if (i === length) return 0;
  for (;;) {
    const start = i;
    let n = 0;
    while (i < length) {
      const c = name.charCodeAt(i) - 48;
      if (c < 0 || c > 9) break;
      n = n * 10 + c;
      i++;
    }
    if (i === start || i - start > 5 || n > 65535 || count === 4) return -1;
    ids[count++] = n;
    if (i === length) return count;
    if (name.charCodeAt(i) !== 47) return -1;
    i++;
    if (i === length) return count; // trailing slash
  }
}

/** Message prefix for a record; cheap (string concatenation) as it is built for every record. */
function recordWhere(what: string, index: number, name: string): string {
  return what + ': record ' + index + ' (' + (name.length > 40 ? name.slice(0, 40) + '...' : name) + ')';
}

/** The type a record's value implies when the model does not know the resource. */
function inferType(record: SenmlRecord): ResourceType {
  if (record.value !== undefined) {
    return typeof record.value === 'bigint' || Number.isInteger(record.value) ? 'integer' : 'float';
  }
  if (record.stringValue !== undefined) return 'string';
  if (record.boolValue !== undefined) return 'boolean';
  if (record.dataValue !== undefined) return 'opaque';
  if (record.objlnkValue !== undefined) return 'objlnk';
  return 'string';
}

/**
 * The value of a record as a resource of `type`. The message prefix (`recordWhere`) is built only when it is
 * needed (an error, or a type whose check takes it): building it for every record cost about 150 bytes a record.
 */
function recordValue(
  record: SenmlRecord,
  type: ResourceType,
  flavor: JsonFlavor,
  what: string,
  index: number,
): ResourceValue {
  switch (type) {
    case 'integer':
    case 'unsigned': {
      const value = record.value;
      if (value === undefined) break;
      // the common case without the message prefix; checkDecodedInteger takes the rest
      if (typeof value === 'number' && Number.isSafeInteger(value) && (type === 'integer' || value >= 0)) return value;
      return checkDecodedInteger(value, type, recordWhere(what, index, record.name));
    }
    case 'float':
      if (record.value !== undefined) return Number(record.value);
      break;
    case 'time':
      if (record.value !== undefined) {
        const where = recordWhere(what, index, record.name);
        if (typeof record.value === 'number' && !Number.isInteger(record.value)) {
          fail(`${where}: time ${record.value} is not whole seconds`);
        }
        return dateFromSeconds(record.value, where);
      }
      break;
    case 'string':
    case 'corelnk':
      if (record.stringValue !== undefined) return record.stringValue;
      break;
    case 'boolean':
      if (record.boolValue !== undefined) return record.boolValue;
      break;
    case 'opaque':
      if (record.dataValue !== undefined) return record.dataValue;
      if (flavor === 'oma' && record.stringValue !== undefined)
        return decodeBase64(record.stringValue, recordWhere(what, index, record.name));
      break;
    case 'objlnk':
      if (record.objlnkValue !== undefined)
        return parseObjectLink(record.objlnkValue, recordWhere(what, index, record.name));
      break;
    case 'none':
      return fail(`${recordWhere(what, index, record.name)}: resource is executable (type none) and has no value`);
  }
  const where = recordWhere(what, index, record.name);
  const field = FIELD_FOR_TYPE[flavor][type];
  const got = presentValue(record, flavor);
  return fail(
    got === undefined ? `${where}: record has no value` : `${where}: ${type} resource needs "${field}", got ${got}`,
  );
}

const FIELD_FOR_TYPE: Record<JsonFlavor, Record<ResourceType, string>> = {
  senml: {
    integer: 'v',
    unsigned: 'v',
    float: 'v',
    time: 'v',
    string: 'vs',
    corelnk: 'vs',
    boolean: 'vb',
    opaque: 'vd',
    objlnk: 'vlo',
    none: '-',
  },
  oma: {
    integer: 'v',
    unsigned: 'v',
    float: 'v',
    time: 'v',
    string: 'sv',
    corelnk: 'sv',
    boolean: 'bv',
    opaque: 'sv',
    objlnk: 'ov',
    none: '-',
  },
};

function presentValue(record: SenmlRecord, flavor: JsonFlavor): string | undefined {
  const names = FIELD_FOR_TYPE[flavor];
  if (record.value !== undefined) return `"v" ${describe(record.value)}`;
  if (record.stringValue !== undefined) return `"${names.string}" ${describe(record.stringValue)}`;
  if (record.boolValue !== undefined) return `"${names.boolean}" ${record.boolValue}`;
  if (record.dataValue !== undefined) return `"vd" ${describe(record.dataValue)}`;
  if (record.objlnkValue !== undefined) return `"${names.objlnk}" ${describe(record.objlnkValue)}`;
  if (record.nullValue !== undefined) return '"v" null';
  return undefined;
}

/** A record turned into an LwM2M leaf, with its absolute time when it carried one. */
export interface TimedLeaf {
  leaf: Leaf;
  time: Date | undefined;
}

/**
 * Maps resolved records to leaves typed by the model; every record must carry a value. Times are
 * resolved against `nowMs`, or left out when it is undefined. With `deletions`, records with
 * `"v": null` name resource instances to remove and go there instead (checked against the model).
 */
export function recordsToLeaves(
  records: readonly SenmlRecord[],
  model: ObjectModelLookup,
  flavor: JsonFlavor,
  what: string,
  nowMs: number | undefined,
  deletions?: LwM2mPath[],
): TimedLeaf[] {
  const out: TimedLeaf[] = [];
  for (let index = 0; index < records.length; index++) {
    const record = records[index];
    const leaf = recordLeaf(record, index, model, flavor, what, deletions);
    if (leaf === undefined) continue;
    out.push({
      leaf,
      time: record.time === undefined || nowMs === undefined ? undefined : senmlTimeToDate(record.time, nowMs),
    });
  }
  return out;
}

/**
 * `recordsToLeaves` without times: the leaves alone (no TimedLeaf wrapper and second array per decode, which
 * cost about 100 bytes a record on every Read answer).
 */
function recordsToPlainLeaves(
  records: readonly SenmlRecord[],
  model: ObjectModelLookup,
  flavor: JsonFlavor,
  what: string,
  deletions?: LwM2mPath[],
): Leaf[] {
  // at its final size (push would make room for 17 leaves); shorter only when records were deletions
  const out: Leaf[] = new Array(records.length);
  let n = 0;
  for (let index = 0; index < records.length; index++) {
    const leaf = recordLeaf(records[index], index, model, flavor, what, deletions);
    if (leaf !== undefined) out[n++] = leaf;
  }
  if (n < out.length) out.length = n;
  return out;
}

/** One record as a leaf typed by the model; undefined when it went to `deletions` (see recordsToLeaves). */
function recordLeaf(
  record: SenmlRecord,
  index: number,
  model: ObjectModelLookup,
  flavor: JsonFlavor,
  what: string,
  deletions: LwM2mPath[] | undefined,
): Leaf | undefined {
  const ids = PATH_IDS;
  const count = parsePathIds(record.name, ids);
  if (count < 3) {
    fail(
      `${what}: record ${index} (${JSON.stringify(record.name.slice(0, 40))}): ${count < 0 ? 'name is not an LwM2M path' : 'a value needs a resource or resource instance path'}`,
    );
  }
  const o = ids[0];
  const i = ids[1];
  const r = ids[2];
  const ri = count === 4 ? ids[3] : undefined;
  const def = model.getResource(o, r);
  if (deletions) {
    if (record.nullValue !== undefined) {
      // From the locals, not the shared scratch `ids`: getResource ran in between.
      deletions.push(
        deletionPath(ri === undefined ? [o, i, r] : [o, i, r, ri], def, recordWhere(what, index, record.name)),
      );
      return undefined;
    }
    if (presentValue(record, 'senml') === undefined) {
      fail(
        `${recordWhere(what, index, record.name)}: a Write-Composite record needs a value, or "v": null to delete a resource instance`,
      );
    }
  }
  const type = def ? def.type : inferType(record);
  const value = recordValue(record, type, flavor, what, index);
  return { o, i, r, ri, type, value };
}

/**
 * The path a deletion names (LwM2M 1.2 Write-Composite: `"v": null` in SenML, null in LwM2M CBOR):
 * a resource instance of a resource the model does not define as single.
 */
export function deletionPath(ids: readonly number[], def: ResourceDefinition | undefined, where: string): LwM2mPath {
  if (ids.length !== 4) fail(`${where}: a null value deletes a resource instance; the path must name one`);
  if (def && !def.multiple) fail(`${where}: /${ids[0]}/${ids[1]}/${ids[2]} is a single resource and has no instances`);
  return new LwM2mPath(ids[0], ids[1], ids[2], ids[3]);
}

/** The content of a Write-Composite that may remove resource instances (see decodePatch in index.ts). */
export interface PatchContent {
  /** Path string -> node, one per resource or resource instance path written. */
  updates: Map<string, LwM2mNode>;
  /** Resource instances to delete, in payload order. */
  deletions: LwM2mPath[];
}

/** Splits patch records into written nodes and deleted resource instances (RFC 8790 §3.2). */
export function recordsToPatch(records: readonly SenmlRecord[], model: ObjectModelLookup, what: string): PatchContent {
  const deletions: LwM2mPath[] = [];
  const leaves = recordsToPlainLeaves(records, model, 'senml', what, deletions);
  const updates = leavesToNodes(leaves, model, what);
  return { updates, deletions: checkDeletions(deletions, what, updates) };
}

/** Throws when a path is deleted twice or both written and deleted; returns `deletions`. */
export function checkDeletions(
  deletions: LwM2mPath[],
  what: string,
  updates: { has(name: string): boolean } | undefined,
): LwM2mPath[] {
  const seen = new Set<string>();
  for (const path of deletions) {
    const name = path.toString();
    if (seen.has(name)) fail(`${what}: ${name} is deleted twice`);
    if (updates?.has(name)) fail(`${what}: ${name} is both written and deleted`);
    seen.add(name);
  }
  return deletions;
}

/** Decodes the node at `path` from resolved records (no duplicate paths allowed). */
export function recordsToNode(
  records: readonly SenmlRecord[],
  path: LwM2mPath,
  model: ObjectModelLookup,
  flavor: JsonFlavor,
  what: string,
): LwM2mNode {
  return buildNode(path, recordsToPlainLeaves(records, model, flavor, what), model, what);
}

/**
 * Time series: records grouped by their absolute time (in order of first appearance; records
 * without time form one group). With `basePath`, one entry per group holding the node at that
 * path; without, one entry per group and record path (resource or resource instance node).
 */
export function recordsToTimestamped(
  records: readonly SenmlRecord[],
  model: ObjectModelLookup,
  flavor: JsonFlavor,
  what: string,
  basePath?: LwM2mPath,
): TimestampedNode[] {
  const timed = recordsToLeaves(records, model, flavor, what, Date.now());
  const groups = new Map<number | undefined, Leaf[]>();
  for (const { leaf, time } of timed) {
    const key = time?.getTime();
    const group = groups.get(key);
    if (group) group.push(leaf);
    else groups.set(key, [leaf]);
  }
  const out: TimestampedNode[] = [];
  for (const [ms, leaves] of groups) {
    if (basePath) {
      const entry: TimestampedNode = { path: basePath, node: buildNode(basePath, leaves, model, what) };
      if (ms !== undefined) entry.time = new Date(ms);
      out.push(entry);
      continue;
    }
    const seen = new Map<string, Leaf>();
    for (const leaf of leaves) {
      const name = leafName(leaf);
      const before = seen.get(name);
      if (before !== undefined) {
        if (sameLeafValue(before, leaf)) continue; // the same value given twice counts once
        fail(`${what}: more than one value for ${name} at the same time`);
      }
      seen.set(name, leaf);
      const path = leafPath(leaf);
      const entry: TimestampedNode = { path, node: buildNode(path, [leaf], model, what) };
      if (ms !== undefined) entry.time = new Date(ms);
      out.push(entry);
    }
  }
  return out;
}

/**
 * Composite decoding: path string -> node. Without `paths`, one node per record path; with them,
 * the node at each requested path built from the records below it (paths without records are left
 * out). Records outside every requested path are an error.
 */
export function recordsToNodes(
  records: readonly SenmlRecord[],
  model: ObjectModelLookup,
  flavor: JsonFlavor,
  what: string,
  paths?: readonly LwM2mPath[],
): Map<string, LwM2mNode> {
  return leavesToNodes(recordsToPlainLeaves(records, model, flavor, what), model, what, paths);
}

/** Paths named by records without values (Read-Composite / Observe-Composite requests). */
export function recordsToPaths(records: readonly SenmlRecord[], what: string): LwM2mPath[] {
  const out: LwM2mPath[] = new Array(records.length);
  for (let index = 0; index < records.length; index++) {
    const record = records[index];
    const ids = parsePathName(record.name);
    if (ids === undefined)
      fail(`${what}: record ${index} (${JSON.stringify(record.name.slice(0, 40))}): name is not an LwM2M path`);
    if (presentValue(record, 'senml') !== undefined || record.time !== undefined || record.sum !== undefined) {
      fail(`${recordWhere(what, index, record.name)}: a path list record must not carry a value or time`);
    }
    out[index] = new LwM2mPath(ids[0], ids[1], ids[2], ids[3]);
  }
  return out;
}
