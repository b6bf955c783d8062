/**
 * Bounds-checked reading and simple writing of the TLS presentation language (RFC 5246 §4):
 * big-endian integers and length-prefixed vectors.
 */
import { Lwm2mError } from '../errors';

/** A message or record that does not parse: answered with a decode_error alert (or dropped). */
export class DecodeError extends Lwm2mError {
  constructor(message: string) {
    super(message);
    this.name = 'DecodeError';
  }
}

export class ByteReader {
  private offset = 0;

  constructor(private readonly data: Buffer) {}

  get remaining(): number {
    return this.data.length - this.offset;
  }

  get position(): number {
    return this.offset;
  }

  uint8(): number {
    this.need(1);
    return this.data[this.offset++];
  }

  uint16(): number {
    this.need(2);
    const value = this.data.readUInt16BE(this.offset);
    this.offset += 2;
    return value;
  }

  uint24(): number {
    this.need(3);
    const value = this.data.readUIntBE(this.offset, 3);
    this.offset += 3;
    return value;
  }

  uint48(): number {
    this.need(6);
    const value = this.data.readUIntBE(this.offset, 6);
    this.offset += 6;
    return value;
  }

  bytes(length: number): Buffer {
    this.need(length);
    const slice = this.data.subarray(this.offset, this.offset + length);
    this.offset += length;
    return slice;
  }

  /** A vector whose length prefix is `prefixBytes` (1, 2 or 3) long. */
  vector(prefixBytes: 1 | 2 | 3): Buffer {
    const length = prefixBytes === 1 ? this.uint8() : prefixBytes === 2 ? this.uint16() : this.uint24();
    return this.bytes(length);
  }

  rest(): Buffer {
    return this.bytes(this.remaining);
  }

  /** Fails unless everything was consumed (trailing bytes are a decode error in TLS). */
  end(what: string): void {
    if (this.remaining !== 0) throw new DecodeError(`${what}: ${this.remaining} trailing bytes`);
  }

  private need(length: number): void {
    if (this.offset + length > this.data.length) throw new DecodeError('message truncated');
  }
}

/**
 * Writes a record's seq_num at `offset`: the epoch (2 bytes) then the 48-bit sequence number, big-endian, in byte
 * stores (writeUIntBE(…, 6) checks and loops, and this runs for every record).
 */
export function writeSeqNum(out: Buffer, offset: number, epoch: number, sequence: number): void {
  const high = Math.floor(sequence / 0x100000000);
  const low = sequence >>> 0;
  out[offset] = epoch >>> 8;
  out[offset + 1] = epoch & 0xff;
  out[offset + 2] = high >>> 8;
  out[offset + 3] = high & 0xff;
  out[offset + 4] = low >>> 24;
  out[offset + 5] = (low >>> 16) & 0xff;
  out[offset + 6] = (low >>> 8) & 0xff;
  out[offset + 7] = low & 0xff;
}

export function uint8(value: number): Buffer {
  return Buffer.from([value & 0xff]);
}

export function uint16(value: number): Buffer {
  const out = Buffer.allocUnsafe(2);
  out.writeUInt16BE(value, 0);
  return out;
}

export function uint24(value: number): Buffer {
  const out = Buffer.allocUnsafe(3);
  out.writeUIntBE(value, 0, 3);
  return out;
}

/** `body` prefixed with its length in `prefixBytes` bytes. */
export function vector(prefixBytes: 1 | 2 | 3, body: Buffer): Buffer {
  const prefix = prefixBytes === 1 ? uint8(body.length) : prefixBytes === 2 ? uint16(body.length) : uint24(body.length);
  return Buffer.concat([prefix, body]);
}
