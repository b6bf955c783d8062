/**
 * The downlink request sender (Leshan's DownlinkRequestSender): how a request of the server reaches a device. The
 * plain sender here puts it on the CoAP endpoint; exchange reporting, queue mode and cluster forwarding are senders
 * that wrap another one (reporting-sender.ts, queue-mode-sender.ts, cluster-sender.ts).
 * Byte counts in this file's comments are garbage per operation, from `node build/bench/read-allocs.js --profile`.
 */
import type { CoapEndpoint } from '../../coap/endpoint';
import type {
  IncomingResponse,
  NotificationListener,
  ObservationHandle,
  OutgoingRequest,
  RequestFailureTranslator,
} from '../../coap/types';
import { CoapRequestError } from '../../coap/types';
import type { DualTransport } from '../../transport/dual';
import type { Peer } from '../../transport/types';
import { Lwm2mRequestError, transportFailureText } from '../errors';
import type { QueueModeService } from '../queue-mode';
import type { Registration } from '../registration';
import type { LifetimeWrites } from '../written-lifetime';
import { mayWriteLifetime } from '../written-lifetime';

/** Sends one request to a registered device and resolves with its answer (any code). */
export interface DownlinkSender {
  send(registration: Registration, request: OutgoingRequest): Promise<IncomingResponse>;
}

/** Starts an observation on a registered device (Observe=0, or FETCH with Observe for a composite one). */
export interface DownlinkObserver {
  observe(
    registration: Registration,
    request: OutgoingRequest,
    listener: NotificationListener,
  ): Promise<{ response: IncomingResponse; observation?: ObservationHandle }>;
}

/**
 * The plain sender: the request goes out now on the running CoAP endpoint (below the device's root path), over
 * the device's DTLS session when it registered over DTLS. It owns the endpoint while the server runs.
 */
export class CoapDownlinkSender implements DownlinkSender, DownlinkObserver {
  /** The CoAP endpoint while the server runs. */
  endpoint?: CoapEndpoint;
  /** Set when a DTLS listener runs (alone or beside the plain one). */
  dual?: DualTransport;

  constructor(
    private readonly queueMode: QueueModeService,
    private readonly lifetimeWrites: LifetimeWrites,
  ) {}

  /** Requests go out on `endpoint` from now on. */
  attach(endpoint: CoapEndpoint, dual: DualTransport | undefined): void {
    this.endpoint = endpoint;
    this.dual = dual;
  }

  /** The endpoint is closing: requests fail with 'closed' from now on. Returns the endpoint that was attached. */
  detach(): CoapEndpoint | undefined {
    const endpoint = this.endpoint;
    this.endpoint = undefined;
    this.dual = undefined;
    return endpoint;
  }

  requireEndpoint(): CoapEndpoint {
    if (!this.endpoint) throw new Lwm2mRequestError('the LwM2M server is not running', 'closed');
    return this.endpoint;
  }

  /** Not an async function: one promise less per request on the common path. */
  send(registration: Registration, request: OutgoingRequest): Promise<IncomingResponse> {
    const endpoint = this.endpoint;
    if (endpoint === undefined)
      return Promise.reject(new Lwm2mRequestError('the LwM2M server is not running', 'closed'));
    const peer = peerOf(registration);
    if (peer.secure && !this.dual?.canReach(peer)) {
      // No session to encrypt with (the device's session expired or the server restarted): only the device
      // can start a handshake; it does when it next talks to us. A queue-mode device is treated as asleep.
      this.queueMode.markAsleep(registration);
      const path = '/' + request.pathSegments.join('/');
      return Promise.reject(
        new Lwm2mRequestError(
          `${path} on ${registration.endpoint}: no DTLS session with the device (it must handshake again)`,
          'no-session',
          registration.endpoint,
          path,
        ),
      );
    }
    const withRoot: OutgoingRequest = registration.rootPath
      ? { ...request, pathSegments: [...registration.rootPath.split('/').filter(Boolean), ...request.pathSegments] }
      : request;
    // The failure is named by a small translator the exchange calls, not by a `.then` on its promise: one
    // promise, reaction and closure less per request (about 250 bytes).
    const sent = endpoint.request(peer, withRoot, new DownlinkFailure(this.queueMode, registration, request));
    // A Write of this server's own lifetime (/1/x/1) the device accepts is adopted by its registration.
    if (request.method === 'GET' || !mayWriteLifetime(request)) return sent;
    return sent.then((response) => this.lifetimeWrites.follow(registration, request, response));
  }

  observe(
    registration: Registration,
    request: OutgoingRequest,
    listener: NotificationListener,
  ): Promise<{ response: IncomingResponse; observation?: ObservationHandle }> {
    return this.requireEndpoint().observe(peerOf(registration), request, listener);
  }
}

export function peerOf(registration: Registration): Peer {
  // A DTLS registration carries its security identity; its key is the `coaps://` one it registered with.
  return registration.security === undefined
    ? { address: registration.address, port: registration.port, key: registration.peerKey }
    : {
        address: registration.address,
        port: registration.port,
        key: registration.peerKey,
        secure: true,
        // Only a session of this identity may carry its requests (see DualTransport.canReach).
        security: registration.security,
      };
}

/** A request's failure in the server's terms; a timeout also marks a queue-mode device asleep. */
class DownlinkFailure implements RequestFailureTranslator {
  constructor(
    private readonly queueMode: QueueModeService,
    private readonly registration: Registration,
    private readonly request: OutgoingRequest,
  ) {}

  failed(err: Error): Error {
    if (err instanceof CoapRequestError && err.reason === 'timeout') this.queueMode.markAsleep(this.registration);
    return transportError(err, this.registration, this.request.pathSegments);
  }
}

function transportError(err: unknown, registration: Registration, segments: string[]): Error {
  const path = '/' + segments.join('/');
  if (err instanceof CoapRequestError) {
    return new Lwm2mRequestError(
      `${path} on ${registration.endpoint}: ${transportFailureText(err)}`,
      err.reason === 'block' ? '4.08' : err.reason,
      registration.endpoint,
      path,
    );
  }
  return err as Error;
}
