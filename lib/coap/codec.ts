/**
 * The CoAP wire format (RFC 7252 §3, RFC 7959 block options): message types, option numbers and names, code bytes,
 * uint and block option values, a fast encoder, and a checked parser (to the result coap-packet gives). Stateless.
 * Byte counts in this file's comments are garbage per operation, from `node build/bench/read-allocs.js --profile`.
 */
import type { ParsedPacket } from 'coap-packet';
import { CODE_STRINGS, parsePacket } from './packet-parser';
import type { CoapCode, CoapMethod, CoapOption } from './types';

export type { ParsedPacket };

/** Message types (RFC 7252 §3). */
export const enum MessageType {
  CON = 0,
  NON = 1,
  ACK = 2,
  RST = 3,
}

/** Registered option numbers (RFC 7252 §12.2 and later RFCs), declared once here; inlined where used. */
export const enum OptionNumber {
  IfMatch = 1,
  UriHost = 3,
  ETag = 4,
  IfNoneMatch = 5,
  Observe = 6,
  UriPort = 7,
  LocationPath = 8,
  Oscore = 9,
  UriPath = 11,
  ContentFormat = 12,
  MaxAge = 14,
  UriQuery = 15,
  HopLimit = 16,
  Accept = 17,
  QBlock1 = 19,
  LocationQuery = 20,
  Block2 = 23,
  Block1 = 27,
  Size2 = 28,
  QBlock2 = 31,
  ProxyUri = 35,
  ProxyScheme = 39,
  Size1 = 60,
  Echo = 252,
  NoResponse = 258,
  RequestTag = 292,
  OcfAcceptContentFormatVersion = 2049,
  OcfContentFormatVersion = 2053,
}

/** Registered option numbers by name (names as coap-packet spells them). */
export const OptionNumbers: Readonly<Record<string, number>> = Object.freeze({
  'If-Match': OptionNumber.IfMatch,
  'Uri-Host': OptionNumber.UriHost,
  ETag: OptionNumber.ETag,
  'If-None-Match': OptionNumber.IfNoneMatch,
  Observe: OptionNumber.Observe,
  'Uri-Port': OptionNumber.UriPort,
  'Location-Path': OptionNumber.LocationPath,
  OSCORE: OptionNumber.Oscore,
  'Uri-Path': OptionNumber.UriPath,
  'Content-Format': OptionNumber.ContentFormat,
  'Max-Age': OptionNumber.MaxAge,
  'Uri-Query': OptionNumber.UriQuery,
  'Hop-Limit': OptionNumber.HopLimit,
  Accept: OptionNumber.Accept,
  'Q-Block1': OptionNumber.QBlock1,
  'Location-Query': OptionNumber.LocationQuery,
  Block2: OptionNumber.Block2,
  Block1: OptionNumber.Block1,
  Size2: OptionNumber.Size2,
  'Q-Block2': OptionNumber.QBlock2,
  'Proxy-Uri': OptionNumber.ProxyUri,
  'Proxy-Scheme': OptionNumber.ProxyScheme,
  Size1: OptionNumber.Size1,
  Echo: OptionNumber.Echo,
  'No-Response': OptionNumber.NoResponse,
  'Request-Tag': OptionNumber.RequestTag,
  'OCF-Accept-Content-Format-Version': OptionNumber.OcfAcceptContentFormatVersion,
  'OCF-Content-Format-Version': OptionNumber.OcfContentFormatVersion,
});

const NAME_BY_NUMBER = new Map<number, string>();
for (const [name, num] of Object.entries(OptionNumbers)) NAME_BY_NUMBER.set(num, name);

/** Option number of a name ('Uri-Path' -> 11) or numeric string/number; throws on unknown names. */
export function optionNumber(name: string | number): number {
  if (typeof name === 'number') return name;
  const n = OptionNumbers[name];
  if (n !== undefined) return n;
  const p = Number(name);
  if (Number.isInteger(p) && p >= 0 && p <= 65535 && name.length > 0) return p;
  throw new TypeError(`unknown CoAP option '${name}'`);
}

/** The registered name of an option number, or the number itself. */
export function optionName(num: number): string | number {
  return NAME_BY_NUMBER.get(num) ?? num;
}

