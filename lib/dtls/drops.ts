/**
 * Records and datagrams the DTLS server drops, counted by reason and reported at most once per reason a
 * minute: a drop is silent on the wire (RFC 6347 §4.1.2.7), so this is the only trace a misbehaving (or
 * misconfigured) device leaves.
 */

import type { PeerAddress } from '../transport/types';

/** Why a record (or what was left of a datagram) was dropped, and how that reads in a log line. */
export const DROP_REASONS = {
  malformed: 'not a DTLS record, or truncated',
  'bad-version': 'record version is not DTLS 1.2',
  'bad-client-hello': 'ClientHello that cannot be parsed (or fragmented)',
  'no-session': 'no session or handshake with this peer (a server restart, or an expired session)',
  'bad-mac': 'failed authentication (bad MAC: tampered, or keys not matching)',
  replay: 'replayed or duplicated record',
  epoch: 'epoch with no keys',
  unexpected: 'content type not allowed at this stage',
  busy: 'arrived while the session was busy and its backlog full',
  'handshake-refused': 'new handshake refused: maxSessions established sessions in use',
  starting: 'arrived while the listener was starting, over its backlog',
} as const;

export type DropReason = keyof typeof DROP_REASONS;

/** What one report says: the reason, the peer of the drop that triggered it, and the counts. */
export interface DropReport {
  reason: DropReason;
  /** What the reason means, in words. */
  description: string;
  peer: PeerAddress;
  /** Drops for this reason since the transport started. */
  total: number;
  /** Of those, the ones since the previous report for this reason (this one included). */
  sinceLastReport: number;
}

/** Counts per reason; `report` is called for the first drop of a reason, then at most once per interval. */
export class DropLog {
  readonly counts: Record<DropReason, number>;
  private readonly reportedAt = new Map<DropReason, { at: number; total: number }>();

  constructor(
    private readonly report: (drop: DropReport) => void,
    private readonly intervalMs = 60_000,
    private readonly now: () => number = Date.now,
  ) {
    this.counts = Object.fromEntries(Object.keys(DROP_REASONS).map((reason) => [reason, 0])) as Record<
      DropReason,
      number
    >;
  }

  add(reason: DropReason, peer: PeerAddress): void {
    const total = ++this.counts[reason];
    const now = this.now();
    const previous = this.reportedAt.get(reason);
    if (previous !== undefined && now - previous.at < this.intervalMs) return;
    this.reportedAt.set(reason, { at: now, total });
    this.report({
      reason,
      description: DROP_REASONS[reason],
      peer: { address: peer.address, port: peer.port },
      total,
      sinceLastReport: total - (previous?.total ?? 0),
    });
  }

  /** The reasons with drops, and their counts. */
  nonZero(): Partial<Record<DropReason, number>> {
    return Object.fromEntries(Object.entries(this.counts).filter(([, count]) => count > 0));
  }
}
