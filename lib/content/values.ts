/**
 * Value helpers shared by the codecs: checking JS values against resource types before encoding,
 * 64-bit integer handling, time, object links and strict base64.
 *
 * Nothing here allocates more than the value it returns; no regular expressions on the hot path.
 */
import type { ObjectLink, ResourceType, ResourceValue } from '../model/types';
import { ContentCodecError } from './types';
import { CborMap, CborTag } from './cbor-reader';

export const INT64_MIN = -(2n ** 63n);
export const INT64_MAX = 2n ** 63n - 1n;
export const UINT64_MAX = 2n ** 64n - 1n;
/** Largest |seconds| a JS Date can hold (8.64e15 ms). */
export const MAX_DATE_SECONDS = 8.64e12;

export function fail(message: string, code: '4.00' | '4.06' | '4.15' = '4.00'): never {
  throw new ContentCodecError(message, code);
}

/** A short description of a JS value for error messages (never dumps a whole buffer). */
export function describe(value: unknown): string {
  if (value === null) return 'null';
  if (value === undefined) return 'undefined';
  switch (typeof value) {
    case 'string':
      return value.length > 40 ? `string "${value.slice(0, 40)}..."` : `string ${JSON.stringify(value)}`;
    case 'number':
      return `number ${value}`;
    case 'bigint':
      return `bigint ${value}`;
    case 'boolean':
      return `boolean ${value}`;
    case 'object':
      if (Buffer.isBuffer(value)) return `Buffer(${value.length})`;
      if (value instanceof Uint8Array) return `Uint8Array(${value.length})`;
      if (value instanceof Date) return `Date ${isNaN(value.getTime()) ? 'Invalid Date' : value.toISOString()}`;
      if (Array.isArray(value)) return `array(${value.length})`;
      if (value instanceof Map) return `Map(${value.size})`;
      if (value instanceof CborMap) return `map(${value.size})`;
      if (value instanceof CborTag) return `tag ${value.tag}`;
      return `object ${(value as object).constructor?.name ?? ''}`.trimEnd();
    default:
      return typeof value;
  }
}

/** Integers are numbers when safe, bigint beyond 2^53 (see lib/model/types.ts). */
export function normalizeBigInt(value: bigint): number | bigint {
  return value >= -9007199254740991n && value <= 9007199254740991n ? Number(value) : value;
}

export function isObjectLink(value: unknown): value is ObjectLink {
  if (typeof value !== 'object' || value === null) return false;
  const link = value as ObjectLink;
  return isU16(link.objectId) && isU16(link.instanceId);
}

function isU16(n: unknown): n is number {
  return typeof n === 'number' && Number.isInteger(n) && n >= 0 && n <= 65535;
}

/**
 * Checks that `value` has the JS shape of `type` (see lib/model/types.ts); returns it unchanged.
 * Integers may be numbers (integral, within range) or bigints. Throws ContentCodecError('4.00').
 */
export function checkValue(type: ResourceType, value: unknown, where: string): ResourceValue {
  switch (type) {
    case 'string':
    case 'corelnk':
      if (typeof value === 'string') return value;
      break;
    case 'integer':
    case 'unsigned': {
      const min = type === 'integer' ? INT64_MIN : 0n;
      const max = type === 'integer' ? INT64_MAX : UINT64_MAX;
      if (typeof value === 'number') {
        if (Number.isInteger(value)) {
          if (
            Number.isSafeInteger(value)
              ? value >= (type === 'integer' ? -Infinity : 0)
              : inRange(BigInt(value), min, max)
          )
            return value;
          fail(
            `${where}: ${value} is out of range for ${type === 'integer' ? 'a 64-bit integer' : 'an unsigned 64-bit integer'}`,
          );
        }
      } else if (typeof value === 'bigint') {
        if (inRange(value, min, max)) return value;
        fail(
          `${where}: ${value} is out of range for ${type === 'integer' ? 'a 64-bit integer' : 'an unsigned 64-bit integer'}`,
        );
      }
      break;
    }
    case 'float':
      if (typeof value === 'number') return value;
      break;
    case 'boolean':
      if (typeof value === 'boolean') return value;
      break;
    case 'opaque':
      if (value instanceof Uint8Array) return toBuffer(value);
      break;
    case 'time':
      if (value instanceof Date) {
        if (isNaN(value.getTime())) fail(`${where}: Invalid Date for a time resource`);
        return value;
      }
      break;
    case 'objlnk':
      if (isObjectLink(value)) return value;
      break;
    case 'none':
      fail(`${where}: resource is executable (type none) and has no value to encode`);
  }
  return fail(`${where}: ${describe(value)} does not fit resource type ${type}`);
}

function inRange(value: bigint, min: bigint, max: bigint): boolean {
  return value >= min && value <= max;
}