/** Critical options have odd numbers (RFC 7252 §5.4.6). */
export function isCriticalOption(num: number): boolean {
  return (num & 1) === 1;
}

// ---------------------------------------------------------------- codes

/** Code bytes (class << 5 | detail) of the responses the endpoint makes up itself; inlined where used. */
export const enum CodeByte {
  /** 2.31 Continue (RFC 7959 §2.9.1). */
  Continue = (2 << 5) | 31,
  BadRequest = 4 << 5,
  BadOption = (4 << 5) | 2,
  MethodNotAllowed = (4 << 5) | 5,
  /** 4.08 Request Entity Incomplete (RFC 7959 §2.9.2). */
  RequestEntityIncomplete = (4 << 5) | 8,
  /** 4.13 Request Entity Too Large (RFC 7959 §2.9.3). */
  RequestEntityTooLarge = (4 << 5) | 13,
  InternalServerError = 5 << 5,
  ServiceUnavailable = (5 << 5) | 3,
  ProxyingNotSupported = (5 << 5) | 5,
}

export const METHOD_CODES: Readonly<Record<CoapMethod, number>> = Object.freeze({
  GET: 1,
  POST: 2,
  PUT: 3,
  DELETE: 4,
  FETCH: 5,
  PATCH: 6,
  iPATCH: 7,
});

export const METHOD_BY_CODE: ReadonlyArray<CoapMethod | undefined> = [
  undefined,
  'GET',
  'POST',
  'PUT',
  'DELETE',
  'FETCH',
  'PATCH',
  'iPATCH',
];

const CODE_BYTES = new Map<string, number>();
for (let b = 0; b < 256; b++) CODE_BYTES.set(CODE_STRINGS[b], b);
for (const [m, c] of Object.entries(METHOD_CODES)) CODE_BYTES.set(m, c);

/** '2.05' for the code byte 0x45. */
export function codeFromByte(byte: number): CoapCode {
  return CODE_STRINGS[byte & 255];
}

/** The code byte of a dotted code ('2.05'), a method name ('GET') or an HTTP-like number string ('205'). */
export function codeToByte(code: CoapCode | CoapMethod): number {
  const b = CODE_BYTES.get(code);
  if (b !== undefined) return b;
  const m = /^([0-7])\.?([0-3][0-9])$/.exec(code);
  if (m !== null) {
    const d = Number(m[2]);
    if (d < 32) return (Number(m[1]) << 5) | d;
  }
  throw new TypeError(`invalid CoAP code '${code}'`);
}

/** The class of a code: 0 request, 2 success, 4 client error, 5 server error. */
export function coapCodeClass(code: CoapCode): number {
  const c = code.charCodeAt(0) - 48;
  return c >= 0 && c <= 7 ? c : -1;
}

/** True for 2.xx. */
export function isSuccessCode(code: CoapCode): boolean {
  return code.charCodeAt(0) === 50;
}

// ---------------------------------------------------------------- uint options

/** Minimal-length big-endian encoding of a uint option value (0 -> empty). */
export function encodeUint(value: number): Buffer {
  const n = uintLength(value);
  const b = Buffer.allocUnsafe(n);
  writeUint(b, 0, value, n);
  return b;
}

/** Bytes needed for a uint option value (0..2^32-1; larger up to 2^48 uses up to 6 bytes). */
export function uintLength(value: number): number {
  if (value === 0) return 0;
  if (value < 0x100) return 1;
  if (value < 0x10000) return 2;
  if (value < 0x1000000) return 3;
  if (value < 0x100000000) return 4;
  if (value < 0x10000000000) return 5;
  return 6;
}

function writeUint(buf: Buffer, pos: number, value: number, n: number): void {
  for (let i = n - 1; i >= 0; i--) {
    buf[pos + i] = value & 255;
    value = Math.floor(value / 256);
  }
}

/** Decodes a uint option value (any length up to 6 bytes). */
export function decodeUint(buf: Buffer): number {
  let v = 0;
  for (let i = 0; i < buf.length; i++) v = v * 256 + buf[i];
  return v;
}

// ---------------------------------------------------------------- option helpers

