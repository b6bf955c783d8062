/**
 * SenML CBOR (content format 112, RFC 8428 §6, LwM2M 1.1 Core §7.4.5): read with our CBOR reader
 * (cbor-reader.ts, every map entry kept), written with cbor-x.
 *
 * Labels: bver -1, bn -2, bt -3, bu -4, bv -5, bs -6, n 0, u 1, v 2, vs 3, vb 4, s 5, t 6, ut 7,
 * vd 8 (byte string), and the LwM2M text label "vlo" for object links. A label given twice in one
 * record is refused. Integers stay exact (the reader yields bigint beyond 2^53; we hand cbor-x
 * bigint for anything beyond 32 bits so it does not fall back to a float).
 */
import { Encoder, type Options } from 'cbor-x';
import type { LwM2mPath } from '../model/path';
import type { LwM2mNode, ObjectModelLookup } from '../model/types';
import { ContentFormat, type NodeCodec } from './types';
import { CborMap, readCbor } from './cbor-reader';
import { nodeToRecords, type OutRecord } from './senml-encode';
import {
  recordsToNode,
  resolveSenml,
  type RawSenmlRecord,
  setCommonField,
  type CommonSenmlField,
  type SenmlRecord,
} from './senml';
import { describe, fail } from './values';

const WHAT = 'SenML CBOR';

const LABELS: Record<number, CommonSenmlField | 'vd'> = {
  [-1]: 'bver',
  [-2]: 'bn',
  [-3]: 'bt',
  [-4]: 'bu',
  [-5]: 'bv',
  [-6]: 'bs',
  0: 'n',
  1: 'u',
  2: 'v',
  3: 'vs',
  4: 'vb',
  5: 's',
  6: 't',
  7: 'ut',
  8: 'vd',
};

const FIELD_LABELS = { bn: -2, n: 0, v: 2, vs: 3, vb: 4, vd: 8, vlo: 'vlo' } as const;

type CborOptions = Options & { useTag259ForMaps?: boolean };
const encoderOptions: CborOptions = {
  useRecords: false,
  mapsAsObjects: false,
  useTag259ForMaps: false,
  tagUint8Array: false,
};
/** Encoder producing plain RFC 8949 CBOR: no tags for Maps or byte strings, no records. */
export const cborEncoder = new Encoder(encoderOptions);

/** The CBOR head of major type `major` with argument `length` (below 2^32). */
export function cborHead(major: number, length: number): Buffer {
  const type = major << 5;
  if (length < 24) return Buffer.from([type | length]);
  if (length < 0x100) return Buffer.from([type | 24, length]);
  if (length < 0x10000) return Buffer.from([type | 25, length >> 8, length & 0xff]);
  const out = Buffer.allocUnsafe(5);
  out[0] = type | 26;
  out.writeUInt32BE(length, 1);
  return out;
}

/**
 * Parses and resolves SenML CBOR records (generic: names are not interpreted). With `allowNull`,
 * a null value (label 2) is accepted (SenML-ETCH patch records, RFC 8790 §3.2).
 */
export function parseSenmlCbor(bytes: Buffer, allowNull = false): SenmlRecord[] {
  if (bytes.length === 0) return []; // an empty payload is an empty list (e.g. an object without instances)
  const document = readCbor(bytes, WHAT);
  if (!Array.isArray(document)) fail(`${WHAT}: payload must be an array of records, got ${describe(document)}`);
  const raws: RawSenmlRecord[] = new Array(document.length);
  for (let index = 0; index < document.length; index++) {
    const item = document[index];
    if (!(item instanceof CborMap)) fail(`${WHAT}: record ${index} must be a map, got ${describe(item)}`);
    raws[index] = rawRecord(item, index, allowNull);
  }
  return resolveSenml(raws, WHAT);
}

/** One record; the map's entries as written, so that a label given twice is seen (and refused). */
function rawRecord(item: CborMap, index: number, allowNull: boolean): RawSenmlRecord {
  const raw: RawSenmlRecord = {};
  const { keys, values } = item;
  for (let k = 0; k < keys.length; k++) {
    const key = keys[k];
    const value = values[k];
    let field: CommonSenmlField | 'vd' | undefined;
    if (typeof key === 'number') field = LABELS[key];
    else if (typeof key === 'bigint') field = key >= -6n && key <= 8n ? LABELS[Number(key)] : undefined;
    else if (key === 'vlo') field = 'vlo';
    else if (typeof key === 'string') {
      if (key.endsWith('_')) fail(`${WHAT}: record ${index} has must-understand field ${JSON.stringify(key)}`);
    } else fail(`${WHAT}: record ${index} has a label that is neither an integer nor a text string: ${describe(key)}`);
    if (field === undefined) continue;
    if (raw[field] !== undefined || (field === 'v' && raw.vnull !== undefined)) {
      fail(`${WHAT}: record ${index} repeats label ${String(key)}`);
    }
    if (field === 'vd') {
      if (!Buffer.isBuffer(value)) badField(index, field, 'a byte string', value);
      raw.vd = value;
    } else {
      setCommonField(raw, field, value, allowNull, 'a text string', (name, expected, got) =>
        badField(index, name, expected, got),
      );
    }
  }
  return raw;
}

function badField(index: number, field: string, expected: string, value: unknown): never {
  return fail(`${WHAT}: record ${index} "${field}" must be ${expected}, got ${describe(value)}`);
}

/**
 * A number as cbor-x should see it: integers beyond 32 bits as bigint (else cbor-x writes a float),
 * small bigints as numbers (else cbor-x writes 8 bytes).
 */
export function cborNumber(value: number | bigint): number | bigint {
  if (typeof value === 'bigint') {
    return value >= -4294967296n && value <= 4294967295n ? Number(value) : value;
  }
  if (
    Number.isInteger(value) &&
    (value < -4294967296 || value > 4294967295) &&
    value >= -(2 ** 63) &&
    value < 2 ** 64
  ) {
    return BigInt(value);
  }
  return value;
}

export function serializeSenmlCbor(records: readonly OutRecord[]): Buffer {
  const items: Map<number | string, unknown>[] = new Array(records.length);
  for (let i = 0; i < records.length; i++) {
    const record = records[i];
    const map = new Map<number | string, unknown>();
    if (record.bn !== undefined) map.set(FIELD_LABELS.bn, record.bn);
    if (record.n !== undefined) map.set(FIELD_LABELS.n, record.n);
    if (record.field !== undefined) {
      const value = record.value;
      map.set(
        FIELD_LABELS[record.field],
        typeof value === 'number' || typeof value === 'bigint' ? cborNumber(value) : value,
      );
    }
    items[i] = map;
  }
  return cborEncoder.encode(items);
}

export const senmlCborCodec: NodeCodec = {
  format: ContentFormat.SENML_CBOR,
  name: 'application/senml+cbor',
  decode(bytes: Buffer, path: LwM2mPath, model: ObjectModelLookup): LwM2mNode {
    return recordsToNode(parseSenmlCbor(bytes), path, model, 'senml', WHAT);
  },
  encode(node: LwM2mNode, path: LwM2mPath, model: ObjectModelLookup): Buffer {
    return serializeSenmlCbor(nodeToRecords(node, path, model));
  },
};
