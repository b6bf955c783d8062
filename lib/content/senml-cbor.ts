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

/**
 * cbor-x rejects indefinite-length byte and text strings (RFC 8949 §3.2.3), which constrained
 * encoders use to stream long values: this rewrites each as one definite-length string. It walks
 * the data item heads in a single pass (no recursion: containers need no bookkeeping, their items
 * simply follow) and returns `bytes` itself when there is nothing to rewrite or the encoding is not
 * well-formed (cbor-x then reports the error).
 */
export function joinIndefiniteStrings(bytes: Buffer): Buffer {
  if (bytes.indexOf(0x5f) < 0 && bytes.indexOf(0x7f) < 0) return bytes;
  const out: Buffer[] = [];
  let copied = 0;
  let pos = 0;
  while (pos < bytes.length) {
    const initial = bytes[pos];
    const major = initial >> 5;
    const info = initial & 0x1f;
    if (info === 31) {
      if (major === 2 || major === 3) {
        const joined = readChunks(bytes, pos + 1, major);
        if (joined === undefined) return bytes;
        out.push(bytes.subarray(copied, pos), cborHead(major, joined.content.length), joined.content);
        pos = copied = joined.end;
        continue;
      }
      if (major === 0 || major === 1 || major === 6) return bytes; // not well-formed
      pos++; // indefinite array / map, or the break
      continue;
    }
    const head = readHead(bytes, pos);
    if (head === undefined) return bytes;
    pos = head.end;
    if (major === 2 || major === 3) {
      if (head.value > bytes.length - pos) return bytes;
      pos += head.value;
    }
  }
  if (copied === 0) return bytes;
  out.push(bytes.subarray(copied));
  return Buffer.concat(out);
}

/** The argument of the head at `pos` (as a number: larger lengths cannot fit in a Buffer anyway). */
function readHead(bytes: Buffer, pos: number): { value: number; end: number } | undefined {
  const info = bytes[pos] & 0x1f;
  if (info < 24) return { value: info, end: pos + 1 };
  const size = info === 24 ? 1 : info === 25 ? 2 : info === 26 ? 4 : info === 27 ? 8 : 0;
  if (size === 0 || pos + 1 + size > bytes.length) return undefined;
  let value = 0;
  for (let k = 1; k <= size; k++) value = value * 256 + bytes[pos + k];
  return { value, end: pos + 1 + size };
}

/** The chunks of an indefinite string of `major` type starting at `pos`, up to and past the break. */
function readChunks(bytes: Buffer, pos: number, major: number): { content: Buffer; end: number } | undefined {
  const chunks: Buffer[] = [];
  while (pos < bytes.length) {
    if (bytes[pos] === 0xff) return { content: Buffer.concat(chunks), end: pos + 1 };
    if (bytes[pos] >> 5 !== major) return undefined;
    const head = readHead(bytes, pos);
    if (head === undefined || head.value > bytes.length - head.end) return undefined;
    chunks.push(bytes.subarray(head.end, head.end + head.value));
    pos = head.end + head.value;
  }
  return undefined;
}

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

/** Decodes one CBOR data item with cbor-x; any failure becomes ContentCodecError('4.00'). */
export function decodeCbor(bytes: Buffer, what: string): unknown {
  if (bytes.length === 0) fail(`${what}: empty payload`);
  try {
    return cborDecoder.decode(joinIndefiniteStrings(bytes));
  } catch (err) {
    if (err instanceof ContentCodecError) throw err;
    return fail(`${what}: invalid CBOR: ${(err as Error)?.message ?? String(err)}`);
  }
}

/**
 * Parses and resolves SenML CBOR records (generic: names are not interpreted). With `allowNull`,
 * a null value (label 2) is accepted (SenML-ETCH patch records, RFC 8790 §3.2).
 */
export function parseSenmlCbor(bytes: Buffer, allowNull = false): SenmlRecord[] {
  if (bytes.length === 0) return []; // an empty payload is an empty list (e.g. an object without instances)
  const document = decodeCbor(bytes, WHAT);
  if (!Array.isArray(document)) fail(`${WHAT}: payload must be an array of records, got ${describe(document)}`);
  const raws: RawSenmlRecord[] = new Array(document.length);
  for (let index = 0; index < document.length; index++) {
    const item: unknown = document[index];
    if (!(item instanceof Map)) fail(`${WHAT}: record ${index} must be a map, got ${describe(item)}`);
    raws[index] = rawRecord(item, index, allowNull);
  }
  return resolveSenml(raws, WHAT);
}

function rawRecord(item: Map<unknown, unknown>, index: number, allowNull: boolean): RawSenmlRecord {
  const raw: RawSenmlRecord = {};
  for (const [key, value] of item) {
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
      if (!(value instanceof Uint8Array)) badField(index, field, 'a byte string', value);
      raw.vd = Buffer.isBuffer(value) ? value : Buffer.from(value.buffer, value.byteOffset, value.byteLength);
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
