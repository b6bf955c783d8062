/**
 * Flights and their retransmission (RFC 6347 §4.2.4): a flight is resent whole, with fresh record
 * sequence numbers, when the timer fires (1 s, doubling up to 60 s) until the peer's next flight
 * arrives.
 */

export const INITIAL_RETRANSMIT_MS = 1000;
export const MAX_RETRANSMIT_MS = 60_000;

export class RetransmitTimer {
  private timer: NodeJS.Timeout | undefined;
  private intervalMs: number;

  constructor(
    private readonly onFire: () => void,
    private readonly initialMs = INITIAL_RETRANSMIT_MS,
    private readonly maxMs = MAX_RETRANSMIT_MS,
  ) {
    this.intervalMs = initialMs;
  }

  get running(): boolean {
    return this.timer !== undefined;
  }

  /** (Re)starts from the initial interval. */
  start(): void {
    this.stop();
    this.intervalMs = this.initialMs;
    this.schedule();
  }

  stop(): void {
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
  }

  private schedule(): void {
    this.timer = setTimeout(() => {
      this.intervalMs = Math.min(2 * this.intervalMs, this.maxMs);
      this.schedule();
      this.onFire();
    }, this.intervalMs);
  }
}

/** Packs encoded records into as few datagrams as fit in `pmtu` bytes (a record bigger than that goes alone). */
export function packDatagrams(records: Buffer[], pmtu: number): Buffer[] {
  const datagrams: Buffer[] = [];
  let pending: Buffer[] = [];
  let pendingLength = 0;
  for (const record of records) {
    if (pendingLength > 0 && pendingLength + record.length > pmtu) {
      datagrams.push(Buffer.concat(pending));
      pending = [];
      pendingLength = 0;
    }
    pending.push(record);
    pendingLength += record.length;
  }
  if (pendingLength > 0) datagrams.push(Buffer.concat(pending));
  return datagrams;
}
