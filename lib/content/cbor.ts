/**
 * application/cbor (content format 60), LwM2M 1.1 Core §7.4.6: one resource or resource instance
 * value as a single CBOR data item.
 *
 * integer/unsigned: CBOR integer (exact, 64-bit); float: CBOR float (float32 when exact, else
 * float64; integers are accepted on input); boolean: true/false; string/corelnk: text string;
 * opaque: byte string; time: integer seconds (tag 1 accepted on input); objlnk: text "3:0".
 */
import type { LwM2mPath } from '../model/path';
import type { LwM2mNode, ObjectLink, ObjectModelLookup, ResourceType, ResourceValue } from '../model/types';
import { ContentFormat, type NodeCodec } from './types';
import { checkNodeAtPath, encodeType } from './tree';
import { singleValueTarget } from './text';
import { cborEncoder, cborNumber } from './senml-cbor';
import { readCbor } from './cbor-reader';
import {
  checkDecodedInteger,
  checkValue,
  dateFromSeconds,
  describe,
  fail,
  formatObjectLink,
  parseObjectLink,
  secondsFromDate,
  toBuffer,
} from './values';

const WHAT = 'CBOR';

/** The type a CBOR item implies when the model does not know the resource. */
export function inferCborType(item: unknown): ResourceType | undefined {
  switch (typeof item) {
    case 'number':
      return Number.isInteger(item) ? 'integer' : 'float';
    case 'bigint':
      return 'integer';
    case 'string':
      return 'string';
    case 'boolean':
      return 'boolean';
    default:
      if (item instanceof Uint8Array) return 'opaque';
      if (item instanceof Date) return 'time';
      return undefined;
  }
}

/** A decoded CBOR item as a value of `type`; ContentCodecError('4.00') when it does not fit. */
export function valueFromCbor(type: ResourceType, item: unknown, where: string): ResourceValue {
  switch (type) {
    case 'integer':
    case 'unsigned':
      if (typeof item === 'number' || typeof item === 'bigint') return checkDecodedInteger(item, type, where);
      break;
    case 'float':
      if (typeof item === 'number' || typeof item === 'bigint') return Number(item);
      break;
    case 'time':
      if (item instanceof Date) {
        if (isNaN(item.getTime())) fail(`${where}: invalid date`);
        return item;
      }
      if (typeof item === 'bigint' || (typeof item === 'number' && Number.isInteger(item)))
        return dateFromSeconds(item, where);
      break;
    case 'boolean':
      if (typeof item === 'boolean') return item;
      break;
    case 'string':
    case 'corelnk':
      if (typeof item === 'string') return item;
      break;
    case 'opaque':
      if (item instanceof Uint8Array) return toBuffer(item);
      break;
    case 'objlnk':
      if (typeof item === 'string') return parseObjectLink(item, where);
      break;
    case 'none':
      return fail(`${where}: resource is executable (type none) and has no value`);
  }
  return fail(`${where}: ${describe(item)} does not fit resource type ${type}`);
}

/** float32 when exact (or NaN), else float64. */
export function encodeFloat(value: number): Buffer {
  if (Math.fround(value) === value || Number.isNaN(value)) {
    const out = Buffer.allocUnsafe(5);
    out[0] = 0xfa;
    out.writeFloatBE(value, 1);
    return out;
  }
  const out = Buffer.allocUnsafe(9);
  out[0] = 0xfb;
  out.writeDoubleBE(value, 1);
  return out;
}

/** A checked value of `type` as one CBOR data item (time as integer seconds, untagged). */
export function valueToCbor(type: ResourceType, value: ResourceValue): Buffer {
  switch (type) {
    case 'integer':
    case 'unsigned':
      return cborEncoder.encode(cborNumber(value as number | bigint));
    case 'float':
      return encodeFloat(value as number);
    case 'time':
      return cborEncoder.encode(cborNumber(secondsFromDate(value as Date)));
    case 'objlnk':
      return cborEncoder.encode(formatObjectLink(value as ObjectLink));
    case 'opaque':
      return cborEncoder.encode(toBuffer(value as Uint8Array));
    default:
      return cborEncoder.encode(value);
  }
}

export const cborCodec: NodeCodec = {
  format: ContentFormat.CBOR,
  name: 'application/cbor',
  decode(bytes: Buffer, path: LwM2mPath, model: ObjectModelLookup): LwM2mNode {
    const known = singleValueTarget(path, model, 'application/cbor', '4.00');
    const where = `${WHAT} for ${path}`;
    const item = readCbor(bytes, where);
    const type = known ?? inferCborType(item);
    if (type === undefined) fail(`${where}: ${describe(item)} is not a resource value`);
    const value = valueFromCbor(type, item, where);
    return path.level === 3
      ? { kind: 'resource', id: path.resourceId as number, type, value }
      : { kind: 'resourceInstance', id: path.resourceInstanceId as number, type, value };
  },
  encode(node: LwM2mNode, path: LwM2mPath, model: ObjectModelLookup): Buffer {
    checkNodeAtPath(node, path);
    if (node.kind !== 'resource' && node.kind !== 'resourceInstance') {
      fail(`application/cbor carries a single value; cannot encode a ${node.kind} node at ${path}`, '4.06');
    }
    singleValueTarget(path, model, 'application/cbor', '4.06');
    const where = `${WHAT} for ${path}`;
    const type = encodeType(model, path.objectId as number, path.resourceId as number, node.type, where);
    return valueToCbor(type, checkValue(type, node.value, where));
  },
};
