/**
 * An LwM2M client-side refusal with the CoAP code to answer the server with. Resource handlers throw it
 * (`throw new ClientError('4.00', 'valve is locked')`); the diagnostic message goes out as the payload.
 */
import { Lwm2mError } from '../errors';
export class ClientError extends Lwm2mError {
  override name = 'ClientError';
  constructor(
    override readonly code: string,
    message?: string,
  ) {
    super(message ?? code, code);
  }
}

export const notFound = (what: string): ClientError => new ClientError('4.04', `${what} not found`);
export const badRequest = (what: string): ClientError => new ClientError('4.00', what);

/** A diagnostic payload for an error response: the message, at most 200 characters. */
export function diagnostic(message: string): Buffer {
  return Buffer.from(message.slice(0, 200), 'utf8');
}
