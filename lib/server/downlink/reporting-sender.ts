/**
 * Exchange reporting as a sender: each request to a device and how it ended (code or failure, round-trip time)
 * becomes a DeviceExchange for logs and the editor's device view. Nothing is paid unless someone listens.
 */
import type { IncomingResponse, OutgoingRequest } from '../../coap/types';
import type { Registration } from '../registration';
import type { DownlinkSender } from './sender';

/** A request this server sent to a device, and how it ended. */
export interface DeviceExchange {
  endpoint: string;
  method: string;
  /** The request's path ('/3/0/9'), or '' for a request to the root (composite operations). */
  path: string;
  /** The device's answer ('2.05'), absent when there was none. */
  code?: string;
  /** Why there was no answer (timeout, reset, no DTLS session ...). */
  error?: string;
  rttMs: number;
  /** ms since the epoch, when it ended. */
  at: number;
}

/** Where the exchanges go: asked per request whether anyone listens. */
export interface ExchangeReports {
  listening(): boolean;
  report(exchange: DeviceExchange): void;
}

export class ReportingSender implements DownlinkSender {
  constructor(
    private readonly next: DownlinkSender,
    private readonly reports: ExchangeReports,
  ) {}

  send(registration: Registration, request: OutgoingRequest): Promise<IncomingResponse> {
    // Nothing to pay on the request path unless someone logs exchanges.
    if (this.reports.listening()) return this.reported(registration, request, this.next.send(registration, request));
    return this.next.send(registration, request);
  }

  private reported(
    registration: Registration,
    request: OutgoingRequest,
    outcome: Promise<IncomingResponse>,
  ): Promise<IncomingResponse> {
    const started = Date.now();
    const report = (code: string | undefined, error: string | undefined) => {
      const at = Date.now();
      const exchange: DeviceExchange = {
        endpoint: registration.endpoint,
        method: request.method,
        path: request.pathSegments.length > 0 ? '/' + request.pathSegments.join('/') : '',
        rttMs: at - started,
        at,
      };
      if (code !== undefined) exchange.code = code;
      if (error !== undefined) exchange.error = error;
      this.reports.report(exchange);
    };
    return outcome.then(
      (response) => {
        report(response.code, undefined);
        return response;
      },
      (err: unknown) => {
        report(undefined, (err as Error).message);
        throw err;
      },
    );
  }
}
