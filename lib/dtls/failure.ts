// The error of a DTLS handshake that cannot go on.
import { Lwm2mError } from '../errors';

/** A handshake that cannot go on: the fatal alert to send and the reason to report. */
export class HandshakeFailure extends Lwm2mError {
  constructor(
    readonly alert: number,
    reason: string,
  ) {
    super(reason);
    this.name = 'HandshakeFailure';
  }
}
