/**
 * DTLS handshake framing (RFC 6347 §4.2.2-4.2.3): every handshake message carries a 12-byte header
 * (type, length, message_seq, fragment_offset, fragment_length) so that it can be split across
 * records and reassembled whatever order the fragments arrive in.
 */

import { ByteReader, DecodeError } from './bytes';

export const HANDSHAKE_HEADER_LENGTH = 12;

export interface HandshakeFragment {
  msgType: number;
  /** Length of the whole message body. */
  length: number;
  messageSeq: number;
  fragmentOffset: number;
  fragment: Buffer;
}

export interface HandshakeMessage {
  msgType: number;
  messageSeq: number;
  body: Buffer;
}

/** The handshake fragments in one record's plaintext (several may share a record). */
export function parseHandshakeFragments(recordFragment: Buffer): HandshakeFragment[] {
  const reader = new ByteReader(recordFragment);
  const fragments: HandshakeFragment[] = [];
  while (reader.remaining > 0) {
    const msgType = reader.uint8();
    const length = reader.uint24();
    const messageSeq = reader.uint16();
    const fragmentOffset = reader.uint24();
    const fragmentLength = reader.uint24();
    if (fragmentOffset + fragmentLength > length) throw new DecodeError('handshake fragment beyond message end');
    fragments.push({ msgType, length, messageSeq, fragmentOffset, fragment: reader.bytes(fragmentLength) });
  }
  return fragments;
}

export function encodeHandshakeFragment(
  msgType: number,
  length: number,
  messageSeq: number,
  fragmentOffset: number,
  fragment: Buffer,
): Buffer {
  const out = Buffer.allocUnsafe(HANDSHAKE_HEADER_LENGTH + fragment.length);
  out[0] = msgType;
  out.writeUIntBE(length, 1, 3);
  out.writeUInt16BE(messageSeq, 4);
  out.writeUIntBE(fragmentOffset, 6, 3);
  out.writeUIntBE(fragment.length, 9, 3);
  fragment.copy(out, HANDSHAKE_HEADER_LENGTH);
  return out;
}

/**
 * The bytes a message contributes to the handshake hash: the message as if sent in one fragment
 * (RFC 6347 §4.2.6), whatever fragmentation it actually had.
 */
export function transcriptEntry(message: HandshakeMessage): Buffer {
  return encodeHandshakeFragment(message.msgType, message.body.length, message.messageSeq, 0, message.body);
}

/** The message split into encoded fragments of at most `maxFragmentBody` body bytes each. */
export function fragmentMessage(message: HandshakeMessage, maxFragmentBody: number): Buffer[] {
  const { msgType, messageSeq, body } = message;
  if (body.length <= maxFragmentBody) return [transcriptEntry(message)];
  const fragments: Buffer[] = [];
  for (let offset = 0; offset < body.length; offset += maxFragmentBody) {
    const piece = body.subarray(offset, Math.min(body.length, offset + maxFragmentBody));
    fragments.push(encodeHandshakeFragment(msgType, body.length, messageSeq, offset, piece));
  }
  return fragments;
}

interface PartialMessage {
  msgType: number;
  body: Buffer;
  /** One flag per body byte: received yet. */
  covered: Uint8Array;
  missing: number;
}

/**
 * Collects fragments and releases whole messages strictly in message_seq order. Fragments of
 * messages too far ahead, too large, or inconsistent with earlier fragments are dropped.
 */
export class HandshakeReassembler {
  private readonly partial = new Map<number, PartialMessage>();

  constructor(
    /** The message_seq expected next. */
    public nextSeq: number,
    private readonly maxMessageLength = 32 * 1024,
    private readonly maxMessagesAhead = 8,
  ) {}

  /** Adds a fragment; returns the messages that became deliverable (in order). */
  add(fragment: HandshakeFragment): HandshakeMessage[] {
    const seq = fragment.messageSeq;
    if (seq < this.nextSeq || seq >= this.nextSeq + this.maxMessagesAhead) return [];
    if (fragment.length > this.maxMessageLength) return [];
    let message = this.partial.get(seq);
    if (message === undefined) {
      message = {
        msgType: fragment.msgType,
        body: Buffer.alloc(fragment.length),
        covered: new Uint8Array(fragment.length),
        missing: fragment.length,
      };
      this.partial.set(seq, message);
    } else if (message.msgType !== fragment.msgType || message.body.length !== fragment.length) {
      return [];
    }
    fragment.fragment.copy(message.body, fragment.fragmentOffset);
    for (let i = fragment.fragmentOffset; i < fragment.fragmentOffset + fragment.fragment.length; i++) {
      if (message.covered[i] === 0) {
        message.covered[i] = 1;
        message.missing--;
      }
    }
    const ready: HandshakeMessage[] = [];
    for (;;) {
      const next = this.partial.get(this.nextSeq);
      if (next === undefined || next.missing > 0) break;
      this.partial.delete(this.nextSeq);
      ready.push({ msgType: next.msgType, messageSeq: this.nextSeq, body: next.body });
      this.nextSeq++;
    }
    return ready;
  }
}
