/**
 * Queue mode as a sender (Leshan's QueueModeLwM2mRequestSender): a request for a sleeping queue-mode device is held
 * by the queue-mode service until the device wakes, then goes to the wrapped sender; an awake device's goes at once.
 */
import type { IncomingResponse, OutgoingRequest } from '../../coap/types';
import { requestFromWire, requestToWire } from '../cluster';
import type { QueueModeService } from '../queue-mode';
import type { Registration } from '../registration';
import type { DownlinkSender } from './sender';

/** A held request kept across a restart, and how it ended. */
export interface QueuedRequestSettled {
  endpoint: string;
  /** 'PUT /3311/0/5850' */
  description: string;
  /** The device's answer, when there was one. */
  code?: string;
  /** Why it failed (expired, not registered any more, no answer ...). */
  error?: string;
  queuedAt: number;
}

export class QueueModeSender implements DownlinkSender {
  /**
   * `persist`: a store keeps held requests, so each is kept as plain data too (it still goes out after a restart).
   */
  constructor(
    private readonly next: DownlinkSender,
    private readonly queueMode: QueueModeService,
    private readonly persist: boolean,
  ) {}

  send(registration: Registration, request: OutgoingRequest): Promise<IncomingResponse> {
    if (!this.queueMode.isAwake(registration)) {
      const description = `${request.method} /${request.pathSegments.join('/')}`;
      // Kept as plain data when a store holds queued requests: it still goes out after a restart.
      const persisted = this.persist ? requestToWire(request) : undefined;
      return this.queueMode.enqueue(
        registration,
        description,
        (current) => this.next.send(current, request),
        persisted,
      );
    }
    return this.next.send(registration, request);
  }

  /**
   * Holds again the requests a store kept from before a restart (for registrations that still exist); when the
   * device wakes each goes to the wrapped sender, and its outcome is `settled` (its caller is gone).
   */
  restore(
    registrationById: (registrationId: string) => Promise<Registration | undefined>,
    settled: (settled: QueuedRequestSettled) => void,
  ): Promise<number> {
    return this.queueMode.restore(
      (record) => registrationById(record.registrationId),
      (registration, record) => this.next.send(registration, requestFromWire(record.request)),
      (record, outcome) => {
        const report: QueuedRequestSettled = {
          endpoint: record.endpoint,
          description: record.description,
          queuedAt: record.queuedAt,
        };
        if (outcome.value !== undefined) report.code = (outcome.value as IncomingResponse).code;
        if (outcome.error !== undefined) report.error = outcome.error.message;
        settled(report);
      },
    );
  }
}