function sameOption(o: CoapOption, num: number, name: string | undefined): boolean {
  const on = o.name;
  if (typeof on === 'number') return on === num;
  if (on === name) return true;
  return OptionNumbers[on] === num || (name === undefined && Number(on) === num);
}

/** The first value of an option, by name or number. */
export function getOption(options: readonly CoapOption[], name: string | number): Buffer | undefined {
  const num = optionNumber(name);
  const nm = NAME_BY_NUMBER.get(num);
  for (let i = 0; i < options.length; i++) if (sameOption(options[i], num, nm)) return options[i].value;
  return undefined;
}

/** Every value of a repeatable option, in order. */
export function getOptions(options: readonly CoapOption[], name: string | number): Buffer[] {
  const num = optionNumber(name);
  const nm = NAME_BY_NUMBER.get(num);
  const out: Buffer[] = [];
  for (let i = 0; i < options.length; i++) if (sameOption(options[i], num, nm)) out.push(options[i].value);
  return out;
}

/**
 * The value of a Content-Format or Accept option: a uint of 0 to 2 bytes (RFC 7252 §5.10.3, §5.10.4).
 * A longer value is outside the option's defined length, and such an option "MUST be treated like an
 * unrecognized option" (§5.4.3): undefined here, never a number no format can have. Callers then
 * ignore an elective Content-Format (as if absent) and refuse a critical Accept (4.02).
 */
export function decodeFormatOption(value: Buffer): number | undefined {
  switch (value.length) {
    case 0:
      return 0;
    case 1:
      return value[0];
    case 2:
      return (value[0] << 8) | value[1];
    default:
      return undefined;
  }
}

function formatOption(options: readonly CoapOption[], name: string): number | undefined {
  const v = getOption(options, name);
  return v === undefined ? undefined : decodeFormatOption(v);
}

function uintOption(options: readonly CoapOption[], name: string): number | undefined {
  const v = getOption(options, name);
  return v === undefined ? undefined : decodeUint(v);
}

function stringOptions(options: readonly CoapOption[], name: string): string[] {
  return getOptions(options, name).map((b) => b.toString('utf8'));
}

/** Content-Format; undefined when absent or longer than 2 bytes (to be ignored, RFC 7252 §5.4.3). */
export const getContentFormat = (options: readonly CoapOption[]): number | undefined =>
  formatOption(options, 'Content-Format');
/** Accept; undefined when absent or longer than 2 bytes (an unrecognised critical option then). */
export const getAccept = (options: readonly CoapOption[]): number | undefined => formatOption(options, 'Accept');
export const getObserve = (options: readonly CoapOption[]): number | undefined => uintOption(options, 'Observe');
export const getMaxAge = (options: readonly CoapOption[]): number | undefined => uintOption(options, 'Max-Age');
export const getSize1 = (options: readonly CoapOption[]): number | undefined => uintOption(options, 'Size1');
export const getSize2 = (options: readonly CoapOption[]): number | undefined => uintOption(options, 'Size2');
export const getUriPath = (options: readonly CoapOption[]): string[] => stringOptions(options, 'Uri-Path');
export const getUriQuery = (options: readonly CoapOption[]): string[] => stringOptions(options, 'Uri-Query');
export const getLocationPath = (options: readonly CoapOption[]): string[] => stringOptions(options, 'Location-Path');
export const getLocationQuery = (options: readonly CoapOption[]): string[] => stringOptions(options, 'Location-Query');

/** A uint option ready to put in `OutgoingResponse.options` / `OutgoingRequest.options`. */
export function makeUintOption(name: string | number, value: number): CoapOption {
  return { name, value: encodeUint(value) };
}

/** A string option (UTF-8). */
export function makeStringOption(name: string | number, value: string): CoapOption {
  return { name, value: Buffer.from(value, 'utf8') };
}

// ---------------------------------------------------------------- block options (RFC 7959)

export interface BlockOption {
  num: number;
  more: boolean;
  /** Size exponent: size = 2^(szx+4). */
  szx: number;
  size: number;
}

/** Decodes a Block1/Block2 value; undefined when malformed or BERT (szx 7, unsupported over UDP). */
export function decodeBlock(value: Buffer): BlockOption | undefined {
  if (value.length > 3) return undefined;
  const v = decodeUint(value);
  const szx = v & 7;
  if (szx === 7) return undefined;
  return { num: v >>> 4, more: (v & 8) !== 0, szx, size: 1 << (szx + 4) };
}

