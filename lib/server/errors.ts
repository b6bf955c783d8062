/**
 * The error of a device operation (Lwm2mRequestError, with the CoAP code or the reason) and the wording of CoAP codes
 * and transport failures in its messages.
 */
import { Lwm2mError } from '../errors';
import type { CoapCode, CoapRequestError } from '../coap/types';

/**
 * A device operation that did not succeed: the device answered with an error code, did not answer,
 * or the request could not be built. `code` is the CoAP code ('4.04', '4.05', ...) or 'timeout',
 * 'reset', 'not-registered', 'bad-request' (a flow mistake caught before anything was sent),
 * 'invalid-response' (the device's payload could not be decoded), 'expired' (a request queued for a
 * sleeping device that did not wake up in time), 'no-session' (a DTLS device with no session to send in: it
 * must handshake again, which it does when it next talks to us), 'too-large' (a value to write is over the write size
 * limit: nothing was sent), 'cluster-unreachable' (the device talks to another instance of a cluster, and the link
 * between the instances (Redis) cannot be reached: the request was not sent).
 */
export class Lwm2mRequestError extends Lwm2mError {
  override name = 'Lwm2mRequestError';
  constructor(
    message: string,
    override readonly code:
      | CoapCode
      | 'timeout'
      | 'reset'
      | 'not-registered'
      | 'bad-request'
      | 'invalid-response'
      | 'closed'
      | 'overloaded'
      | 'cancelled'
      | 'expired'
      | 'no-session'
      | 'too-large'
      | 'cluster-unreachable',
    readonly endpoint?: string,
    readonly path?: string,
  ) {
    super(message, code);
  }
}

/** Human wording of the CoAP codes a device answers with, for error messages. */
export const COAP_CODE_TEXT: Record<string, string> = {
  '2.01': 'Created',
  '2.02': 'Deleted',
  '2.03': 'Valid',
  '2.04': 'Changed',
  '2.05': 'Content',
  '2.31': 'Continue',
  '4.00': 'Bad Request',
  '4.01': 'Unauthorized',
  '4.02': 'Bad Option',
  '4.03': 'Forbidden',
  '4.04': 'Not Found',
  '4.05': 'Method Not Allowed',
  '4.06': 'Not Acceptable',
  '4.08': 'Request Entity Incomplete',
  '4.09': 'Conflict',
  '4.12': 'Precondition Failed',
  '4.13': 'Request Entity Too Large',
  '4.15': 'Unsupported Content-Format',
  '5.00': 'Internal Server Error',
  '5.01': 'Not Implemented',
  '5.03': 'Service Unavailable',
};

export function describeCode(code: string): string {
  const text = COAP_CODE_TEXT[code];
  return text ? `${code} ${text}` : code;
}

/** Why an exchange with a device failed, in words for a flow or a log. */
export function transportFailureText(err: CoapRequestError): string {
  if (err.reason === 'timeout') return 'no answer from the device (timeout)';
  if (err.reason === 'reset') return 'the device reset the request (RST)';
  return err.message;
}
