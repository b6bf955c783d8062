/**
 * One connection's records in order: while a record is processed asynchronously (a handshake
 * message waiting for a key lookup, an adopted connection's credential re-check), those that arrive
 * wait here, a bounded number, and are processed once it is done.
 */

import type { Peer } from '../transport/types';
import type { DtlsRecord } from './record';

/**
 * Records that arrive while a handshake message is processed asynchronously (a key lookup) wait
 * here; so do records and sends of an adopted connection while its credentials are re-checked.
 */
export const MAX_BACKLOG = 32;

interface ReceivedRecord {
  record: DtlsRecord;
  /** Where the datagram came from (differs from `peer` when a record with our CID arrives from a new address). */
  from: Peer;
}

export class RecordBacklog {
  private busy = false;
  private readonly waiting: ReceivedRecord[] = [];

  constructor(
    /** Handles one record; returns a promise while it is being processed. */
    private readonly process: (record: DtlsRecord, from: Peer) => Promise<void> | undefined,
    /** Whether the connection still takes records. */
    private readonly open: () => boolean,
    /** A record is dropped because too many wait. */
    private readonly full: (from: Peer) => void,
  ) {}

  receive(record: DtlsRecord, from: Peer): void {
    if (this.busy) {
      if (this.waiting.length < MAX_BACKLOG) this.waiting.push({ record, from });
      else this.full(from);
      return;
    }
    const pending = this.process(record, from);
    if (pending !== undefined) this.waitFor(pending);
  }

  /** Holds records back until `pending` settles. */
  waitFor(pending: Promise<void>): void {
    this.busy = true;
    pending.then(
      () => this.drain(),
      () => this.drain(),
    );
  }

  clear(): void {
    this.waiting.length = 0;
  }

  private drain(): void {
    this.busy = false;
    while (this.waiting.length > 0 && this.open()) {
      const { record, from } = this.waiting.shift() as ReceivedRecord;
      const pending = this.process(record, from);
      if (pending !== undefined) {
        this.waitFor(pending);
        return;
      }
    }
  }
}
