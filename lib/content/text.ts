/**
 * text/plain (content format 0), LwM2M 1.1 Core §7.4.1: one resource or resource instance value.
 *
 * integer/unsigned: decimal (64-bit exact, bigint beyond 2^53); float: decimal (exponent allowed);
 * boolean: "0"/"1"; time: integer seconds since the epoch; objlnk: "3:0"; opaque: base64;
 * string/corelnk: UTF-8 as is. Numbers, booleans, times and links may carry surrounding whitespace.
 */
import { isUtf8 } from 'node:buffer';
import type { LwM2mPath } from '../model/path';
import type { LwM2mNode, ObjectModelLookup, ResourceType, ResourceValue } from '../model/types';
import { ContentFormat, type NodeCodec } from './types';
import { checkNodeAtPath, encodeType } from './tree';
import {
  checkDecodedInteger,
  checkValue,
  dateFromSeconds,
  decodeBase64,
  describe,
  fail,
  formatObjectLink,
  integerText,
  isDecimalNumber,
  parseDecimalInteger,
  parseObjectLink,
  secondsFromDate,
  toBuffer,
} from './values';
import type { ObjectLink } from '../model/types';

/** Type and shape checks shared by the single-value formats (text, opaque, CBOR). */
export function singleValueTarget(
  path: LwM2mPath,
  model: ObjectModelLookup,
  formatName: string,
  code: '4.00' | '4.06',
): ResourceType | undefined {
  const level = path.level;
  if (level !== 3 && level !== 4) {
    fail(`${formatName} carries a single resource value; ${path} is not a resource or resource instance path`, code);
  }
  const def = model.getResource(path.objectId as number, path.resourceId as number);
  if (def) {
    if (level === 3 && def.multiple) {
      fail(`${formatName} carries a single value; ${path} is a multiple resource`, code);
    }
    if (level === 4 && !def.multiple) fail(`${path}: the model defines ${path.parent()} as a single resource`, code);
    if (def.type === 'none') fail(`${path}: resource is executable (type none) and has no value`, code);
  }
  return def?.type;
}

/** Decodes the text form of a single value of `type`. */
export function valueFromText(type: ResourceType, text: string, where: string): ResourceValue {
  switch (type) {
    case 'string':
    case 'corelnk':
      return text;
    case 'opaque':
      return decodeBase64(text.trim(), where);
    case 'integer':
    case 'unsigned': {
      const value = parseDecimalInteger(text.trim());
      if (value === undefined) fail(`${where}: ${describe(text)} is not a decimal integer`);
      return checkDecodedInteger(value, type, where);
    }
    case 'time': {
      const value = parseDecimalInteger(text.trim());
      if (value === undefined) fail(`${where}: ${describe(text)} is not a time in integer seconds`);
      return dateFromSeconds(value, where);
    }
    case 'float': {
      const trimmed = text.trim();
      if (!isDecimalNumber(trimmed)) fail(`${where}: ${describe(text)} is not a decimal number`);
      return Number(trimmed);
    }
    case 'boolean': {
      const trimmed = text.trim();
      if (trimmed === '1') return true;
      if (trimmed === '0') return false;
      return fail(`${where}: ${describe(text)} is not a boolean ("0" or "1")`);
    }
    case 'objlnk':
      return parseObjectLink(text.trim(), where);
    case 'none':
      return fail(`${where}: resource is executable (type none) and has no value`);
  }
}

/** The text form of a checked value of `type`. */
export function valueToText(type: ResourceType, value: ResourceValue, where: string): string {
  switch (type) {
    case 'string':
    case 'corelnk':
      return value as string;
    case 'opaque':
      return toBuffer(value as Buffer).toString('base64');
    case 'integer':
    case 'unsigned':
      return integerText(value as number | bigint);
    case 'float':
      if (!Number.isFinite(value as number)) fail(`${where}: ${value} cannot be represented in text`, '4.06');
      return String(value);
    case 'boolean':
      return value ? '1' : '0';
    case 'time':
      return String(secondsFromDate(value as Date));
    case 'objlnk':
      return formatObjectLink(value as ObjectLink);
    default:
      return fail(`${where}: resource type ${type} has no value`);
  }
}

export const textCodec: NodeCodec = {
  format: ContentFormat.TEXT,
  name: 'text/plain',
  decode(bytes: Buffer, path: LwM2mPath, model: ObjectModelLookup): LwM2mNode {
    const type = singleValueTarget(path, model, 'text/plain', '4.00') ?? 'string';
    const where = `text/plain for ${path}`;
    if (!isUtf8(bytes)) fail(`${where}: payload is not valid UTF-8`);
    const value = valueFromText(type, bytes.toString('utf8'), where);
    return path.level === 3
      ? { kind: 'resource', id: path.resourceId as number, type, value }
      : { kind: 'resourceInstance', id: path.resourceInstanceId as number, type, value };
  },
  encode(node: LwM2mNode, path: LwM2mPath, model: ObjectModelLookup): Buffer {
    checkNodeAtPath(node, path);
    if (node.kind !== 'resource' && node.kind !== 'resourceInstance') {
      fail(`text/plain carries a single value; cannot encode a ${node.kind} node at ${path}`, '4.06');
    }
    singleValueTarget(path, model, 'text/plain', '4.06');
    const where = `text/plain for ${path}`;
    const type = encodeType(model, path.objectId as number, path.resourceId as number, node.type, where);
    return Buffer.from(valueToText(type, checkValue(type, node.value, where), where), 'utf8');
  },
};
