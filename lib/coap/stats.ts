/**
 * The CoAP endpoint's statistics: the counters every layer bumps (monotonic since start) and the shape of
 * `CoapEndpoint.stats()`, which adds the gauges (current sizes) each layer reports.
 */

/** Counters (monotonic since start) and gauges (current sizes). */
export interface CoapEndpointStats {
  /** Requests received and handed on (duplicates, rate-limited and unparsable ones excluded). */
  requestsIn: number;
  /** Request messages sent (each block counts; retransmissions excluded). */
  requestsOut: number;
  /** Responses received to our requests (each block counts). */
  responsesIn: number;
  notificationsIn: number;
  /** Notifications we sent as the observed party (`notify()`; retransmissions excluded). */
  notificationsOut: number;
  /** RSTs received in answer to our notifications (the observer ended the observation). */
  notificationResets: number;
  /** Stale notifications dropped by the RFC 7641 §3.4 ordering rule. */
  staleNotifications: number;
  retransmissions: number;
  /** Duplicate CON/NON messages recognised (answered from the cache or ignored). */
  duplicates: number;
  /** Datagrams ignored: malformed, unmatched, rate-limited, NON over the concurrency limit. */
  dropped: number;
  /** Requests dropped by the per-address token bucket (also counted in dropped). */
  rateLimited: number;
  /** 5.03 sent because of the concurrency limits, or NON dropped for it. */
  overloaded: number;
  /** Outgoing requests failed with 'timeout' / 'reset'. */
  timeouts: number;
  resets: number;
  /** RSTs we sent (unknown tokens, cancelled observations, unparsable CON, pings). */
  resetsSent: number;
  // gauges
  /**
   * Outgoing requests in progress + incoming requests being handled + separate responses awaiting ACK
   * + CON notifications awaiting ACK.
   */
  activeExchanges: number;
  outgoingRequests: number;
  incomingInFlight: number;
  separateResponsesPending: number;
  /** CON notifications awaiting their ACK. */
  notificationsPending: number;
  queued: number;
  dedupEntries: number;
  blockTransfers: number;
  cachedBlockResponses: number;
  observations: number;
  peers: number;
  trackedAddresses: number;
}

/** The monotonic part of the statistics, one object per endpoint shared by its layers. */
export type Counters = Omit<
  CoapEndpointStats,
  | 'activeExchanges'
  | 'outgoingRequests'
  | 'incomingInFlight'
  | 'separateResponsesPending'
  | 'notificationsPending'
  | 'queued'
  | 'dedupEntries'
  | 'blockTransfers'
  | 'cachedBlockResponses'
  | 'observations'
  | 'peers'
  | 'trackedAddresses'
>;

export function newCounters(): Counters {
  return {
    requestsIn: 0,
    requestsOut: 0,
    responsesIn: 0,
    notificationsIn: 0,
    notificationsOut: 0,
    notificationResets: 0,
    staleNotifications: 0,
    retransmissions: 0,
    duplicates: 0,
    dropped: 0,
    rateLimited: 0,
    overloaded: 0,
    timeouts: 0,
    resets: 0,
    resetsSent: 0,
  };
}
