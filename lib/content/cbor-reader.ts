/**
 * A small strict CBOR reader (RFC 8949) for what devices send: one data item, decoded with every map
 * entry kept in order (a CborMap of keys and values, repeated keys included) so that the LwM2M
 * formats can merge or refuse them instead of a JS Map silently keeping the last.
 *
 * Integers are numbers when safe, bigint beyond 2^53; byte strings are Buffers (copies); text must be
 * UTF-8; definite and indefinite lengths; tags 0 and 1 (dates), 2 and 3 (bignums), 4 and 5 (decimal
 * fractions and bigfloats, as numbers), 259 (a map) and 55799 (self-described CBOR) are understood;
 * any other tag is kept as a CborTag for the caller to refuse. Nesting (arrays, maps and tags) is
 * bounded by CBOR_MAX_DEPTH. Anything malformed is ContentCodecError('4.00') naming the byte offset.
 */
import { isUtf8 } from 'node:buffer';
import { ContentCodecError } from './types';

export type CborValue =
  number | bigint | string | boolean | null | undefined | Buffer | Date | CborValue[] | CborMap | CborTag;

/** A CBOR map as written: keys[i] goes with values[i], in order, repeated keys kept. */
export class CborMap {
  constructor(
    readonly keys: CborValue[],
    readonly values: CborValue[],
  ) {}

  get size(): number {
    return this.keys.length;
  }
}

/** A tag this reader gives no meaning to, with its content. */
export class CborTag {
  constructor(
    readonly tag: number | bigint,
    readonly value: CborValue,
  ) {}
}

/** Arrays, maps and tags nested deeper than this are refused (as JSON, see json.ts). */
export const CBOR_MAX_DEPTH = 32;

const MAX_SAFE = Number.MAX_SAFE_INTEGER;
const BREAK = 0xff;

/** Decodes the one data item `bytes` holds; `what` prefixes error messages. */
export function readCbor(bytes: Buffer, what: string): CborValue {
  if (bytes.length === 0) throw new ContentCodecError(`${what}: empty payload`);
  const reader = new CborReader(bytes, what);
  const value = reader.item();
  if (reader.pos !== bytes.length) reader.error('unexpected bytes after the data item');
  return value;
}

class CborReader {
  pos = 0;
  private depth = 0;

  constructor(
    private readonly bytes: Buffer,
    private readonly what: string,
  ) {}

  error(reason: string, at = this.pos): never {
    throw new ContentCodecError(`${this.what}: invalid CBOR at byte ${at}: ${reason}`);
  }

  item(): CborValue {
    const bytes = this.bytes;
    const start = this.pos;
    if (start >= bytes.length) this.error('unexpected end of input');
    const initial = bytes[start];
    this.pos = start + 1;
    const major = initial >> 5;
    const info = initial & 0x1f;
    if (major === 7) return this.simple(info, start);
    if (info === 31) return this.indefinite(major, start);
    const argument = this.argument(info, start);
    switch (major) {
      case 0:
        return argument;
      case 1:
        return typeof argument === 'number' && argument < MAX_SAFE ? -1 - argument : -1n - BigInt(argument);
      case 2: {
        const end = this.stringEnd(argument, start);
        return Buffer.from(bytes.subarray(this.pos, (this.pos = end)));
      }
      case 3: {
        const end = this.stringEnd(argument, start);
        return this.text(this.pos, (this.pos = end), start);
      }
      case 4: {
        const count = this.count(argument, 1, start);
        this.enter(start);
        const array: CborValue[] = new Array(count);
        for (let i = 0; i < count; i++) array[i] = this.item();
        this.depth--;
        return array;
      }
      case 5: {
        const count = this.count(argument, 2, start);
        this.enter(start);
        const keys: CborValue[] = new Array(count);
        const values: CborValue[] = new Array(count);
        for (let i = 0; i < count; i++) {
          keys[i] = this.item();
          values[i] = this.item();
        }
        this.depth--;
        return new CborMap(keys, values);
      }
      default:
        return this.tag(argument, start);
    }
  }