/** The uint value of a block option. */
export function blockValue(num: number, more: boolean, szx: number): number {
  return num * 16 + (more ? 8 : 0) + szx;
}

export function encodeBlock(num: number, more: boolean, szx: number): Buffer {
  return encodeUint(blockValue(num, more, szx));
}

/** Largest szx whose size is <= size (clamped to 16..1024). */
export function sizeToSzx(size: number): number {
  let szx = 6;
  while (szx > 0 && 1 << (szx + 4) > size) szx--;
  return szx;
}

export function szxToSize(szx: number): number {
  return 1 << (szx + 4);
}

// ---------------------------------------------------------------- encoder

/** An option to encode: number plus a Buffer, a UTF-8 string, or a uint (minimal length). */
export interface EncOption {
  n: number;
  v: Buffer | string | number;
}

const lens: number[] = [];

/**
 * A list of options reused from one message to the next: its EncOption objects are overwritten rather than
 * made anew. A request's options (Uri-Path segments, Accept, ...) cost about 300 bytes a message as new objects
 * in a new array grown by push. For options that are encoded at once and not kept (encodeMessage copies them).
 */
export class OptionList {
  readonly items: EncOption[] = [];
  length = 0;

  add(n: number, v: Buffer | string | number): void {
    const o = this.items[this.length];
    if (o === undefined) this.items.push({ n, v });
    else {
      o.n = n;
      o.v = v;
    }
    this.length++;
  }

  /** Empties the list, letting go of the values it held. */
  clear(): void {
    for (let i = 0; i < this.length; i++) this.items[i].v = 0;
    this.length = 0;
  }
}

function strLen(s: string): number {
  for (let i = 0; i < s.length; i++) if (s.charCodeAt(i) > 127) return Buffer.byteLength(s, 'utf8');
  return s.length;
}

function sortOptions(opts: EncOption[], count: number): void {
  // insertion sort: stable, fast for the handful of options a message has
  for (let i = 1; i < count; i++) {
    const o = opts[i];
    let j = i - 1;
    if (opts[j].n <= o.n) continue;
    while (j >= 0 && opts[j].n > o.n) {
      opts[j + 1] = opts[j];
      j--;
    }
    opts[j + 1] = o;
  }
}

/**
 * Encodes a CoAP message. `options` need not be sorted (they are sorted in place, stably); only the first
 * `optionCount` of them are encoded (all by default: a reused list may be longer, see OptionList).
 * Tokens up to 8 bytes (RFC 7252) and extended ones up to 268 (RFC 8974).
 */
export function encodeMessage(
  type: MessageType,
  code: number,
  messageId: number,
  token: Buffer | undefined,
  options: EncOption[] | undefined,
  payload: Buffer | undefined,
  optionCount = options === undefined ? 0 : options.length,
): Buffer {
  const tkl = token === undefined ? 0 : token.length;
  let len = 4 + tkl + (tkl > 12 ? 1 : 0);
  if (tkl > 268) throw new RangeError('token too long');
  const no = optionCount;
  if (no > 1) sortOptions(options!, no);
  let prev = 0;
  for (let i = 0; i < no; i++) {
    const o = options![i];
    const v = o.v;
    const vl = typeof v === 'number' ? uintLength(v) : typeof v === 'string' ? strLen(v) : v.length;
    lens[i] = vl;
    const d = o.n - prev;
    if (d < 0) throw new RangeError('options out of order');
    prev = o.n;
    len += 1 + vl + (d < 13 ? 0 : d < 269 ? 1 : 2) + (vl < 13 ? 0 : vl < 269 ? 1 : 2);
  }
  const pl = payload === undefined ? 0 : payload.length;
  if (pl > 0) len += 1 + pl;
  const buf = Buffer.allocUnsafe(len);
  buf[0] = 0x40 | (type << 4) | (tkl < 13 ? tkl : 13);
  buf[1] = code;
  buf[2] = (messageId >> 8) & 255;
  buf[3] = messageId & 255;
  let pos = 4;
  if (tkl > 12) buf[pos++] = tkl - 13;
  if (tkl > 0) {
    token!.copy(buf, pos);
    pos += tkl;
  }
  prev = 0;
  for (let i = 0; i < no; i++) {
    const o = options![i];
    const vl = lens[i];
    const d = o.n - prev;
    prev = o.n;
    const hpos = pos++;
    let h: number;
    if (d < 13) h = d << 4;
    else if (d < 269) {
      h = 13 << 4;
      buf[pos++] = d - 13;
    } else {
      h = 14 << 4;
      buf.writeUInt16BE(d - 269, pos);
      pos += 2;
    }
    if (vl < 13) h |= vl;
    else if (vl < 269) {
      h |= 13;
      buf[pos++] = vl - 13;
    } else {
      h |= 14;
      buf.writeUInt16BE(vl - 269, pos);
      pos += 2;
    }
    buf[hpos] = h;
    const v = o.v;
    if (typeof v === 'number') writeUint(buf, pos, v, vl);
    else if (typeof v === 'string') {
      if (vl === v.length) for (let k = 0; k < vl; k++) buf[pos + k] = v.charCodeAt(k);
      else buf.write(v, pos, vl, 'utf8');
    } else if (vl > 0) v.copy(buf, pos);
    pos += vl;
  }
  if (pl > 0) {
    buf[pos++] = 0xff;
    payload!.copy(buf, pos);
  }
  return buf;
}

