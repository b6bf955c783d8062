/**
 * The record that starts a handshake: recognising and parsing a ClientHello in epoch 0, and the
 * stateless answers to one (a HelloVerifyRequest with a cookie, a fatal alert).
 */

import { DecodeError } from './bytes';
import { AlertLevel, ContentType, HandshakeType } from './constants';
import { HANDSHAKE_HEADER_LENGTH, encodeHandshakeFragment, parseHandshakeFragments } from './handshake';
import { encodeHelloVerifyRequest, parseClientHello, type ClientHello } from './messages';
import { encodeRecord, type DtlsRecord } from './record';

/** A ClientHello record's content: the hello, its message_seq and its body (for the transcript). */
export interface ClientHelloRecord {
  hello: ClientHello;
  messageSeq: number;
  body: Buffer;
}

export function isClientHelloRecord(record: DtlsRecord): boolean {
  return (
    record.epoch === 0 &&
    record.type === ContentType.handshake &&
    record.fragment.length >= HANDSHAKE_HEADER_LENGTH &&
    record.fragment[0] === HandshakeType.clientHello
  );
}

/** The ClientHello in the record; undefined when it cannot be parsed (or is fragmented). */
export function parseClientHelloRecord(record: DtlsRecord): ClientHelloRecord | undefined {
  try {
    const fragments = parseHandshakeFragments(record.fragment);
    const first = fragments[0];
    // A fragmented ClientHello cannot be handled without keeping state: not supported.
    if (first.fragmentOffset !== 0 || first.fragment.length !== first.length) throw new DecodeError('fragmented');
    const body = first.fragment;
    return { hello: parseClientHello(body), messageSeq: first.messageSeq, body };
  } catch {
    return undefined;
  }
}

/** A HelloVerifyRequest with `cookie`, answering the ClientHello record with this sequence number. */
export function helloVerifyRequestRecord(helloRecordSequence: number, messageSeq: number, cookie: Buffer): Buffer {
  const body = encodeHelloVerifyRequest(cookie);
  const message = encodeHandshakeFragment(HandshakeType.helloVerifyRequest, body.length, messageSeq, 0, body);
  // RFC 6347 §4.2.1: the HelloVerifyRequest reuses the ClientHello's record sequence number.
  return encodeRecord(ContentType.handshake, 0, helloRecordSequence, message);
}

/** A fatal alert in epoch 0, answering the ClientHello record with this sequence number. */
export function fatalAlertRecord(helloRecordSequence: number, alert: number): Buffer {
  return encodeRecord(ContentType.alert, 0, helloRecordSequence, Buffer.from([AlertLevel.fatal, alert]));
}
