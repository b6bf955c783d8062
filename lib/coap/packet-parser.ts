/**
 * The CoAP message parser behind codec.ts's parseMessage: it gives for every datagram what coap-packet's `parse`
 * gives (the result type, the option names, the errors), with less garbage. Stateless.
 * Byte counts in this file's comments are garbage per operation, from `node build/bench/read-allocs.js --profile`.
 */
import type { ParsedPacket } from 'coap-packet';

/** '2.05' for the code byte 0x45, by code byte. */
export const CODE_STRINGS: readonly string[] = Array.from({ length: 256 }, (_, b) => {
  const d = b & 31;
  return `${b >> 5}.${d < 10 ? '0' : ''}${d}`;
});

/**
 * The option names coap-packet gives (it knows neither Echo nor Request-Tag: those it names by their number as a
 * string, as it does every other option it does not know; normaliseParsedOptions makes them numbers).
 */
const PACKET_OPTION_NAMES: string[] = [];
for (const [name, num] of Object.entries({
  'If-Match': 1,
  'Uri-Host': 3,
  ETag: 4,
  'If-None-Match': 5,
  Observe: 6,
  'Uri-Port': 7,
  'Location-Path': 8,
  OSCORE: 9,
  'Uri-Path': 11,
  'Content-Format': 12,
  'Max-Age': 14,
  'Uri-Query': 15,
  'Hop-Limit': 16,
  Accept: 17,
  'Q-Block1': 19,
  'Location-Query': 20,
  Block2: 23,
  Block1: 27,
  Size2: 28,
  'Q-Block2': 31,
  'Proxy-Uri': 35,
  'Proxy-Scheme': 39,
  Size1: 60,
  'No-Response': 258,
  'OCF-Accept-Content-Format-Version': 2049,
  'OCF-Content-Format-Version': 2053,
})) {
  PACKET_OPTION_NAMES[num] = name;
}

const NO_BYTES = Buffer.alloc(0);

/**
 * coap-packet's `parse`, made here to the same result for every datagram it accepts, with less garbage (about 250
 * bytes a message): the code string comes from a table instead of being concatenated, the options array is made
 * at its size instead of grown by push, an empty token or payload is one shared empty buffer instead of a new
 * view. Throws where coap-packet throws (only a datagram isWellFormed refuses can make it).
 */
export function parsePacket(buffer: Buffer, knownToken?: Buffer): ParsedPacket {
  const length = buffer.length;
  const b0 = buffer[0];
  if (b0 >> 6 !== 1) throw new Error('Unsupported version');
  const codeByte = buffer[1];
  let index = 4;
  let tokenLength = b0 & 15;
  if (tokenLength === 13) {
    tokenLength = buffer.readUInt8(index) + 13;
    index += 1;
  } else if (tokenLength === 14) {
    tokenLength = buffer.readUInt16BE(index) + 269;
    index += 2;
  } else if (tokenLength === 15) throw new Error('Token length not allowed');
  const token =
    tokenLength === 0
      ? NO_BYTES
      : knownToken !== undefined && sameBytes(buffer, index, tokenLength, knownToken)
        ? knownToken
        : buffer.subarray(index, index + tokenLength);
  index += tokenLength;
  const kind = b0 & 48;
  const messageId = (buffer[2] << 8) | buffer[3];
  if (codeByte === 0) {
    if (length !== 4) throw new Error('Empty messages must be empty');
    return packet(codeByte, kind, messageId, token, [], NO_BYTES);
  }
  // first pass: how many options (the datagram is well formed: every length is within it)
  let count = 0;
  for (let i = index; i < length;) {
    const byte = buffer[i++];
    if (byte === 255) break;
    const delta = byte >> 4;
    let valueLength = byte & 15;
    if (delta === 13) i += 1;
    else if (delta === 14) i += 2;
    else if (delta === 15) throw new Error('Wrong option delta');
    if (valueLength === 13) valueLength = buffer.readUInt8(i++) + 13;
    else if (valueLength === 14) {
      valueLength = buffer.readUInt16BE(i) + 269;
      i += 2;
    } else if (valueLength === 15) throw new Error('Wrong option length');
    i += valueLength;
    count++;
  }
  const options: ParsedPacket['options'] = new Array(count);
  let number = 0;
  for (let k = 0; k < count; k++) {
    const byte = buffer[index++];
    let delta = byte >> 4;
    let valueLength = byte & 15;
    if (delta === 13) delta = buffer[index++] + 13;
    else if (delta === 14) {
      delta = buffer.readUInt16BE(index) + 269;
      index += 2;
    }
    if (valueLength === 13) valueLength = buffer[index++] + 13;
    else if (valueLength === 14) {
      valueLength = buffer.readUInt16BE(index) + 269;
      index += 2;
    }
    number += delta;
    options[k] = {
      name: (PACKET_OPTION_NAMES[number] ?? '' + number) as ParsedPacket['options'][number]['name'],
      value: buffer.subarray(index, index + valueLength),
    };
    index += valueLength;
  }
  // `index` is at the payload marker, or at the end
  const payload = index + 1 < length ? buffer.subarray(index + 1) : NO_BYTES;
  return packet(codeByte, kind, messageId, token, options, payload);
}

/** True when `buffer` holds the bytes of `bytes` at `at` (and `length` is theirs). */
function sameBytes(buffer: Buffer, at: number, length: number, bytes: Buffer): boolean {
  if (bytes.length !== length || at + length > buffer.length) return false;
  for (let i = 0; i < length; i++) if (buffer[at + i] !== bytes[i]) return false;
  return true;
}

function packet(
  codeByte: number,
  kind: number,
  messageId: number,
  token: Buffer,
  options: ParsedPacket['options'],
  payload: Buffer,
): ParsedPacket {
  return {
    code: CODE_STRINGS[codeByte],
    confirmable: kind === 0,
    reset: kind === 48,
    ack: kind === 32,
    messageId,
    token,
    options,
    payload,
  };
}
