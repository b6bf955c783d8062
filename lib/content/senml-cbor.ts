/**
 * SenML CBOR (content format 112, RFC 8428 §6, LwM2M 1.1 Core §7.4.5), on cbor-x.
 *
 * Labels: bver -1, bn -2, bt -3, bu -4, bv -5, bs -6, n 0, u 1, v 2, vs 3, vb 4, s 5, t 6, ut 7,
 * vd 8 (byte string), and the LwM2M text label "vlo" for object links. Integers stay exact (cbor-x
 * yields bigint for 64-bit items; we hand it bigint for anything beyond 32 bits so it does not fall
 * back to a float).
 */
import { Decoder, Encoder, type Options } from 'cbor-x';
import type { LwM2mPath } from '../model/path';
import type { LwM2mNode, ObjectModelLookup } from '../model/types';
import { ContentCodecError, ContentFormat, type NodeCodec } from './types';
import {
  nodeToRecords,
  recordsToNode,
  resolveSenml,
  type OutRecord,
  type RawSenmlRecord,
  type SenmlRecord,
} from './senml';
import { describe, fail } from './values';

const WHAT = 'SenML CBOR';

const LABELS: Record<number, keyof RawSenmlRecord> = {
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

type CborOptions = Options & { int64AsNumber?: boolean; useTag259ForMaps?: boolean };
const decoderOptions: CborOptions = { mapsAsObjects: false, useRecords: false, int64AsNumber: false };
const encoderOptions: CborOptions = {
  useRecords: false,
  mapsAsObjects: false,
  useTag259ForMaps: false,
  tagUint8Array: false,
};
/** Decoder for device input: maps as Map (integer keys), no record extension, 64-bit ints as bigint. */
export const cborDecoder = new Decoder(decoderOptions);
/** Encoder producing plain RFC 8949 CBOR: no tags for Maps or byte strings, no records. */
export const cborEncoder = new Encoder(encoderOptions);

/** Decodes one CBOR data item with cbor-x; any failure becomes ContentCodecError('4.00'). */
export function decodeCbor(bytes: Buffer, what: string): unknown {
  if (bytes.length === 0) fail(`${what}: empty payload`);
  try {
    return cborDecoder.decode(bytes);
  } catch (err) {
    if (err instanceof ContentCodecError) throw err;
    return fail(`${what}: invalid CBOR: ${(err as Error)?.message ?? String(err)}`);
  }
}

/** Parses and resolves SenML CBOR records (generic: names are not interpreted). */
export function parseSenmlCbor(bytes: Buffer): SenmlRecord[] {
  if (bytes.length === 0) return []; // an empty payload is an empty list (e.g. an object without instances)
  const document = decodeCbor(bytes, WHAT);
  if (!Array.isArray(document)) fail(`${WHAT}: payload must be an array of records, got ${describe(document)}`);
  const raws: RawSenmlRecord[] = new Array(document.length);
  for (let index = 0; index < document.length; index++) {
    const item: unknown = document[index];
    if (!(item instanceof Map)) fail(`${WHAT}: record ${index} must be a map, got ${describe(item)}`);
    raws[index] = rawRecord(item, index);
  }
  return resolveSenml(raws, WHAT);
}

function rawRecord(item: Map<unknown, unknown>, index: number): RawSenmlRecord {
  const raw: RawSenmlRecord = {};
  for (const [key, value] of item) {
    let field: keyof RawSenmlRecord | undefined;
    if (typeof key === 'number') field = LABELS[key];
    else if (typeof key === 'bigint') field = key >= -6n && key <= 8n ? LABELS[Number(key)] : undefined;
    else if (key === 'vlo') field = 'vlo';
    else if (typeof key === 'string') {
      if (key.endsWith('_')) fail(`${WHAT}: record ${index} has must-understand field ${JSON.stringify(key)}`);
    } else fail(`${WHAT}: record ${index} has a label that is neither an integer nor a text string: ${describe(key)}`);
    if (field === undefined) continue;
    if (raw[field] !== undefined) fail(`${WHAT}: record ${index} repeats label ${String(key)}`);
    switch (field) {
      case 'bn':
      case 'n':
      case 'bu':
      case 'u':
      case 'vs':
      case 'vlo':
        if (typeof value !== 'string') badField(index, field, 'a text string', value);
        raw[field] = value;
        break;
      case 'bt':
      case 't':
      case 'bs':
      case 's':
      case 'ut':
      case 'bver':
        if (typeof value === 'number') raw[field] = value;
        else if (typeof value === 'bigint') raw[field] = Number(value);
        else badField(index, field, 'a number', value);
        break;
      case 'bv':
      case 'v':
        if (typeof value !== 'number' && typeof value !== 'bigint') badField(index, field, 'a number', value);
        raw[field] = value;
        break;
      case 'vb':
        if (typeof value !== 'boolean') badField(index, field, 'a boolean', value);
        raw.vb = value;
        break;
      case 'vd':
        if (!(value instanceof Uint8Array)) badField(index, field, 'a byte string', value);
        raw.vd = Buffer.isBuffer(value) ? value : Buffer.from(value.buffer, value.byteOffset, value.byteLength);
        break;
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
