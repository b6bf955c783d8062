/**
 * A firmware job's cancel: whether one was asked for (before or while the job runs), and the gate every
 * request of the job races against, so that a cancel ends what the job waits for at once.
 */
import { Failure } from './failure';

export class CancelGate {
  /** A cancel was asked for. */
  requested = false;
  private rejectGate?: (err: Error) => void;
  private readonly gate: Promise<never>;

  constructor() {
    this.gate = new Promise<never>((_resolve, reject) => (this.rejectGate = reject));
    this.gate.catch(() => undefined);
  }

  /** Cancels what races the gate now: it rejects with the caller's cancel. */
  close(): void {
    this.requested = true;
    this.rejectGate?.(new Failure('cancelled by the caller', 'cancelled'));
  }

  /** `promise`, unless the gate closes first (`promise` may reject later: that is ignored). */
  race<T>(promise: Promise<T>): Promise<T> {
    promise.catch(() => undefined);
    return Promise.race([promise, this.gate]);
  }
}
