/**
 * The size limit on what a Write, Write-Composite or Create sends to a device. An accidental huge value (a flow
 * that puts a file or a whole HTTP response in msg.payload) would otherwise be pushed block by block into a
 * constrained device, filling its storage and holding the exchange for minutes. It is checked on the encoded payload,
 * before anything is sent. A firmware push (/5/0/0 by a firmware job) is not held to it: it is meant to be large.
 */
import { formatName } from '../content';
import { Lwm2mRequestError } from './errors';

/** The default limit: 1 MiB, what the server itself takes in one request body (CoAP endpoint maxBodySize). */
export const DEFAULT_MAX_WRITE_BYTES = 1024 * 1024;

/**
 * Throws a 'too-large' error naming the size, the format and the limit when `payload` is over `limit` bytes
 * (`Infinity`: no limit).
 */
export function checkWriteSize(
  payload: Buffer,
  limit: number,
  operation: string,
  target: string,
  endpoint: string,
  format: number,
): void {
  if (payload.length <= limit) return;
  throw new Lwm2mRequestError(
    `${operation} ${target} on ${endpoint}: the value is ${payload.length} bytes as ${formatName(format)}, over the ` +
      `write size limit of ${limit} bytes; nothing was sent`,
    'too-large',
    endpoint,
    target,
  );
}
