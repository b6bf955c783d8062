/**
 * Send (LwM2M 1.1 Information Reporting, POST /dp): decoding the values a device pushed into a report.
 */
import { decodeTimestamped } from '../content';
import { ContentCodecError, ContentFormat } from '../content/types';
import type { LwM2mNode, ObjectModelLookup } from '../model/types';
import { toPlain } from '../model/values';
import type { Registration } from './registration';

/** One value a device pushed with Send (LwM2M 1.1 Information Reporting, POST /dp). */
export interface SentValue {
  path: string;
  node: LwM2mNode;
  /** msg-shaped value (model/values toPlain). */
  value: unknown;
  /** When the device measured it, if it said (SenML bt/t; times below 2^28 are relative to now). */
  time?: Date;
}

export interface SendReport {
  endpoint: string;
  registrationId: string;
  contentFormat: number;
  values: SentValue[];
  receivedAt: Date;
}

/** The formats a Send may use (LwM2M 1.1 §6.4.1: SenML CBOR or SenML JSON; LwM2M CBOR in 1.2). */
const SEND_FORMATS: readonly number[] = [ContentFormat.SENML_CBOR, ContentFormat.SENML_JSON, ContentFormat.LWM2M_CBOR];

/** Decodes a Send payload; throws ContentCodecError (4.00 malformed, 4.15 format) for the device. */
export function decodeSend(
  payload: Buffer,
  contentFormat: number | undefined,
  registration: Registration,
  model: ObjectModelLookup,
): SendReport {
  if (contentFormat === undefined)
    throw new ContentCodecError('a Send needs a Content-Format (SenML CBOR or JSON)', '4.15');
  if (!SEND_FORMATS.includes(contentFormat)) {
    throw new ContentCodecError(`content format ${contentFormat} is not a Send format`, '4.15');
  }
  const entries = decodeTimestamped(payload, contentFormat, model);
  if (entries.length === 0) throw new ContentCodecError('the Send carries no value', '4.00');
  return {
    endpoint: registration.endpoint,
    registrationId: registration.id,
    contentFormat,
    receivedAt: new Date(),
    values: entries.map((entry) => ({
      path: entry.path.toString(),
      node: entry.node,
      value: toPlain(entry.node, entry.path, model),
      ...(entry.time ? { time: entry.time } : {}),
    })),
  };
}
