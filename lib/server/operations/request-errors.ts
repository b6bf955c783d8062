/**
 * The errors of device operations, built the same way everywhere: a request the server refuses before sending
 * ('bad-request'), a device that is not registered, an answer that is not a success or cannot be decoded.
 */
import type { IncomingResponse } from '../../coap/types';
import { ContentCodecError } from '../../content/types';
import { InvalidPathError, LwM2mPath } from '../../model/path';
import { Lwm2mRequestError, describeCode } from '../errors';
import type { Registration } from '../registration';

export function badRequest(message: string, registration: Registration, path: LwM2mPath): Lwm2mRequestError {
  return new Lwm2mRequestError(message, 'bad-request', registration.endpoint, path.toString());
}

export function registeredOrThrow(
  registration: Registration | undefined,
  endpoint: string,
  path: LwM2mPath,
): Registration {
  if (registration) return registration;
  throw new Lwm2mRequestError(`device "${endpoint}" is not registered`, 'not-registered', endpoint, path.toString());
}

export function parsePath(pathText: string, endpoint: string): LwM2mPath {
  try {
    return LwM2mPath.parse(pathText);
  } catch (err) {
    if (err instanceof InvalidPathError)
      throw new Lwm2mRequestError(err.message, 'bad-request', endpoint, String(pathText));
    throw err;
  }
}

/** `path`: the target, or the paths of a composite operation as one text (`/3/0/0,/3303/0/5700`). */
export function invalidResponse(
  err: unknown,
  operation: string,
  endpoint: string,
  path: LwM2mPath | string,
): Lwm2mRequestError {
  const reason = err instanceof ContentCodecError ? err.message : String((err as Error)?.message ?? err);
  return new Lwm2mRequestError(
    `${operation} ${path} on ${endpoint}: the device's answer could not be decoded: ${reason}`,
    'invalid-response',
    endpoint,
    path.toString(),
  );
}

export function expectSuccess(
  response: IncomingResponse,
  operation: string,
  endpoint: string,
  path: LwM2mPath | string,
  expected: string[],
): void {
  if (expected.includes(response.code)) return;
  if (response.code.startsWith('2.')) return; // a device answering 2.04 to a Read is odd, but a success
  const diagnostic =
    response.payload.length > 0 && response.payload.length < 200 ? `: ${response.payload.toString('utf8')}` : '';
  throw new Lwm2mRequestError(
    `${operation} ${path} on ${endpoint} failed: ${describeCode(response.code)}${diagnostic}`,
    response.code,
    endpoint,
    path.toString(),
  );
}
