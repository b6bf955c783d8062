/**
 * The JSON text of one record value, shared by the SenML JSON and OMA LwM2M JSON writers. The two differ on
 * purpose only in how bytes travel: SenML JSON's "vd" is base64url (RFC 8428 §5), OMA JSON's "sv" standard
 * base64 (LwM2M 1.0 Core §6.4.4); the writer says which.
 */
import { fail, integerText } from './values';

/** What a record's value can be; null only in a deletion record (SenML-ETCH, RFC 8790 §3.2). */
export type JsonRecordValue = number | bigint | string | boolean | Buffer | null | undefined;

/**
 * The JSON text of `value`; `what` and `item` name the record in the error (`SenML JSON: record 3`), which
 * is 4.06 for a number JSON cannot hold (NaN, ±Infinity).
 */
export function jsonValueText(
  value: JsonRecordValue,
  bytesAs: 'base64' | 'base64url',
  what: string,
  item: string,
  index: number,
): string {
  switch (typeof value) {
    case 'number':
      if (!Number.isFinite(value)) fail(`${what}: ${item} ${index}: ${value} cannot be represented in JSON`, '4.06');
      // integral doubles beyond 2^53 in their exact digits (String() would round them)
      return Number.isInteger(value) && Math.abs(value) < 1e21 ? integerText(value) : String(value);
    case 'bigint':
      return value.toString();
    case 'boolean':
      return value ? 'true' : 'false';
    case 'string':
      return JSON.stringify(value);
    default:
      return value === null ? 'null' : '"' + (value as Buffer).toString(bytesAs) + '"';
  }
}
