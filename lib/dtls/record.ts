/**
 * DTLS 1.2 records (RFC 6347 §4.1): type, version, epoch, 48-bit sequence number, length, fragment;
 * and the Connection ID form (RFC 9146 §4): type tls12_cid, with the CID between sequence number and
 * length. A CID's length is not on the wire: the receiver knows it because it chose it.
 */

import { writeSeqNum } from './bytes';
import { ContentType, DTLS_1_2, HandshakeType } from './constants';

export const RECORD_HEADER_LENGTH = 13;
/** RFC 6347 §4.1: 2^14 plaintext plus at most 2048 bytes of expansion. */
export const MAX_CIPHERTEXT_LENGTH = 16384 + 2048;
export const MAX_PLAINTEXT_LENGTH = 16384;
/** 2^48 - 1: a sequence number must never wrap within an epoch. */
export const MAX_SEQUENCE = 0xffffffffffff;

export interface DtlsRecord {
  type: number;
  version: number;
  epoch: number;
  sequence: number;
  /** The Connection ID (tls12_cid records only). */
  cid?: Buffer;
  fragment: Buffer;
}

/** Why the rest of a datagram was not parsed: its header is not DTLS, or its version is not ours. */
export type RecordParseProblem = 'malformed' | 'bad-version';

/** A datagram's records, and why parsing stopped early (when it did). */
export interface ParsedDatagram {
  records: DtlsRecord[];
  problem?: RecordParseProblem;
}

/**
 * Splits a datagram into its records. Parsing stops at the first record that is malformed,
 * truncated or of a version we do not accept; the ones before it are returned (RFC 6347 §4.1.2.7:
 * invalid records are dropped, not the datagram's earlier good ones), with the reason it stopped.
 */
export function splitRecords(datagram: Buffer, cidLength = 0): ParsedDatagram {
  const records: DtlsRecord[] = [];
  let offset = 0;
  while (datagram.length - offset >= RECORD_HEADER_LENGTH) {
    const type = datagram[offset];
    const version = datagram.readUInt16BE(offset + 1);
    // Every DTLS version is {254, x}: anything else is not a DTLS record at all.
    if (version >> 8 !== 0xfe) return { records, problem: 'malformed' };
    const cidLengthHere = type === ContentType.tls12Cid ? cidLength : 0;
    if (type === ContentType.tls12Cid && cidLength === 0) return { records, problem: 'malformed' };
    const headerLength = RECORD_HEADER_LENGTH + cidLengthHere;
    if (datagram.length - offset < headerLength) return { records, problem: 'malformed' };
    const length = datagram.readUInt16BE(offset + headerLength - 2);
    const end = offset + headerLength + length;
    if (end > datagram.length || length > MAX_CIPHERTEXT_LENGTH) return { records, problem: 'malformed' };
    const record: DtlsRecord = {
      type,
      version,
      epoch: datagram.readUInt16BE(offset + 3),
      sequence: datagram.readUIntBE(offset + 5, 6),
      fragment: datagram.subarray(offset + headerLength, end),
    };
    if (!acceptableVersion(record)) return { records, problem: 'bad-version' };
    if (cidLengthHere > 0) record.cid = datagram.subarray(offset + 11, offset + 11 + cidLengthHere);
    records.push(record);
    offset = end;
  }
  if (offset < datagram.length) return { records, problem: 'malformed' };
  return { records };
}

/** The records of a datagram (see splitRecords), without the reason parsing stopped. */
export function parseRecords(datagram: Buffer, cidLength = 0): DtlsRecord[] {
  return splitRecords(datagram, cidLength).records;
}

/**
 * DTLS 1.2, the only version we speak; but a ClientHello is sent before the client knows which
 * version the server will pick, so its record may carry any {254, x} (the DTLS analogue of RFC 5246
 * appendix E.1: OpenSSL sends DTLS 1.0's {254, 255}, Mbed TLS 2.x sends {254, 0}). Once our
 * ServerHello has named the version, every other record must say DTLS 1.2.
 */
function acceptableVersion(record: DtlsRecord): boolean {
  if (record.version === DTLS_1_2) return true;
  return (
    record.epoch === 0 &&
    record.type === ContentType.handshake &&
    record.fragment.length > 0 &&
    record.fragment[0] === HandshakeType.clientHello
  );
}

/** A record; with `cid` (non-empty) in the RFC 9146 form, whose type must then be tls12_cid. */
export function encodeRecord(type: number, epoch: number, sequence: number, fragment: Buffer, cid?: Buffer): Buffer {
  const headerLength = recordHeaderLength(cid);
  const out = Buffer.allocUnsafe(headerLength + fragment.length);
  fragment.copy(out, headerLength);
  writeRecordHeader(out, type, epoch, sequence, cid);
  return out;
}

/** The header length of a record of ours: with a (non-empty) CID, the RFC 9146 form. */
export function recordHeaderLength(cid?: Buffer): number {
  return RECORD_HEADER_LENGTH + (cid?.length ?? 0);
}

/**
 * Writes the header at the start of `record`, whose fragment already follows it (recordHeaderLength
 * bytes in): a protected record is encrypted straight into its final buffer, with no copy.
 */
export function writeRecordHeader(record: Buffer, type: number, epoch: number, sequence: number, cid?: Buffer): void {
  const cidLength = cid?.length ?? 0;
  const fragmentLength = record.length - RECORD_HEADER_LENGTH - cidLength;
  record[0] = type;
  record[1] = DTLS_1_2 >>> 8;
  record[2] = DTLS_1_2 & 0xff;
  writeSeqNum(record, 3, epoch, sequence);
  if (cid !== undefined) cid.copy(record, 11);
  record[11 + cidLength] = fragmentLength >>> 8;
  record[12 + cidLength] = fragmentLength & 0xff;
}

/** DTLSInnerPlaintext (RFC 9146 §4): the content, its real type, no padding (we add none). */
export function encodeInnerPlaintext(type: number, content: Buffer): Buffer {
  return Buffer.concat([content, Buffer.from([type])]);
}

/**
 * Splits a DTLSInnerPlaintext: trailing zeros are padding (Mbed TLS pads to 16 bytes), the last
 * non-zero byte is the real content type. Undefined when there is none.
 */
export function decodeInnerPlaintext(inner: Buffer): { type: number; content: Buffer } | undefined {
  let end = inner.length;
  while (end > 0 && inner[end - 1] === 0) end--;
  if (end === 0) return undefined;
  return { type: inner[end - 1], content: inner.subarray(0, end - 1) };
}
