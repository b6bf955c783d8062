/**
 * A small strict JSON parser for the JSON content formats: the payload is checked to be UTF-8 and
 * decoded once, then scanned.
 *
 * Unlike JSON.parse it keeps integers exact (bigint beyond 2^53), keeps object members in order as
 * key/value arrays (no prototype games, duplicate keys rejected), bounds the nesting depth and
 * reports errors with the character offset as ContentCodecError('4.00').
 * Byte counts in this file's comments are garbage per operation, from `node build/bench/read-allocs.js --profile`.
 */
import { isUtf8 } from 'node:buffer';
import { fail, normalizeBigInt } from './values';

export type JsonValue = null | boolean | number | bigint | string | JsonValue[] | JsonObject;

export class JsonObject {
  constructor(
    readonly keys: string[],
    readonly values: JsonValue[],
  ) {}

  get(key: string): JsonValue | undefined {
    const index = this.keys.indexOf(key);
    return index < 0 ? undefined : this.values[index];
  }
}

const MAX_DEPTH = 32;

export function parseJson(bytes: Buffer, what: string): JsonValue {
  if (!isUtf8(bytes)) fail(`${what}: payload is not valid UTF-8`);
  // One native UTF-8 decode, then a scan over the string: slices of it are cheap (no copies).
  const parser = new JsonParser(bytes.toString('utf8'), what);
  try {
    return parser.parseDocument();
  } finally {
    // what the members of an unfinished array or object left there (a failed parse) is not kept alive
    for (let i = 0; i < scratchTop; i++) scratch[i] = null;
    scratchTop = 0;
  }
}

/**
 * The members of the arrays and objects being parsed, innermost last; each array or object is copied out at its
 * end at its exact size. Growing an array by push allocates room for 17 elements at the first push (about 150
 * bytes, three such arrays for every SenML record: the pack, the keys, the values); the copy takes what it
 * holds. parseJson runs to completion without reentry (no callbacks), so one stack serves every parse.
 */
const scratch: JsonValue[] = [];
let scratchTop = 0;

function pushScratch(value: JsonValue): void {
  if (scratchTop < scratch.length) scratch[scratchTop] = value;
  else scratch.push(value);
  scratchTop++;
}

/** The scratch entries from `start` (every `step`-th one from `start + offset`) as an array of their own. */
function takeScratch(start: number, step: number, offset: number): JsonValue[] {
  const out: JsonValue[] = new Array((scratchTop - start) / step);
  for (let i = start + offset, k = 0; i < scratchTop; i += step, k++) out[k] = scratch[i];
  return out;
}

/** Drops the entries from `start` (their array or object is made). */
function popScratch(start: number): void {
  for (let i = start; i < scratchTop; i++) scratch[i] = null;
  scratchTop = start;
}

class JsonParser {
  private p = 0;
  private depth = 0;

  constructor(
    private readonly b: string,
    private readonly what: string,
  ) {}

  private at(i: number): number {
    return this.b.charCodeAt(i);
  }

  parseDocument(): JsonValue {
    const b = this.b;
    // a byte order mark is tolerated
    if (b.charCodeAt(0) === 0xfeff) this.p = 1;
    const value = this.parseValue();
    this.skipWhitespace();
    if (this.p !== b.length) this.error('unexpected content after the JSON value');
    return value;
  }

  private error(reason: string): never {
    return fail(`${this.what}: invalid JSON at character ${this.p}: ${reason}`);
  }

  private skipWhitespace(): void {
    const b = this.b;
    let p = this.p;
    while (p < b.length) {
      const c = b.charCodeAt(p);
      if (c !== 0x20 && c !== 0x0a && c !== 0x0d && c !== 0x09) break;
      p++;
    }
    this.p = p;
  }

  private parseValue(): JsonValue {
    this.skipWhitespace();
    const b = this.b;
    if (this.p >= b.length) this.error('unexpected end of input');
    const c = b.charCodeAt(this.p);
    switch (c) {
      case 0x7b: // {
        return this.parseObject();
      case 0x5b: // [
        return this.parseArray();
      case 0x22: // "
        return this.parseString();
      case 0x74: // t
        return this.parseLiteral('true', true);
      case 0x66: // f
        return this.parseLiteral('false', false);
      case 0x6e: // n
        return this.parseLiteral('null', null);
      default:
        if (c === 0x2d || (c >= 0x30 && c <= 0x39)) return this.parseNumber();
        return this.error(`unexpected character ${JSON.stringify(String.fromCharCode(c))}`);
    }
  }

  private parseLiteral<T extends JsonValue>(text: string, value: T): T {
    if (!this.b.startsWith(text, this.p)) this.error(`expected ${text}`);
    this.p += text.length;
    return value;
  }

  private enter(): void {
    if (++this.depth > MAX_DEPTH) this.error(`nesting deeper than ${MAX_DEPTH}`);
    this.p++;
  }

  private parseArray(): JsonValue[] {
    this.enter();
    this.skipWhitespace();
    if (this.at(this.p) === 0x5d) {
      this.p++;
      this.depth--;
      return [];
    }
    const start = scratchTop; // the elements gather on the scratch stack (see `scratch`)
    for (;;) {
      pushScratch(this.parseValue());
      this.skipWhitespace();
      const c = this.at(this.p);
      if (c === 0x2c) {
        this.p++;
        continue;
      }
      if (c === 0x5d) {
        this.p++;
        this.depth--;
        const out = takeScratch(start, 1, 0);
        popScratch(start);
        return out;
      }
      this.error(this.p >= this.b.length ? 'unexpected end of input in an array' : 'expected "," or "]"');
    }
  }

