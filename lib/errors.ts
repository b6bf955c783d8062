// The one base class of every error lib/ throws or rejects with. A library user or a flow's Catch node can tell the
// library's errors from any other (`err instanceof Lwm2mError`) and read, on every one of them, what the failure
// was in CoAP's terms: the response code sent or received ('4.04', '5.03'), or where no code applies the reason
// in one word ('timeout', 'reset', 'closed', ...). Subclasses narrow `code` to the values they use and add
// their own details (the path, the bootstrap step, the firmware result). Imports nothing: every folder may use it.

export class Lwm2mError extends Error {
  override name = 'Lwm2mError';
  /**
   * The CoAP response code of the failure ('4.00', '4.04', '5.03': the one sent to the device, or the device's
   * answer), or where none applies the reason in one word ('timeout', 'reset', 'closed', 'overloaded', ...);
   * undefined for failures that are neither (a malformed definition file, a bad setting).
   */
  readonly code: string | undefined;

  constructor(message: string, code?: string, options?: ErrorOptions) {
    super(message, options);
    this.code = code;
  }
}