  /** The argument of a head whose initial byte (at `start`) has additional information `info`. */
  private argument(info: number, start: number): number | bigint {
    if (info < 24) return info;
    const bytes = this.bytes;
    const pos = this.pos;
    const size = info === 24 ? 1 : info === 25 ? 2 : info === 26 ? 4 : info === 27 ? 8 : 0;
    if (size === 0) this.error(`reserved additional information ${info}`, start);
    if (pos + size > bytes.length) this.error('unexpected end of input', start);
    this.pos = pos + size;
    switch (size) {
      case 1:
        return bytes[pos];
      case 2:
        return bytes.readUInt16BE(pos);
      case 4:
        return bytes.readUInt32BE(pos);
      default: {
        const high = bytes.readUInt32BE(pos);
        const low = bytes.readUInt32BE(pos + 4);
        return high < 0x200000 ? high * 0x100000000 + low : (BigInt(high) << 32n) | BigInt(low);
      }
    }
  }

  /** The end of a string of `length` bytes starting at the current position. */
  private stringEnd(length: number | bigint, start: number): number {
    if (typeof length === 'bigint' || length > this.bytes.length - this.pos) {
      this.error(`string length ${length} runs past the end of the payload`, start);
    }
    return this.pos + length;
  }

  /** An element count, checked against the bytes left (each element takes at least `minBytes`). */
  private count(length: number | bigint, minBytes: number, start: number): number {
    if (typeof length === 'bigint' || length * minBytes > this.bytes.length - this.pos) {
      this.error(`${minBytes === 1 ? 'array' : 'map'} of ${length} items runs past the end of the payload`, start);
    }
    return length;
  }

  private text(from: number, to: number, start: number): string {
    const bytes = this.bytes;
    let ascii = true;
    for (let i = from; i < to; i++) {
      if (bytes[i] >= 0x80) {
        ascii = false;
        break;
      }
    }
    if (ascii) return bytes.toString('latin1', from, to);
    if (!isUtf8(bytes.subarray(from, to))) this.error('text string is not valid UTF-8', start);
    return bytes.toString('utf8', from, to);
  }

  private enter(start: number): void {
    if (++this.depth > CBOR_MAX_DEPTH) this.error(`nesting deeper than ${CBOR_MAX_DEPTH}`, start);
  }

  /** An indefinite-length item (RFC 8949 §3.2): strings of chunks, arrays and maps up to the break. */
  private indefinite(major: number, start: number): CborValue {
    const bytes = this.bytes;
    switch (major) {
      case 2:
      case 3: {
        const chunks: Buffer[] = [];
        for (;;) {
          if (this.pos >= bytes.length) this.error('unterminated indefinite-length string', start);
          const chunkStart = this.pos;
          const initial = bytes[chunkStart];
          if (initial === BREAK) {
            this.pos++;
            break;
          }
          if (initial >> 5 !== major || (initial & 0x1f) === 31) {
            this.error('a chunk of an indefinite-length string must be a definite string of the same type', chunkStart);
          }
          this.pos++;
          const end = this.stringEnd(this.argument(initial & 0x1f, chunkStart), chunkStart);
          chunks.push(bytes.subarray(this.pos, (this.pos = end)));
        }
        const joined = Buffer.concat(chunks);
        // each chunk must be valid UTF-8 by itself (RFC 8949 §3.2.3); the whole then is too
        if (major === 2) return joined;
        for (const chunk of chunks) if (!isUtf8(chunk)) this.error('text string is not valid UTF-8', start);
        return joined.toString('utf8');
      }
      case 4: {
        this.enter(start);
        const array: CborValue[] = [];
        while (!this.atBreak(start)) array.push(this.item());
        this.depth--;
        return array;
      }
      case 5: {
        this.enter(start);
        const keys: CborValue[] = [];
        const values: CborValue[] = [];
        while (!this.atBreak(start)) {
          keys.push(this.item());
          if (this.bytes[this.pos] === BREAK) this.error('map ends between a key and its value');
          values.push(this.item());
        }
        this.depth--;
        return new CborMap(keys, values);
      }
      default:
        return this.error(`major type ${major} cannot have an indefinite length`, start);
    }
  }