  private parseObject(): JsonObject {
    this.enter();
    this.skipWhitespace();
    if (this.at(this.p) === 0x7d) {
      this.p++;
      this.depth--;
      return new JsonObject([], []);
    }
    // keys and values gather on the scratch stack in pairs (see `scratch`)
    const start = scratchTop;
    let seen: Set<string> | undefined;
    for (;;) {
      this.skipWhitespace();
      if (this.at(this.p) !== 0x22) this.error('expected a member name');
      const at = this.p;
      const key = this.parseString();
      const count = (scratchTop - start) / 2;
      if (count < 16) {
        for (let i = start; i < scratchTop; i += 2) if (scratch[i] === key) this.duplicate(key, at);
      } else {
        if (seen === undefined) seen = new Set(takeScratch(start, 2, 0) as string[]);
        if (seen.has(key)) this.duplicate(key, at);
        seen.add(key);
      }
      this.skipWhitespace();
      if (this.at(this.p) !== 0x3a) this.error('expected ":"');
      this.p++;
      pushScratch(key);
      pushScratch(null); // the value's place, kept while the value (which may use the stack above it) is parsed
      const valueAt = scratchTop - 1;
      scratch[valueAt] = this.parseValue();
      this.skipWhitespace();
      const c = this.at(this.p);
      if (c === 0x2c) {
        this.p++;
        continue;
      }
      if (c === 0x7d) {
        this.p++;
        this.depth--;
        const object = new JsonObject(takeScratch(start, 2, 0) as string[], takeScratch(start, 2, 1));
        popScratch(start);
        return object;
      }
      this.error(this.p >= this.b.length ? 'unexpected end of input in an object' : 'expected "," or "}"');
    }
  }

  private duplicate(key: string, at: number): never {
    this.p = at;
    return this.error(`duplicate member ${JSON.stringify(key)}`);
  }

  private parseString(): string {
    const b = this.b;
    const start = ++this.p;
    let p = start;
    for (;;) {
      if (p >= b.length) this.error('unterminated string');
      const c = b.charCodeAt(p);
      if (c === 0x22) {
        this.p = p + 1;
        return b.slice(start, p);
      }
      if (c === 0x5c) break;
      if (c < 0x20) {
        this.p = p;
        this.error('control character in a string');
      }
      p++;
    }
    // slow path: escapes
    let out = b.slice(start, p);
    let runStart = p;
    for (;;) {
      if (p >= b.length) {
        this.p = p;
        this.error('unterminated string');
      }
      const c = b.charCodeAt(p);
      if (c === 0x22) {
        out += b.slice(runStart, p);
        this.p = p + 1;
        return out;
      }
      if (c < 0x20) {
        this.p = p;
        this.error('control character in a string');
      }
      if (c !== 0x5c) {
        p++;
        continue;
      }
      out += b.slice(runStart, p);
      const e = b.charCodeAt(p + 1);
      p += 2;
      switch (e) {
        case 0x22:
          out += '"';
          break;
        case 0x5c:
          out += '\\';
          break;
        case 0x2f:
          out += '/';
          break;
        case 0x62:
          out += '\b';
          break;
        case 0x66:
          out += '\f';
          break;
        case 0x6e:
          out += '\n';
          break;
        case 0x72:
          out += '\r';
          break;
        case 0x74:
          out += '\t';
          break;
        case 0x75: {
          let code = 0;
          for (let i = 0; i < 4; i++) {
            const h = b.charCodeAt(p + i);
            const digit =
              h >= 0x30 && h <= 0x39
                ? h - 0x30
                : h >= 0x61 && h <= 0x66
                  ? h - 0x57
                  : h >= 0x41 && h <= 0x46
                    ? h - 0x37
                    : -1;
            if (digit < 0) {
              this.p = p - 2;
              this.error('invalid \\u escape');
            }
            code = code * 16 + digit;
          }
          p += 4;
          out += String.fromCharCode(code);
          break;
        }
        default:
          this.p = p - 2;
          this.error('invalid escape');
      }
      runStart = p;
    }
  }

  private parseNumber(): number | bigint {
    const b = this.b;
    const start = this.p;
    let p = start;
    let c = b.charCodeAt(p);
    if (c === 0x2d) c = b.charCodeAt(++p);
    const intStart = p;
    if (c === 0x30) c = b.charCodeAt(++p);
    else {
      while (c >= 0x30 && c <= 0x39) c = b.charCodeAt(++p);
    }
    const intDigits = p - intStart;
    if (intDigits === 0) {
      this.p = p;
      this.error('invalid number');
    }
    let integral = true;
    if (c === 0x2e) {
      integral = false;
      const fracStart = ++p;
      c = b.charCodeAt(p);
      while (c >= 0x30 && c <= 0x39) c = b.charCodeAt(++p);
      if (p === fracStart) {
        this.p = p;
        this.error('invalid number: digits expected after "."');
      }
    }
    if (c === 0x65 || c === 0x45) {
      integral = false;
      c = b.charCodeAt(++p);
      if (c === 0x2b || c === 0x2d) c = b.charCodeAt(++p);
      const expStart = p;
      while (c >= 0x30 && c <= 0x39) c = b.charCodeAt(++p);
      if (p === expStart) {
        this.p = p;
        this.error('invalid number: digits expected in the exponent');
      }
    }
    this.p = p;
    if (integral && intDigits <= 15) {
      let n = 0;
      for (let i = intStart; i < p; i++) n = n * 10 + (b.charCodeAt(i) - 0x30);
      return b.charCodeAt(start) === 0x2d && n !== 0 ? -n : n;
    }
    const text = b.slice(start, p);
    return integral ? normalizeBigInt(BigInt(text)) : Number(text);
  }
}
