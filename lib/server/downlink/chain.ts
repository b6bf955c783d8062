/**
 * The downlink sender chain of a server, outermost first: cluster forwarding (when instances share a store),
 * exchange reports, queue mode, the CoAP endpoint.
 */
import type { ClusterBus } from '../cluster';
import type { QueueModeService } from '../queue-mode';
import type { LifetimeWrites } from '../written-lifetime';
import { ClusterSender } from './cluster-sender';
import type { ClusterSenderDeps } from './cluster-sender';
import { QueueModeSender } from './queue-mode-sender';
import { ReportingSender } from './reporting-sender';
import type { ExchangeReports } from './reporting-sender';
import { CoapDownlinkSender } from './sender';
import type { DownlinkObserver, DownlinkSender } from './sender';

export interface DownlinkChain {
  /** The plain sender: it holds the CoAP endpoint while the server runs. */
  coap: CoapDownlinkSender;
  /** Queue mode: restores the requests held before a restart. */
  queued: QueueModeSender;
  /** Where requests to devices go: the outermost sender. */
  sender: DownlinkSender;
  /** Where observations start: through the cluster, or on the CoAP endpoint. */
  observer: DownlinkObserver;
  /** Present when instances share a store. */
  cluster?: ClusterSender;
}

export interface DownlinkParts {
  queueMode: QueueModeService;
  lifetimeWrites: LifetimeWrites;
  /** A store keeps held requests (they go out after a restart). */
  persistQueued: boolean;
  reports: ExchangeReports;
  cluster?: { bus: ClusterBus; deps: ClusterSenderDeps };
}

export function downlinkChain(parts: DownlinkParts): DownlinkChain {
  const coap = new CoapDownlinkSender(parts.queueMode, parts.lifetimeWrites);
  const queued = new QueueModeSender(coap, parts.queueMode, parts.persistQueued);
  const here = new ReportingSender(queued, parts.reports);
  if (parts.cluster === undefined) return { coap, queued, sender: here, observer: coap };
  const cluster = new ClusterSender(parts.cluster.bus, here, coap, parts.cluster.deps);
  return { coap, queued, sender: cluster, observer: cluster, cluster };
}