  /** True (and consumed) when the next byte is the break that ends the container begun at `start`. */
  private atBreak(start: number): boolean {
    if (this.pos >= this.bytes.length) this.error('unterminated indefinite-length container', start);
    if (this.bytes[this.pos] !== BREAK) return false;
    this.pos++;
    return true;
  }

  private simple(info: number, start: number): CborValue {
    const bytes = this.bytes;
    switch (info) {
      case 20:
        return false;
      case 21:
        return true;
      case 22:
        return null;
      case 23:
        return undefined;
      case 25:
        if (this.pos + 2 > bytes.length) this.error('unexpected end of input', start);
        return halfFloat(bytes.readUInt16BE((this.pos += 2) - 2));
      case 26:
        if (this.pos + 4 > bytes.length) this.error('unexpected end of input', start);
        return bytes.readFloatBE((this.pos += 4) - 4);
      case 27:
        if (this.pos + 8 > bytes.length) this.error('unexpected end of input', start);
        return bytes.readDoubleBE((this.pos += 8) - 8);
      case 31:
        return this.error('unexpected break', start);
      default:
        if (info === 24) {
          if (this.pos >= bytes.length) this.error('unexpected end of input', start);
          return this.error(`unsupported simple value ${bytes[this.pos++]}`, start);
        }
        return this.error(
          info < 24 ? `unsupported simple value ${info}` : `reserved additional information ${info}`,
          start,
        );
    }
  }

  private tag(tag: number | bigint, start: number): CborValue {
    this.enter(start);
    const content = this.item();
    this.depth--;
    switch (tag) {
      case 0:
        if (typeof content !== 'string') this.error('tag 0 (date/time) must hold a text string', start);
        return new Date(content);
      case 1:
        if (typeof content === 'number') return new Date(Math.round(content * 1000));
        if (typeof content === 'bigint') return new Date(Number(content) * 1000);
        return this.error('tag 1 (epoch time) must hold a number', start);
      case 2:
      case 3: {
        if (!Buffer.isBuffer(content)) this.error(`tag ${tag} (bignum) must hold a byte string`, start);
        // one conversion from hex: shifting byte by byte would be quadratic in the length
        let value = content.length === 0 ? 0n : BigInt('0x' + content.toString('hex'));
        if (tag === 3) value = -1n - value;
        return value >= -9007199254740991n && value <= 9007199254740991n ? Number(value) : value;
      }
      case 4:
      case 5: {
        if (!Array.isArray(content) || content.length !== 2 || !isInteger(content[0]) || !isInteger(content[1])) {
          this.error(
            `tag ${tag} (${tag === 4 ? 'decimal fraction' : 'bigfloat'}) must hold [exponent, mantissa]`,
            start,
          );
        }
        const [exponent, mantissa] = content as (number | bigint)[];
        // the decimal text gives the closest double; a power of two is exact until it overflows
        return tag === 4 ? Number(`${mantissa}e${exponent}`) : Number(mantissa) * Math.pow(2, Number(exponent));
      }
      case 55799:
        return content;
      case 259:
        // "a map with key-value operations" (IANA): what cbor-x writes for a JS Map by default
        if (!(content instanceof CborMap)) this.error('tag 259 must hold a map', start);
        return content;
      default:
        return new CborTag(tag, content);
    }
  }
}

function isInteger(value: CborValue): value is number | bigint {
  return typeof value === 'bigint' || (typeof value === 'number' && Number.isInteger(value));
}

/** IEEE 754 half precision (RFC 8949 appendix D). */
function halfFloat(half: number): number {
  const exponent = (half >> 10) & 0x1f;
  const mantissa = half & 0x3ff;
  let value: number;
  if (exponent === 0) value = mantissa * 2 ** -24;
  else if (exponent !== 31) value = (mantissa + 1024) * 2 ** (exponent - 25);
  else value = mantissa === 0 ? Infinity : NaN;
  return half & 0x8000 ? -value : value;
}
