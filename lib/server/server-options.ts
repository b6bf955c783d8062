/**
 * The LwM2M server's options (with their defaults and the preset that turns every flood limit off) and the events
 * it emits.
 */
import type { CoapEndpointOptions } from '../coap/types';
import type { DropReport } from '../dtls/drops';
import type { ObjectModel } from '../model/object-model';
import type { SessionTransport } from '../transport/dual';
import type { DatagramTransport, PeerAddress } from '../transport/types';
import type { ClusterBus } from './cluster';
import type { QueuedRequestSettled } from './downlink/queue-mode-sender';
import type { DeviceExchange } from './downlink/reporting-sender';
import type { LimitReport } from './limit-warnings';
import type { SecureListenerSettings } from './listeners';
import type { NotificationGuardOptions } from './notification-guard';
import type { Notification, ObservationEndCause } from './observation-service';
import type { QueuedRequestStore } from './queue-mode';
import type { Registration } from './registration';
import type { RegistrationLimits } from './registration-admission';
import type { SecurityStore } from './security';
import type { SendReport } from './send';
import type { ObservationStore, RegistrationStore, StoredObservation } from './stores';
import { DEFAULT_MAX_WRITE_BYTES } from './write-limit';

export type { QueuedRequestSettled };

/**
 * Also, from RegistrationLimits: the cap on registrations held and the budget of new registrations per source
 * address; from NotificationGuardOptions: the notification ceiling (pmin unknown) and the flood limit.
 */
export interface Lwm2mServerOptions extends RegistrationLimits, NotificationGuardOptions {
  /** Bind address ('::' = every IPv6 and IPv4 address, the default). */
  address: string;
  /** UDP port (5683). 0 picks a free one (tests). */
  port: number;
  /** A transport to use instead of a UDP socket (tests). */
  transport?: DatagramTransport;
  /** The plain CoAP listener (`port`); false accepts devices over DTLS only. */
  plain: boolean;
  /** The DTLS listener (coaps, 5684 by default); absent = none. Device credentials come from `securityStore`. */
  dtls?: SecureListenerOptions;
  /** A secure transport to use instead of a DTLS socket (tests). */
  secureTransport?: SessionTransport;
  /** Device credentials (PSK, RPK, X.509 pinning): who may register as which endpoint, over which channel. */
  securityStore: SecurityStore;
  coap: Partial<CoapEndpointOptions>;
  lifetimeGraceSeconds: number;
  defaultLifetimeSeconds: number;
  /** Re-send Observe for a device's observed paths when it registers again (its old ones died). */
  reobserveOnRegister: boolean;
  model: ObjectModel;
  registrationStore: RegistrationStore;
  observationStore: ObservationStore;
  /** Accept Send (POST /dp) from devices (LwM2M 1.1); when false they get 4.03. */
  acceptSend: boolean;
  /** Queue mode: how long a device listens after an uplink; default MAX_TRANSMIT_WAIT of the CoAP timing. */
  queueAwakeWindowMs?: number;
  /** Queue mode: requests held for one sleeping device at most. */
  maxQueuedPerDevice: number;
  /** Queue mode: how long a held request waits for the device to wake. */
  queuedRequestTtlMs: number;
  /**
   * Queue mode: where held requests are kept, so that they still go out after a restart (their outcome is then
   * the 'queuedRequestSettled' event: their caller is gone). Absent: held in memory only.
   */
  queuedRequestStore?: QueuedRequestStore;
  /**
   * Several instances sharing one store (Redis): requests for a device go through the instance it talks to.
   * Absent: this server is alone.
   */
  cluster?: ClusterBus;
  /**
   * The largest payload a Write, Write-Composite or Create sends, encoded, in bytes (default 1 MiB; Infinity: no
   * limit); a call may give its own (`maxWriteBytes`). Over it the call fails with 'too-large', nothing sent.
   */
  maxWriteBytes: number;
}

/**
 * The DTLS listener: the server's own credentials (certificate, raw public key, trusted CAs), the limits and the
 * session store. Device credentials are not here: they are looked up in the security store during each handshake.
 */
export type SecureListenerOptions = SecureListenerSettings;

