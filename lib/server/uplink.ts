/**
 * Requests devices send to the server, routed by their first path segment: the Registration interface (/rd),
 * Send (/dp, LwM2M 1.1), a bootstrap request sent here by mistake (/bs), and the paths served besides (serve()).
 */
import type { IncomingRequest, OutgoingResponse } from '../coap/types';
import { ContentCodecError } from '../content/types';
import type { ObjectModelLookup } from '../model/types';
import type { QueueModeService } from './queue-mode';
import type { Registration } from './registration';
import type { RegistrationService } from './registration-service';
import { decodeSend } from './send';
import type { SendReport } from './send';
import type { RegistrationStore } from './stores';

/** A handler of requests below a path the server serves besides the LwM2M interfaces. */
export type ServedPath = (
  request: IncomingRequest,
) => OutgoingResponse | undefined | Promise<OutgoingResponse | undefined>;

export interface UplinkDeps {
  registrationService: RegistrationService;
  registrations: RegistrationStore;
  queueMode: QueueModeService;
  model: ObjectModelLookup;
  /** The server's options, read at each Send: whether Send is accepted. */
  options: { readonly acceptSend: boolean };
  /** A device pushed values with Send. */
  sent(report: SendReport): void;
}

export class UplinkRouter {
  /** Paths served besides the LwM2M interfaces (see serve()). */
  private readonly resources = new Map<string, ServedPath>();

  constructor(private readonly deps: UplinkDeps) {}

  async handleRequest(request: IncomingRequest): Promise<OutgoingResponse> {
    const first = request.pathSegments[0];
    if (first === 'rd') return this.deps.registrationService.handle(request);
    if (first === 'dp' && request.pathSegments.length === 1) return this.handleSend(request);
    if (first === 'bs') return { code: '4.04', payload: Buffer.from('this is not a bootstrap server') };
    const served = first === undefined ? undefined : this.resources.get(first);
    if (served) return (await served(request)) ?? { code: '4.04' };
    return { code: '4.04' };
  }

  /** See Lwm2mServer.serve(). */
  serve(firstSegment: string, handler: ServedPath): () => void {
    if (['rd', 'dp', 'bs', ''].includes(firstSegment) || firstSegment.includes('/'))
      throw new RangeError(`cannot serve /${firstSegment}: an LwM2M path, or not one segment`);
    if (this.resources.has(firstSegment)) throw new RangeError(`/${firstSegment} is served already`);
    this.resources.set(firstSegment, handler);
    return () => {
      if (this.resources.get(firstSegment) === handler) this.resources.delete(firstSegment);
    };
  }

  private async handleSend(request: IncomingRequest): Promise<OutgoingResponse> {
    if (request.method !== 'POST') return { code: '4.05' };
    // Send carries no endpoint name: the device is known by where it talks from.
    const registration = await this.deps.registrations.getByPeer(request.peer.key);
    // Over DTLS the address is not enough: another device may have handshaken from it since (NAT port reuse).
    if (!registration || !sameSecurity(registration.security, request.peer.security))
      return { code: '4.04', payload: Buffer.from('not registered: register before Send') };
    this.deps.queueMode.touch(registration);
    if (!this.deps.options.acceptSend)
      return { code: '4.03', payload: Buffer.from('this server does not accept Send') };
    try {
      this.deps.sent(decodeSend(request.payload, request.contentFormat, registration, this.deps.model));
      return { code: '2.04' };
    } catch (err) {
      if (err instanceof ContentCodecError) return { code: err.coapCode, payload: Buffer.from(err.message) };
      throw err;
    }
  }
}

function sameSecurity(a: Registration['security'], b: Registration['security']): boolean {
  return a === undefined ? b === undefined : b !== undefined && a.mode === b.mode && a.identity === b.identity;
}