/** A 4-byte empty message (ACK or RST, or a CON ping). */
export function emptyMessage(type: MessageType, messageId: number): Buffer {
  const b = Buffer.allocUnsafe(4);
  b[0] = 0x40 | (type << 4);
  b[1] = 0;
  b[2] = (messageId >> 8) & 255;
  b[3] = messageId & 255;
  return b;
}

/**
 * Structural check coap-packet does not do (it silently truncates): token and option lengths within
 * the datagram, no reserved nibbles, no payload marker without payload. Allocation-free.
 */
export function isWellFormed(data: Buffer): boolean {
  const len = data.length;
  if (len < 4 || data[0] >> 6 !== 1) return false;
  const tkl = data[0] & 15;
  let pos = 4;
  if (tkl <= 8) pos += tkl;
  else if (tkl === 13) {
    if (len < 5) return false;
    pos += 1 + data[4] + 13; // RFC 8974 extended token
  } else if (tkl === 14) {
    if (len < 6) return false;
    pos += 2 + ((data[4] << 8) | data[5]) + 269;
  } else return false;
  if (pos > len) return false;
  if (data[1] === 0) return pos === len && tkl === 0; // empty message: exactly 4 bytes
  while (pos < len) {
    const b = data[pos++];
    if (b === 0xff) return pos < len; // payload marker must be followed by payload
    const d = b >> 4;
    let l = b & 15;
    if (d === 13) {
      if (pos >= len) return false;
      pos++;
    } else if (d === 14) {
      if (pos + 1 >= len) return false;
      pos += 2;
    } else if (d === 15) return false;
    if (l === 13) {
      if (pos >= len) return false;
      l = data[pos++] + 13;
    } else if (l === 14) {
      if (pos + 1 >= len) return false;
      l = ((data[pos] << 8) | data[pos + 1]) + 269;
      pos += 2;
    } else if (l === 15) return false;
    pos += l;
    if (pos > len) return false;
  }
  return true;
}

/**
 * Parses after the structural check; undefined when malformed. `knownToken`: the token the message is expected
 * to carry (the response to one of our requests); when it does, the result's token is that Buffer instead of a
 * new view of the same bytes (about 100 bytes less per response).
 */
export function parseMessage(data: Buffer, knownToken?: Buffer): ParsedPacket | undefined {
  if (!isWellFormed(data)) return undefined;
  try {
    return parsePacket(data, knownToken);
  } catch {
    return undefined;
  }
}

/** coap-packet names unregistered options by their number as a string; the public API uses numbers. */
export function normaliseParsedOptions(options: ParsedPacket['options']): CoapOption[] {
  for (let i = 0; i < options.length; i++) {
    const o = options[i] as CoapOption;
    if (typeof o.name === 'string' && OptionNumbers[o.name] === undefined) o.name = Number(o.name);
  }
  return options as CoapOption[];
}