export interface Lwm2mServerEvents {
  registered: [registration: Registration, replaced?: Registration];
  updated: [registration: Registration, previous: Registration];
  deregistered: [registration: Registration];
  expired: [registration: Registration];
  notification: [notification: Notification];
  /** An observation ended: cancelled, the device answered an error, or its registration ended. */
  observationEnded: [observation: StoredObservation, reason: string, cause: ObservationEndCause];
  /**
   * A protection limit acted: a Register refused (cap, per-address budget), requests dropped by the per-address
   * request budget, notifications coalesced or an observation cancelled for flooding. Throttled: the first of a kind
   * at once, then one report a minute per kind with the count.
   */
  limited: [report: LimitReport];
  /** A device pushed values with Send (POST /dp). */
  send: [report: SendReport];
  /** A request held for a sleeping device from before a restart went out (or failed): its caller is gone. */
  queuedRequestSettled: [settled: QueuedRequestSettled];
  /**
   * One request to a device finished (answered, or failed): for logs and the editor's device view. Built only
   * while something listens.
   */
  exchange: [exchange: DeviceExchange];
  /** A queue-mode device is listening (it just sent something). */
  awake: [registration: Registration];
  /** A queue-mode device's listening window closed, or it stopped answering. */
  sleeping: [registration: Registration];
  /** Problems that belong to no caller (a store failing in the background). */
  error: [error: Error];
  started: [address: PeerAddress];
  stopped: [];
  /** A DTLS device's session followed it to a new address (Connection ID): the registration now, and before. */
  moved: [registration: Registration, previous: Registration];
  /** A DTLS handshake failed (wrong key, unknown identity, untrusted certificate): who and why. */
  handshakeFailed: [peer: PeerAddress, reason: string];
  /** DTLS records were dropped: the first of a reason, then at most once a minute per reason, with counts. */
  dtlsRecordsDropped: [drop: DropReport];
}

export const DEFAULT_SERVER_OPTIONS: Omit<
  Lwm2mServerOptions,
  'model' | 'registrationStore' | 'observationStore' | 'securityStore'
> = {
  address: '::',
  port: 5683,
  plain: true,
  coap: {},
  lifetimeGraceSeconds: 15,
  defaultLifetimeSeconds: 86400,
  reobserveOnRegister: true,
  acceptSend: true,
  maxQueuedPerDevice: 32,
  queuedRequestTtlMs: 3_600_000,
  maxWriteBytes: DEFAULT_MAX_WRITE_BYTES,
  // About 0.4 GB of memory at the 4 KB a registered, observed device costs (see the README's measurements).
  maxRegistrations: 100_000,
  // A carrier NAT's or a load balancer's devices registering at once, then a steady pace: see the README.
  newRegistrationsBurstPerAddress: 1000,
  newRegistrationsPerAddressPerSecond: 50,
  maxNotificationsPerSecond: 10,
  notificationBurst: 10,
  floodNotificationsPerSecond: 100,
  floodSeconds: 10,
};

/**
 * Every flood limit of the LwM2M layer off (a lab, a benchmark): no cap on registrations, no budget of new ones per
 * address, no notification coalescing, no flood cancellation. The CoAP request budget is `coap.maxRequestsPerSecondPerAddress`.
 */
export const NO_FLOOD_LIMITS: Readonly<
  RegistrationLimits & Pick<NotificationGuardOptions, 'maxNotificationsPerSecond' | 'floodSeconds'>
> = Object.freeze({
  maxRegistrations: 0,
  newRegistrationsPerAddressPerSecond: 0,
  newRegistrationsBurstPerAddress: 1,
  maxNotificationsPerSecond: 0,
  floodSeconds: 0,
});

/**
 * Requests a second one source address may send (CoAP endpoint token bucket) unless `coap` says otherwise: generous,
 * since many devices can share one address (a carrier NAT, a gateway); per-peer limits still bound one device.
 */
export const DEFAULT_REQUESTS_PER_SECOND_PER_ADDRESS = 5000;

/** RFC 7252 MAX_TRANSMIT_WAIT for the given timing: how long a queue-mode device stays awake at least. */
export function maxTransmitWaitMs(coap: Partial<CoapEndpointOptions>): number {
  const ackTimeout = coap.ackTimeoutMs ?? 2000;
  const factor = coap.ackRandomFactor ?? 1.5;
  const retransmits = coap.maxRetransmit ?? 4;
  return Math.round(ackTimeout * (2 ** (retransmits + 1) - 1) * factor);
}
