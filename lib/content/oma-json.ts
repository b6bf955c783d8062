/**
 * OMA LwM2M JSON (content format 11543 and legacy 1543), LwM2M 1.0 TS §6.4.4:
 * `{"bn":"/3/0/","bt":...,"e":[{"n":"0","sv":"..."},{"n":"9","v":100},{"n":"5","bv":true},{"n":"6","ov":"3:0"}]}`.
 *
 * Opaque values travel base64 in "sv"; times in "v" as seconds; "t" is relative to "bt" with the
 * SenML rule (below 2^28: relative to now).
 */
import type { LwM2mPath } from '../model/path';
import type { LwM2mNode, ObjectModelLookup } from '../model/types';
import { ContentFormat, type NodeCodec } from './types';
import { JsonObject, parseJson } from './json';
import { jsonValueText } from './json-value';
import { nodeToRecords, type OutRecord } from './senml-encode';
import { recordsToNode, resolveSenml, type RawSenmlRecord, type SenmlRecord } from './senml';
import { describe, fail } from './values';

const WHAT = 'LwM2M JSON';

/** Parses an OMA JSON payload into resolved SenML-like records (sv -> vs, bv -> vb, ov -> vlo). */
export function parseOmaJson(bytes: Buffer): SenmlRecord[] {
  if (bytes.length === 0) return []; // an empty payload is an empty list (e.g. an object without instances)
  const document = parseJson(bytes, WHAT);
  if (!(document instanceof JsonObject)) fail(`${WHAT}: payload must be an object, got ${describe(document)}`);
  let bn: string | undefined;
  let bt: number | undefined;
  let entries: unknown;
  const { keys, values } = document;
  for (let k = 0; k < keys.length; k++) {
    const value = values[k];
    switch (keys[k]) {
      case 'bn':
        if (typeof value !== 'string') fail(`${WHAT}: "bn" must be a string, got ${describe(value)}`);
        bn = value;
        break;
      case 'bt':
        if (typeof value !== 'number' && typeof value !== 'bigint')
          fail(`${WHAT}: "bt" must be a number, got ${describe(value)}`);
        bt = Number(value);
        break;
      case 'e':
        entries = value;
        break;
    }
  }
  if (!Array.isArray(entries)) fail(`${WHAT}: "e" must be an array of entries, got ${describe(entries)}`);
  const raws: RawSenmlRecord[] = new Array(entries.length);
  for (let index = 0; index < entries.length; index++) {
    const item: unknown = entries[index];
    if (!(item instanceof JsonObject)) fail(`${WHAT}: entry ${index} must be an object, got ${describe(item)}`);
    const raw = rawEntry(item, index);
    if (index === 0) {
      if (bn !== undefined) raw.bn = bn;
      if (bt !== undefined) raw.bt = bt;
    }
    raws[index] = raw;
  }
  return resolveSenml(raws, WHAT);
}

function rawEntry(item: JsonObject, index: number): RawSenmlRecord {
  const raw: RawSenmlRecord = {};
  const { keys, values } = item;
  for (let k = 0; k < keys.length; k++) {
    const key = keys[k];
    const value = values[k];
    switch (key) {
      case 'n':
        if (typeof value !== 'string') badField(index, key, 'a string', value);
        raw.n = value;
        break;
      case 'sv':
        if (typeof value !== 'string') badField(index, key, 'a string', value);
        raw.vs = value;
        break;
      case 'ov':
        if (typeof value !== 'string') badField(index, key, 'an object link "3:0"', value);
        raw.vlo = value;
        break;
      case 'bv':
        if (typeof value !== 'boolean') badField(index, key, 'a boolean', value);
        raw.vb = value;
        break;
      case 'v':
        if (typeof value !== 'number' && typeof value !== 'bigint') badField(index, key, 'a number', value);
        raw.v = value;
        break;
      case 't':
        if (typeof value !== 'number' && typeof value !== 'bigint') badField(index, key, 'a number', value);
        raw.t = Number(value);
        break;
    }
  }
  return raw;
}

function badField(index: number, key: string, expected: string, value: unknown): never {
  return fail(`${WHAT}: entry ${index} "${key}" must be ${expected}, got ${describe(value)}`);
}

const OMA_FIELD = { v: 'v', vs: 'sv', vb: 'bv', vd: 'sv', vlo: 'ov' } as const;

/** Serializes records as `{"bn":...,"e":[...]}`; the first record's bn becomes the document's. */
export function serializeOmaJson(records: readonly OutRecord[]): Buffer {
  let text = '{';
  const bn = records.length > 0 ? records[0].bn : undefined;
  if (bn !== undefined) text += '"bn":' + JSON.stringify(bn) + ',';
  text += '"e":[';
  for (let i = 0; i < records.length; i++) {
    const record = records[i];
    text += i === 0 ? '{' : ',{';
    let first = true;
    if (record.n !== undefined) {
      text += '"n":' + JSON.stringify(record.n);
      first = false;
    }
    if (record.field !== undefined) {
      text +=
        (first ? '"' : ',"') + OMA_FIELD[record.field] + '":' + jsonValueText(record.value, 'base64', WHAT, 'entry', i);
    }
    text += '}';
  }
  text += ']}';
  return Buffer.from(text, 'utf8');
}

function omaJsonCodec(format: number): NodeCodec {
  return {
    format,
    name: 'application/vnd.oma.lwm2m+json',
    decode(bytes: Buffer, path: LwM2mPath, model: ObjectModelLookup): LwM2mNode {
      return recordsToNode(parseOmaJson(bytes), path, model, 'oma', WHAT);
    },
    encode(node: LwM2mNode, path: LwM2mPath, model: ObjectModelLookup): Buffer {
      return serializeOmaJson(nodeToRecords(node, path, model));
    },
  };
}

export const omaJsonCodec11543: NodeCodec = omaJsonCodec(ContentFormat.JSON);
export const omaJsonCodec1543: NodeCodec = omaJsonCodec(ContentFormat.OLD_JSON);
