/** A handshake that cannot go on: the fatal alert to send and the reason to report. */
export class HandshakeFailure extends Error {
  constructor(
    readonly alert: number,
    reason: string,
  ) {
    super(reason);
    this.name = 'HandshakeFailure';
  }
}