/** A Buffer view of a Uint8Array (no copy). */
export function toBuffer(bytes: Uint8Array): Buffer {
  return Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

/** An integer value (already checked) as bigint. */
export function toBigInt(value: number | bigint): bigint {
  return typeof value === 'bigint' ? value : BigInt(value);
}

/** A Date from whole or fractional seconds since the epoch; ContentCodecError when out of Date range. */
export function dateFromSeconds(seconds: number | bigint, where: string): Date {
  const s = typeof seconds === 'bigint' ? Number(seconds) : seconds;
  if (!Number.isFinite(s) || s > MAX_DATE_SECONDS || s < -MAX_DATE_SECONDS) {
    fail(`${where}: time ${seconds} is out of range`);
  }
  return new Date(s * 1000);
}

/** Whole seconds since the epoch (LwM2M time). */
export function secondsFromDate(date: Date): number {
  return Math.floor(date.getTime() / 1000);
}

/** "3:0" -> { objectId: 3, instanceId: 0 }; strict (1..5 digits each, <= 65535). */
export function parseObjectLink(text: string, where: string): ObjectLink {
  const colon = text.indexOf(':');
  const objectId = colon > 0 ? parseU16(text, 0, colon) : -1;
  const instanceId = colon > 0 ? parseU16(text, colon + 1, text.length) : -1;
  if (objectId < 0 || instanceId < 0) fail(`${where}: invalid object link ${JSON.stringify(text.slice(0, 40))}`);
  return { objectId, instanceId };
}

function parseU16(text: string, start: number, end: number): number {
  if (end <= start || end - start > 5) return -1;
  let n = 0;
  for (let i = start; i < end; i++) {
    const c = text.charCodeAt(i) - 48;
    if (c < 0 || c > 9) return -1;
    n = n * 10 + c;
  }
  return n > 65535 ? -1 : n;
}

export function formatObjectLink(link: ObjectLink): string {
  return `${link.objectId}:${link.instanceId}`;
}

/**
 * Parses a decimal integer ("-12", "+7", "18446744073709551615") exactly, or returns undefined when
 * the text is not one. Numbers beyond 2^53 come back as bigint.
 */
export function parseDecimalInteger(text: string): number | bigint | undefined {
  const length = text.length;
  let i = 0;
  if (length > 0 && (text.charCodeAt(0) === 45 || text.charCodeAt(0) === 43)) i = 1;
  if (i === length) return undefined;
  for (let j = i; j < length; j++) {
    const c = text.charCodeAt(j);
    if (c < 48 || c > 57) return undefined;
  }
  if (length - i <= 15) return Number(text) || 0; // no -0
  return normalizeBigInt(BigInt(text));
}

/** Exact decimal digits of an integer value (String() would round an integral double beyond 2^53). */
export function integerText(value: number | bigint): string {
  return typeof value === 'number' && !Number.isSafeInteger(value) ? BigInt(value).toString() : String(value);
}

/** Throws unless `id` is an LwM2M id (0..65535). */
export function checkId(id: unknown, where: string): void {
  if (typeof id !== 'number' || !Number.isInteger(id) || id < 0 || id > 65535) {
    fail(`${where}: id ${String(id)} is not an integer in 0..65535`);
  }
}

/** True when `text` is a JSON-style decimal number: -?digits[.digits][(e|E)[+-]digits] (leading + allowed). */
export function isDecimalNumber(text: string): boolean {
  const length = text.length;
  let i = 0;
  let c = text.charCodeAt(0);
  if (c === 45 || c === 43) i++;
  const intStart = i;
  while (i < length && (c = text.charCodeAt(i)) >= 48 && c <= 57) i++;
  let digits = i - intStart;
  if (i < length && text.charCodeAt(i) === 46) {
    i++;
    const fracStart = i;
    while (i < length && (c = text.charCodeAt(i)) >= 48 && c <= 57) i++;
    digits += i - fracStart;
  }
  if (digits === 0) return false;
  if (i < length && (text.charCodeAt(i) | 32) === 101) {
    i++;
    if (i < length && ((c = text.charCodeAt(i)) === 45 || c === 43)) i++;
    const expStart = i;
    while (i < length && (c = text.charCodeAt(i)) >= 48 && c <= 57) i++;
    if (i === expStart) return false;
  }
  return i === length;
}

/** Checks an integer (number or bigint) against the range of `type`, returns the normalized value. */
export function checkDecodedInteger(
  value: number | bigint,
  type: 'integer' | 'unsigned',
  where: string,
): number | bigint {
  if (typeof value === 'number') {
    if (!Number.isInteger(value)) fail(`${where}: ${value} is not an integer`);
    if (Number.isSafeInteger(value)) {
      if (type === 'unsigned' && value < 0) fail(`${where}: ${value} is negative for an unsigned resource`);
      return value;
    }
    // an integral double beyond 2^53: it was rounded somewhere before us, but it is what we got
    value = BigInt(value);
  }
  if (type === 'integer' ? value < INT64_MIN || value > INT64_MAX : value < 0n || value > UINT64_MAX) {
    fail(
      `${where}: ${value} is out of range for ${type === 'integer' ? 'a 64-bit integer' : 'an unsigned 64-bit integer'}`,
    );
  }
  return normalizeBigInt(value);
}

const BASE64_CHAR = (() => {
  const table = new Uint8Array(128);
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';
  for (let i = 0; i < alphabet.length; i++) table[alphabet.charCodeAt(i)] = 1;
  table[43] = 2; // +
  table[47] = 2; // /
  table[45] = 3; // -
  table[95] = 3; // _
  return table;
})();

/**
 * Strict base64 / base64url decoding (RFC 4648 §4 and §5, padding optional). Node's own decoder
 * silently skips invalid characters, so the text is validated first.
 */
export function decodeBase64(text: string, where: string): Buffer {
  let end = text.length;
  let pad = 0;
  while (end > 0 && text.charCodeAt(end - 1) === 61 && pad < 2) {
    end--;
    pad++;
  }
  let std = false;
  let url = false;
  for (let i = 0; i < end; i++) {
    const c = text.charCodeAt(i);
    const kind = c < 128 ? BASE64_CHAR[c] : 0;
    if (kind === 0) fail(`${where}: invalid base64 character at offset ${i}`);
    if (kind === 2) std = true;
    else if (kind === 3) url = true;
  }
  if (std && url) fail(`${where}: base64 mixes the standard and URL-safe alphabets`);
  if (end % 4 === 1 || (pad > 0 && (end + pad) % 4 !== 0)) fail(`${where}: invalid base64 length`);
  return Buffer.from(text, url ? 'base64url' : 'base64');
}
