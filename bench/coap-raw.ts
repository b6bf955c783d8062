/**
 * A minimal CoAP encoder/decoder for the benchmark's raw load generators and lean devices. It is
 * deliberately independent of lib/coap: the load side must cost about what a raw UDP echo costs, so
 * that what is measured is the server.
 */

export const CON = 0;
export const NON = 1;
export const ACK = 2;

export const OPT_OBSERVE = 6;
export const OPT_LOCATION_PATH = 8;
export const OPT_URI_PATH = 11;
export const OPT_CONTENT_FORMAT = 12;
export const OPT_URI_QUERY = 15;
export const OPT_ACCEPT = 17;

/** Code byte from 'c.dd'. */
export function code(text: string): number {
  const [c, d] = text.split('.').map(Number);
  return (c << 5) | d;
}

export function uintBytes(value: number): Buffer {
  if (value === 0) return Buffer.alloc(0);
  const bytes: number[] = [];
  for (let v = value; v > 0; v = Math.floor(v / 256)) bytes.unshift(v & 255);
  return Buffer.from(bytes);
}

export interface RawOption {
  number: number;
  value: Buffer;
}

/** Encodes a message (options in any order; sorted here, stable for repeats). */
export function encode(
  type: number,
  codeByte: number,
  mid: number,
  token: Buffer,
  options: RawOption[],
  payload?: Buffer,
): Buffer {
  const sorted = options.map((o, i) => ({ ...o, i })).sort((a, b) => a.number - b.number || a.i - b.i);
  const parts: Buffer[] = [
    Buffer.from([0x40 | (type << 4) | token.length, codeByte, (mid >> 8) & 255, mid & 255]),
    token,
  ];
  let last = 0;
  for (const o of sorted) {
    const delta = o.number - last;
    last = o.number;
    const len = o.value.length;
    const ext: number[] = [];
    const nib = (n: number): number => {
      if (n < 13) return n;
      if (n < 269) {
        ext.push(n - 13);
        return 13;
      }
      ext.push((n - 269) >> 8, (n - 269) & 255);
      return 14;
    };
    const d = nib(delta);
    const l = nib(len);
    parts.push(Buffer.from([(d << 4) | l, ...ext]), o.value);
  }
  if (payload && payload.length > 0) parts.push(Buffer.from([0xff]), payload);
  return Buffer.concat(parts);
}

export interface RawMessage {
  type: number;
  code: number;
  mid: number;
  token: Buffer;
  /** Observe option value (undefined when absent). */
  observe?: number;
  accept?: number;
  locationPath: string[];
  /** Offset of the payload (data.length when none). */
  payloadOffset: number;
}

/** Parses what the benchmark needs; undefined for a malformed datagram. */
export function parse(data: Buffer): RawMessage | undefined {
  if (data.length < 4) return undefined;
  const b0 = data[0];
  const tkl = b0 & 15;
  if (4 + tkl > data.length) return undefined;
  const msg: RawMessage = {
    type: (b0 >> 4) & 3,
    code: data[1],
    mid: (data[2] << 8) | data[3],
    token: data.subarray(4, 4 + tkl),
    locationPath: [],
    payloadOffset: data.length,
  };
  let i = 4 + tkl;
  let number = 0;
  while (i < data.length) {
    const byte = data[i++];
    if (byte === 0xff) {
      msg.payloadOffset = i;
      break;
    }
    let delta = byte >> 4;
    let len = byte & 15;
    if (delta === 13) delta = data[i++] + 13;
    else if (delta === 14) {
      delta = ((data[i] << 8) | data[i + 1]) + 269;
      i += 2;
    }
    if (len === 13) len = data[i++] + 13;
    else if (len === 14) {
      len = ((data[i] << 8) | data[i + 1]) + 269;
      i += 2;
    }
    number += delta;
    if (i + len > data.length) return undefined;
    if (number === OPT_OBSERVE || number === OPT_ACCEPT) {
      let v = 0;
      for (let k = 0; k < len; k++) v = v * 256 + data[i + k];
      if (number === OPT_OBSERVE) msg.observe = v;
      else msg.accept = v;
    } else if (number === OPT_LOCATION_PATH) msg.locationPath.push(data.toString('utf8', i, i + len));
    i += len;
  }
  return msg;
}

export function stringOptions(number: number, values: string[]): RawOption[] {
  return values.map((v) => ({ number, value: Buffer.from(v, 'utf8') }));
}
