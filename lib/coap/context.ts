/**
 * What the layers of one CoAP endpoint share: the resolved options, the counters, the one timer heap, the
 * transport, the peers, whether the endpoint is closed, and where errors with nowhere else to go are reported.
 */
import type { DatagramTransport } from '../transport/types';
import { sizeToSzx } from './codec';
import type { ResolvedCoapEndpointOptions } from './endpoint-options';
import { PeerTable } from './peer';
import { newCounters, type Counters } from './stats';
import { TimerHeap } from './timers';

/** Receives errors that have nowhere else to go (the endpoint's `onError`, read when an error comes). */
export interface ErrorSink {
  onError: (err: unknown) => void;
}

export class EndpointContext {
  closed = false;
  readonly st: Counters = newCounters();
  readonly timers: TimerHeap;
  readonly peers = new PeerTable();
  /** SZX of our block size. */
  readonly ourSzx: number;

  constructor(
    readonly o: ResolvedCoapEndpointOptions,
    readonly transport: DatagramTransport,
    private readonly errors: ErrorSink,
  ) {
    this.ourSzx = sizeToSzx(o.blockSize);
    this.timers = new TimerHeap(Math.min(50, o.ackTimeoutMs / 40));
    this.timers.onError = (err) => this.reportError(err);
  }

  /** RFC 7252 §4.2: the first retransmission timeout of a CON, random in ACK_TIMEOUT..ACK_TIMEOUT * ACK_RANDOM_FACTOR. */
  initialRto(): number {
    return this.o.ackTimeoutMs * (1 + Math.random() * (this.o.ackRandomFactor - 1));
  }

  reportError(err: unknown): void {
    try {
      this.errors.onError(err);
    } catch {
      // ignore
    }
  }

  /** A caller's progress callback: what it throws must not break the exchange, so it is reported instead. */
  progressOf(callback: (sent: number, total: number) => void, sent: number, total: number): void {
    try {
      callback(sent < total ? sent : total, total);
    } catch (err) {
      this.reportError(err);
    }
  }
}
