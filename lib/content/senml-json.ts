/**
 * SenML JSON (content format 110, RFC 8428 §5, LwM2M 1.1 Core §7.4.4).
 *
 * Integers are parsed exactly (bigint beyond 2^53, see json.ts); vd is base64url (standard base64
 * is accepted on input); vlo carries object links "3:0". Unknown fields are ignored unless they end
 * with "_" (must-understand, RFC 8428 §4.4), which is an error.
 */
import type { LwM2mPath } from '../model/path';
import type { LwM2mNode, ObjectModelLookup } from '../model/types';
import { ContentFormat, type NodeCodec } from './types';
import { JsonObject, parseJson } from './json';
import { jsonValueText } from './json-value';
import { nodeToRecords, type OutRecord } from './senml-encode';
import { recordsToNode, resolveSenml, type RawSenmlRecord, setCommonField, type SenmlRecord } from './senml';
import { decodeBase64, describe, fail } from './values';

const WHAT = 'SenML JSON';

/**
 * Parses and resolves SenML JSON records (generic: names are not interpreted). With `allowNull`,
 * `"v": null` is accepted (SenML-ETCH patch records, RFC 8790 §3.2).
 */
export function parseSenmlJson(bytes: Buffer, allowNull = false): SenmlRecord[] {
  if (bytes.length === 0) return []; // an empty payload is an empty list (e.g. an object without instances)
  const document = parseJson(bytes, WHAT);
  if (!Array.isArray(document)) fail(`${WHAT}: payload must be an array of records, got ${describe(document)}`);
  const raws: RawSenmlRecord[] = new Array(document.length);
  for (let index = 0; index < document.length; index++) {
    const item = document[index];
    if (!(item instanceof JsonObject)) fail(`${WHAT}: record ${index} must be an object, got ${describe(item)}`);
    raws[index] = rawRecord(item, index, allowNull);
  }
  return resolveSenml(raws, WHAT);
}

function rawRecord(item: JsonObject, index: number, allowNull: boolean): RawSenmlRecord {
  const raw: RawSenmlRecord = {};
  const { keys, values } = item;
  for (let k = 0; k < keys.length; k++) {
    const key = keys[k];
    const value = values[k];
    switch (key) {
      case 'bn':
      case 'n':
      case 'bu':
      case 'u':
      case 'vs':
      case 'vlo':
      case 'bt':
      case 't':
      case 'bs':
      case 's':
      case 'ut':
      case 'bver':
      case 'bv':
      case 'v':
      case 'vb':
        setCommonField(raw, key, value, allowNull, 'a string', (field, expected, got) =>
          badField(index, field, expected, got),
        );
        break;
      case 'vd':
        if (typeof value !== 'string') badField(index, key, 'a base64url string', value);
        raw.vd = decodeBase64(value, `${WHAT}: record ${index} "vd"`);
        break;
      default:
        if (key.endsWith('_')) fail(`${WHAT}: record ${index} has must-understand field ${JSON.stringify(key)}`);
    }
  }
  return raw;
}

function badField(index: number, key: string, expected: string, value: unknown): never {
  return fail(`${WHAT}: record ${index} "${key}" must be ${expected}, got ${describe(value)}`);
}

/** Serializes records compactly: `[{"bn":"/3/0/","n":"0","vs":"..."},...]`. */
export function serializeSenmlJson(records: readonly OutRecord[]): Buffer {
  let text = '[';
  for (let i = 0; i < records.length; i++) {
    const record = records[i];
    text += i === 0 ? '{' : ',{';
    let first = true;
    if (record.bn !== undefined) {
      text += '"bn":' + JSON.stringify(record.bn);
      first = false;
    }
    if (record.n !== undefined) {
      text += (first ? '"n":' : ',"n":') + JSON.stringify(record.n);
      first = false;
    }
    if (record.field !== undefined) {
      text += (first ? '"' : ',"') + record.field + '":' + jsonValueText(record.value, 'base64url', WHAT, 'record', i);
    }
    text += '}';
  }
  text += ']';
  return Buffer.from(text, 'utf8');
}

export const senmlJsonCodec: NodeCodec = {
  format: ContentFormat.SENML_JSON,
  name: 'application/senml+json',
  decode(bytes: Buffer, path: LwM2mPath, model: ObjectModelLookup): LwM2mNode {
    return recordsToNode(parseSenmlJson(bytes), path, model, 'senml', WHAT);
  },
  encode(node: LwM2mNode, path: LwM2mPath, model: ObjectModelLookup): Buffer {
    return serializeSenmlJson(nodeToRecords(node, path, model));
  },
};
