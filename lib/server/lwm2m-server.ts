import { EventEmitter } from 'node:events';
import { CoapEndpoint } from '../coap/endpoint';
import type {
  CoapEndpointOptions,
  IncomingRequest,
  IncomingResponse,
  NotificationListener,
  ObservationHandle,
  OutgoingRequest,
  OutgoingResponse,
} from '../coap/types';
import { CoapRequestError } from '../coap/types';
import { decodeNode, decodeNodes, encodeNode, encodePatch, encodePaths, isSupportedFormat } from '../content';
import { checkLinkAttributes, parseLinkFormat } from '../content/link-format';
import type { Link } from '../content/link-format';
import { ContentCodecError, ContentFormat } from '../content/types';
import { ObjectModel } from '../model/object-model';
import { LwM2mPath, InvalidPathError } from '../model/path';
import type { LwM2mNode, ResourceDefinition } from '../model/types';
import { fromPlain, toPlain } from '../model/values';
import { MemoryObservationStore, MemoryRegistrationStore } from './memory-stores';
import { MemorySecurityStore } from './memory-security-store';
import { DualTransport } from '../transport/dual';
import { peerKey } from '../transport/peer';
import type { SessionTransport } from '../transport/dual';
import type { DatagramTransport, Peer, PeerAddress } from '../transport/types';
import type { NotificationAttributes } from './attributes';
import { AttributeError, attributesToQuery } from './attributes';
import { carriesEmptyInstance, emptyInstanceFormats, memoCandidateFormats } from './content-negotiation';
import { compositeFailure } from './composite-errors';
import { DEFAULT_MAX_WRITE_BYTES, checkWriteSize } from './write-limit';
import { Lwm2mRequestError, describeCode, transportFailureText } from './errors';
import { ObservationService, keyOf, plainByPath } from './observation-service';
import type { Notification, ObservationEndCause } from './observation-service';
import { LimitWarnings, watchRequestBudget } from './limit-warnings';
import type { LimitReport } from './limit-warnings';
import type { RegistrationLimits } from './registration-admission';
import type { NotificationGuardOptions } from './notification-guard';
import { LifetimeWrites, mayWriteLifetime } from './written-lifetime';
import type { Registration } from './registration';
import { QueueModeService } from './queue-mode';
import type { QueuedRequestStore } from './queue-mode';
import { RegistrationService } from './registration-service';
import { decodeSend } from './send';
import type { SendReport } from './send';
import { openListeners } from './listeners';
import type { SecureListenerSettings } from './listeners';
import type { DropReport } from '../dtls/drops';
import type { SecurityInfo, SecurityStore } from './security';
import type { ObservationStore, RegistrationStore, StoredObservation } from './stores';
import { StoreUnreachableError } from './stores';
import type { ClusterBus, ClusterCall } from './cluster';
import { INSTANCE_GONE, requestFromWire, requestToWire, responseFromWire, responseToWire } from './cluster';

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

/** What every device operation resolves with. */
export interface OperationResult {
  endpoint: string;
  path: string;
  /** The device's success code ('2.05', '2.04', ...). */
  code: string;
  contentFormat?: number;
  /** Round-trip time of the whole exchange (all blocks, all format retries) in ms. */
  rttMs: number;
}

export interface ReadResult extends OperationResult {
  node: LwM2mNode;
  /** The value in msg shape (see model/values toPlain). */
  value: unknown;
}

export interface CompositeReadResult extends OperationResult {
  nodes: Map<string, LwM2mNode>;
  /** Path -> msg-shaped value. */
  values: Record<string, unknown>;
}

export interface CompositeObserveResult extends CompositeReadResult {
  observationId: string;
  joined: boolean;
}

export interface DiscoverResult extends OperationResult {
  links: Link[];
}

export interface CreateResult extends OperationResult {
  /** Path of the created instance (from Location-Path, or the one we asked for). */
  instancePath?: string;
}

export interface ObserveResult extends ReadResult {
  observationId: string;
  /** True when this call joined an observation that already existed (another node, or a redeploy). */
  joined: boolean;
  /** 1.0/1.1: another owner's attributes on this path were replaced by ours (last write wins). */
  attributesReplaced?: { owner: string; attributes: string[] };
  /** 1.2: the observation already existed with its own attributes; the ones asked for were not applied. */
  attributesNotApplied?: boolean;
}

export interface RequestOptions {
  /** Content format to use instead of the negotiated one. */
  format?: number;
  timeoutMs?: number;
}

/** For what sends a value (Write, Write-Composite, Create): this call's size limit instead of the server's. */
export interface WriteLimitOptions {
  /** Bytes, of the encoded payload; Infinity: none (a firmware push). */
  maxWriteBytes?: number;
}

export interface WriteOptions extends RequestOptions, WriteLimitOptions {
  /** 'replace' (PUT, the default) or 'update' (POST: partial update of an instance). */
  mode?: 'replace' | 'update';
  /** Bytes acknowledged by the device so far, for a value sent block by block (Block1): a firmware push. */
  onProgress?: (sentBytes: number, totalBytes: number) => void;
}

export interface WriteAttributesResult extends OperationResult {
  /** The Uri-Query sent ('pmin=10', ...). */
  attributes: string[];
  /**
   * In LwM2M 1.0/1.1 attributes belong to (server, path): when another owner had written different
   * ones for this path, they are replaced (last write wins) and reported here so the caller can warn.
   */
  replaced?: { owner: string; attributes: string[] };
}

export interface ObserveOptions extends RequestOptions {
  /** Who asks (a node id): the device observation is cancelled only when its last owner cancels. */
  owner?: string;
  /**
   * Notification attributes: carried in the Observe request itself for a 1.2 device (they belong to
   * that observation); written with Write-Attributes first for 1.0/1.1 (they belong to the path).
   */
  attributes?: NotificationAttributes;
}

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

/**
 * The LwM2M server facade: owns the CoAP endpoint, the registration service, the observation service
 * and the request sender. It can be stopped and started again (a Node-RED redeploy): the stores and
 * the live observations survive in between, so devices are not lost.
 */
export class Lwm2mServer extends EventEmitter<Lwm2mServerEvents> {
  readonly options: Lwm2mServerOptions;
  readonly registrations: RegistrationStore;
  readonly model: ObjectModel;
  private endpoint?: CoapEndpoint;
  private readonly registrationService: RegistrationService;
  private readonly observationService: ObservationService;
  private readonly queueMode: QueueModeService;
  private boundAddress?: PeerAddress;
  /** Paths served besides the LwM2M interfaces (see serve()). */
  private readonly resources = new Map<
    string,
    (request: IncomingRequest) => OutgoingResponse | undefined | Promise<OutgoingResponse | undefined>
  >();
  /** Set when a DTLS listener runs (alone or beside the plain one). */
  private dual?: DualTransport;
  /** Who last wrote attributes on (registration id, path), to tell observers apart (LwM2M 1.0/1.1). */
  private readonly attributeWriters = new Map<string, { owner: string; attributes: string[] }>();
  /** Observations other instances asked for through this one (`peerKey|token`), with notifications held for them. */
  private readonly foreignObservations = new Map<
    string,
    { handle: ObservationHandle; held: IncomingResponse[]; timer?: NodeJS.Timeout }
  >();
  private starting?: Promise<PeerAddress>;
  private readonly limitWarnings = new LimitWarnings((report) => this.emit('limited', report));
  private readonly lifetimeWrites: LifetimeWrites;
  /** Watches the endpoint's per-address request budget (drops are counted there) to report them. */
  private requestBudgetTimer?: NodeJS.Timeout;

  constructor(options: Partial<Lwm2mServerOptions> = {}) {
    super();
    // Many listen by design: every node of a flow, every running firmware job (a campaign runs dozens at once).
    this.setMaxListeners(0);
    this.options = {
      ...DEFAULT_SERVER_OPTIONS,
      ...options,
      model: options.model ?? ObjectModel.withBuiltins(),
      registrationStore: options.registrationStore ?? new MemoryRegistrationStore(),
      observationStore: options.observationStore ?? new MemoryObservationStore(),
      securityStore: options.securityStore ?? new MemorySecurityStore(),
    };
    this.model = this.options.model;
    this.registrations = this.options.registrationStore;
    this.registrationService = new RegistrationService(
      this.registrations,
      this.options,
      {
        registered: (registration, replaced) => this.onRegistered(registration, replaced),
        updated: (registration, previous) => this.onUpdated(registration, previous),
        deregistered: (registration) => this.onRegistrationEnded(registration, 'deregistered'),
        expired: (registration) => this.onRegistrationEnded(registration, 'expired'),
        refused: (endpoint, address, refusal) =>
          this.limitWarnings.note(
            refusal.kind,
            `refused the Register of "${endpoint}" from ${address}: ${refusal.reason}`,
          ),
        expiryFailed: (error) => this.emitError(error),
      },
      this.options.securityStore,
    );
    this.lifetimeWrites = new LifetimeWrites(
      this.model,
      (registrationId, lifetime) => this.registrationService.adoptWrittenLifetime(registrationId, lifetime),
      (error) => this.emitError(error),
    );
    this.queueMode = new QueueModeService(
      {
        awakeWindowMs: this.options.queueAwakeWindowMs ?? maxTransmitWaitMs(this.options.coap),
        maxQueuedPerDevice: this.options.maxQueuedPerDevice,
        requestTtlMs: this.options.queuedRequestTtlMs,
      },
      {
        awake: (registration) => this.emit('awake', registration),
        sleeping: (registration) => this.emit('sleeping', registration),
        error: (error) => this.emitError(error),
      },
      this.options.queuedRequestStore,
    );
    this.observationService = new ObservationService(this.options.observationStore, {
      model: this.model,
      send: (registration, request) => this.send(registration, request),
      registrationById: (registrationId) => this.registrations.getById(registrationId),
      observe: (registration, request, listener) => {
        const owner = this.remoteOwner(registration);
        if (owner !== undefined) return this.forwardObserve(owner, registration, request, listener);
        return this.requireEndpoint().observe(peerOf(registration), request, listener);
      },
      decode: (payload, format, path) => this.decode(payload, format, path),
      decodeComposite: (payload, format, paths) =>
        decodeNodes(payload, format ?? ContentFormat.SENML_CBOR, this.model, paths),
      cancelRequest: (stored, paths) =>
        paths.length === 1
          ? {
              method: 'GET',
              pathSegments: segmentsOf(paths[0]),
              observe: 1,
              token: Buffer.from(stored.token, 'hex'),
              accept: stored.contentFormat,
            }
          : {
              method: 'FETCH',
              pathSegments: [],
              observe: 1,
              token: Buffer.from(stored.token, 'hex'),
              accept: stored.contentFormat,
              // LwM2M CBOR carries no path list: a 1.2 device asked for it got an ETCH CBOR list.
              ...(stored.contentFormat === ContentFormat.LWM2M_CBOR
                ? {
                    contentFormat: ContentFormat.SENML_ETCH_CBOR,
                    payload: encodePaths(paths, ContentFormat.SENML_ETCH_CBOR),
                  }
                : {
                    contentFormat: stored.contentFormat,
                    payload: encodePaths(paths, stored.contentFormat ?? ContentFormat.SENML_CBOR),
                  }),
            },
      notify: (notification) => {
        this.queueMode.touchEndpoint(notification.endpoint);
        this.emit('notification', notification);
      },
      ended: (observation, reason, cause) => this.emit('observationEnded', observation, reason, cause),
      limited: (kind, detail) => this.limitWarnings.note(kind, detail),
      error: (error) => this.emitError(error),
      guard: this.options,
    });
    this.observationService.onIndexed = (stored) => this.releaseHeldNotifications(stored);
  }

  get running(): boolean {
    return this.endpoint !== undefined;
  }

  /** The plain CoAP listener's address (the DTLS one's when plain is off). */
  get address(): PeerAddress | undefined {
    return this.boundAddress;
  }

  /** The DTLS listener's address, when one runs. */
  get secureAddress(): PeerAddress | undefined {
    return this.dual?.secureAddress();
  }

  /** Device credentials (PSK identities and keys, raw public keys, X.509 pinning). */
  get securityStore(): SecurityStore {
    return this.options.securityStore;
  }

  /**
   * Ends the DTLS sessions made with these credentials (removed or replaced in the security store): the device
   * must handshake again, with what the store holds now. Returns how many sessions ended.
   */
  revokeSessions(info: SecurityInfo): number {
    const close = this.dual?.secure?.closeSessionsOf;
    if (!close) return 0;
    return close.call(this.dual!.secure, (security) =>
      info.mode === 'psk'
        ? security.mode === 'psk' && security.identity === info.identity
        : security.mode === info.mode && security.identity === info.endpoint,
    );
  }

  /** DTLS records dropped by the listener running now, by reason (empty without DTLS or drops). */
  dtlsDroppedRecords(): Partial<Record<string, number>> {
    return this.dual?.secure?.droppedRecords?.() ?? {};
  }

  /** Binds the endpoint and starts expiry; safe to call again while running. */
  start(): Promise<PeerAddress> {
    if (this.boundAddress && this.endpoint) return Promise.resolve(this.boundAddress);
    this.starting ??= this.doStart().finally(() => (this.starting = undefined));
    return this.starting;
  }

  private async doStart(): Promise<PeerAddress> {
    // A fleet re-registering at once (after an outage) arrives in bursts: a 4 MiB receive buffer keeps
    // the kernel from dropping them (its default overflows at ~200 datagrams).
    const { transport, dual } = openListeners(
      { ...this.options, defaultSecurePort: 5684, recvBufferSize: 4 * 1024 * 1024 },
      {
        error: (err) => this.emitError(err),
        handshakeFailed: (peer, reason) => this.emit('handshakeFailed', peer, reason),
        recordsDropped: (drop) => this.emit('dtlsRecordsDropped', drop),
      },
    );
    if (dual) dual.onPeerMoved = (key, current) => void this.followMovedPeer(key, current);
    // Many devices can share one address (carrier NAT, a gateway): the per-address budget is generous;
    // per-peer limits still bound what one device can cause.
    const endpoint = new CoapEndpoint(transport, {
      maxRequestsPerSecondPerAddress: DEFAULT_REQUESTS_PER_SECOND_PER_ADDRESS,
      ...this.options.coap,
    });
    endpoint.setRequestHandler((request) => this.handleRequest(request));
    endpoint.setUnknownNotificationHandler((notification) => this.observationService.adopt(notification));
    const address = await endpoint.start();
    // Sessions taken over from the previous listener that had moved (Connection ID) go on under the keys they
    // started with.
    if (dual?.secure) await this.restoreMovedPeers(dual);
    this.endpoint = endpoint;
    this.dual = dual;
    this.boundAddress = address;
    try {
      await this.observationService.load();
      await this.registrationService.start();
      this.queueMode.start();
      this.options.cluster?.serve((call) => this.serveClusterCall(call));
      await this.queueMode.restore(
        (record) => this.registrations.getById(record.registrationId),
        (registration, record) => this.sendNow(registration, requestFromWire(record.request)),
        (record, outcome) => {
          const settled: QueuedRequestSettled = {
            endpoint: record.endpoint,
            description: record.description,
            queuedAt: record.queuedAt,
          };
          if (outcome.value !== undefined) settled.code = (outcome.value as IncomingResponse).code;
          if (outcome.error !== undefined) settled.error = outcome.error.message;
          this.emit('queuedRequestSettled', settled);
        },
      );
    } catch (err) {
      // Not stop(): it waits for the start in progress, which is this one.
      await this.stopNow();
      throw err;
    }
    this.requestBudgetTimer = watchRequestBudget(
      () => endpoint.stats().rateLimited,
      this.options.coap.maxRequestsPerSecondPerAddress ?? DEFAULT_REQUESTS_PER_SECOND_PER_ADDRESS,
      this.limitWarnings,
    );
    this.emit('started', address);
    return address;
  }

  /**
   * A registration whose key is not the one of its address belongs to a DTLS session that moved. Its session
   * outlives a redeploy (kept in the host's session store), so the new transport must know the old key.
   */
  private async restoreMovedPeers(dual: DualTransport): Promise<void> {
    for (const registration of await this.registrations.list()) {
      if (registration.security === undefined) continue;
      if (registration.peerKey === peerKey(registration.address, registration.port, true)) continue;
      const at = { address: registration.address, port: registration.port };
      // Only for a session that was taken over, with this identity: anyone else there is another device.
      const session = dual.secure?.sessionSecurity?.(at);
      if (session?.mode !== registration.security.mode || session.identity !== registration.security.identity) continue;
      dual.restoreMovedPeer(registration.peerKey, at, registration.security);
    }
  }

  /**
   * A DTLS session moved (Connection ID after a NAT rebinding): the registration shows the device's new
   * address. Requests need nothing: they go by the session's key, which stays the same.
   */
  private async followMovedPeer(key: string, current: PeerAddress): Promise<void> {
    try {
      const registration = await this.registrations.getByPeer(key);
      if (!registration || (registration.address === current.address && registration.port === current.port)) return;
      await this.registrations.update({ ...registration, address: current.address, port: current.port });
      this.emit('moved', { ...registration, address: current.address, port: current.port }, registration);
    } catch (err) {
      this.emitError(err as Error);
    }
  }

  /** Closes the socket and stops timers. Registrations and observations stay in their stores. */
  async stop(): Promise<void> {
    if (this.starting) await this.starting.catch(() => undefined);
    await this.stopNow();
  }

  private async stopNow(): Promise<void> {
    this.options.cluster?.serve(undefined);
    for (const held of this.foreignObservations.values()) clearTimeout(held.timer);
    this.foreignObservations.clear();
    this.registrationService.stop();
    this.queueMode.stop();
    this.observationService.detach();
    clearInterval(this.requestBudgetTimer);
    this.requestBudgetTimer = undefined;
    this.limitWarnings.stop();
    const endpoint = this.endpoint;
    this.endpoint = undefined;
    this.dual = undefined;
    this.boundAddress = undefined;
    if (endpoint) {
      await endpoint.close();
      this.emit('stopped');
    }
  }

  getRegistration(endpoint: string): Promise<Registration | undefined> {
    return this.registrations.getByEndpoint(endpoint);
  }

  listRegistrations(): Promise<Registration[]> {
    return this.registrations.list();
  }

  listObservations(endpoint?: string): Promise<StoredObservation[]> {
    return this.observationService.list(endpoint);
  }

  // ---- Device management ---------------------------------------------------------------------

  async read(endpointName: string, pathText: string, options: RequestOptions = {}): Promise<ReadResult> {
    // The hot path of a flow: a registration found without a promise (memory store), the candidate
    // formats memoised, one awaited request per format tried (see withFormats for the other operations).
    const found = this.targetNow(endpointName, pathText);
    const { registration, path } = found instanceof Promise ? await found : found;
    if (path.isRoot()) throw badRequest('Read needs an object, instance or resource path, not /', registration, path);
    if (path.isResourceInstance() && registration.lwm2mVersion === '1.0') {
      throw badRequest('reading a resource instance is LwM2M 1.1: this device registered as 1.0', registration, path);
    }
    const formats = this.formatsFor(registration, path, options.format, 'Read');
    const started = Date.now();
    const pathSegments = segmentsOf(path);
    const timeoutMs = options.timeoutMs;
    let format = formats[0];
    let response = await this.send(registration, { method: 'GET', pathSegments, accept: format, timeoutMs });
    for (let i = 1; i < formats.length && (response.code === '4.06' || response.code === '4.15'); i++) {
      format = formats[i];
      response = await this.send(registration, { method: 'GET', pathSegments, accept: format, timeoutMs });
    }
    expectSuccess(response, 'Read', registration.endpoint, path, ['2.05']);
    const contentFormat = response.contentFormat ?? format;
    const node = this.decodeResponse(response.payload, contentFormat, path, registration.endpoint);
    return {
      endpoint: registration.endpoint,
      path: path.toString(),
      code: response.code,
      contentFormat,
      rttMs: Date.now() - started,
      node,
      value: toPlain(node, path, this.model),
    };
  }

  /**
   * Discover. `depth` (LwM2M 1.2: 0 = the target only, 1 = one level down, ... 3 = resource instances)
   * limits how far the device lists; it is refused for 1.0/1.1 devices, which do not know it.
   */
  async discover(
    endpointName: string,
    pathText: string,
    options: RequestOptions & { depth?: number } = {},
  ): Promise<DiscoverResult> {
    const { registration, path } = await this.target(endpointName, pathText);
    if (path.isRoot() || path.isResourceInstance()) {
      throw badRequest(`Discover needs an object, instance or resource path, not ${path}`, registration, path);
    }
    const depth = options.depth;
    if (depth !== undefined) {
      if (registration.lwm2mVersion !== '1.2') throw badRequest('Discover depth is LwM2M 1.2', registration, path);
      if (!Number.isInteger(depth) || depth < 0 || depth > 3)
        throw badRequest(`depth must be 0 to 3, got ${depth}`, registration, path);
    }
    const started = Date.now();
    const response = await this.exchange(registration, path, 'Discover', '2.05', {
      method: 'GET',
      accept: ContentFormat.LINK_FORMAT,
      ...(depth !== undefined ? { query: [`depth=${depth}`] } : {}),
      timeoutMs: options.timeoutMs,
    });
    let links: Link[];
    try {
      links = stripRoot(parseLinkFormat(response.payload.toString('utf8')), registration.rootPath);
      for (const link of links) checkLinkAttributes(link); // dim and ssid in range, else an error naming the link
    } catch (err) {
      throw invalidResponse(err, 'Discover', registration.endpoint, path);
    }
    return {
      endpoint: registration.endpoint,
      path: path.toString(),
      code: response.code,
      contentFormat: ContentFormat.LINK_FORMAT,
      rttMs: Date.now() - started,
      links,
    };
  }

  /** Write (replace with PUT, or partial update with POST). `value` is a msg-shaped value or a node. */
  async write(
    endpointName: string,
    pathText: string,
    value: unknown,
    options: WriteOptions = {},
  ): Promise<OperationResult> {
    const { registration, path } = await this.target(endpointName, pathText);
    if (path.isRoot() || path.isObject()) {
      throw badRequest(`Write needs an instance, resource or resource instance path, not ${path}`, registration, path);
    }
    const mode = options.mode ?? 'replace';
    if (mode === 'update' && !path.isObjectInstance() && !(path.isResource() && this.isMultiple(path))) {
      throw badRequest('a partial update (POST) applies to an instance or a multiple resource', registration, path);
    }
    const node = this.toNode(value, path, registration);
    const started = Date.now();
    const { response, format } = await this.withFormats(
      registration,
      path,
      options.format,
      'Write',
      async (contentFormat) => ({
        response: await this.send(registration, {
          method: mode === 'replace' ? 'PUT' : 'POST',
          pathSegments: segmentsOf(path),
          contentFormat,
          payload: this.sized(
            this.encode(node, contentFormat, path, registration),
            options,
            'Write',
            path,
            registration,
            contentFormat,
          ),
          timeoutMs: options.timeoutMs,
          ...(options.onProgress ? { onProgress: options.onProgress } : {}),
        }),
      }),
    );
    expectSuccess(response, 'Write', registration.endpoint, path, ['2.04']);
    return result(registration, path, response, started, format);
  }

  /** Execute with optional arguments: a string as the device expects it (`0='on',1`) or a list/object. */
  async execute(
    endpointName: string,
    pathText: string,
    args?: unknown,
    options: RequestOptions = {},
  ): Promise<OperationResult> {
    const { registration, path } = await this.target(endpointName, pathText);
    if (!path.isResource()) throw badRequest(`Execute needs a resource path, not ${path}`, registration, path);
    const definition = this.resourceDefinition(path);
    if (definition && definition.operations !== 'E') {
      throw badRequest(`${definition.name} (${path}) is not executable`, registration, path);
    }
    let payload: Buffer | undefined;
    try {
      const text = executeArguments(args);
      payload = text === '' ? undefined : Buffer.from(text, 'utf8');
    } catch (err) {
      throw badRequest((err as Error).message, registration, path);
    }
    const started = Date.now();
    const response = await this.exchange(registration, path, 'Execute', '2.04', {
      method: 'POST',
      payload,
      contentFormat: payload ? ContentFormat.TEXT : undefined,
      timeoutMs: options.timeoutMs,
    });
    return result(registration, path, response, started);
  }

  /** Create an object instance; `value` holds its resources (keyed by id or name). */
  async create(
    endpointName: string,
    objectPathText: string,
    value: unknown,
    options: RequestOptions & WriteLimitOptions & { instanceId?: number } = {},
  ): Promise<CreateResult> {
    const { registration, path } = await this.target(endpointName, objectPathText);
    if (!path.isObject()) throw badRequest(`Create needs an object path like /3303, not ${path}`, registration, path);
    const instanceId = options.instanceId;
    const instancePath = path.append(instanceId ?? 0);
    const instanceNode = this.toNode(value, instancePath, registration);
    // With an id, the payload is the instance itself; without one, the device picks the id.
    const node: LwM2mNode =
      instanceId === undefined || instanceNode.kind !== 'instance'
        ? instanceNode
        : { kind: 'object', id: path.objectId!, instances: new Map([[instanceId, instanceNode]]) };
    const encodePath = instanceId === undefined ? instancePath : path;
    const empty = instanceNode.kind === 'instance' && instanceNode.resources.size === 0;
    const candidates = empty ? this.emptyInstanceCandidates(registration, path, instanceId, options.format) : undefined;
    const started = Date.now();
    const { response, format } = await this.withFormats(
      registration,
      path,
      options.format,
      'Create',
      async (contentFormat) => ({
        response: await this.send(registration, {
          method: 'POST',
          pathSegments: segmentsOf(path),
          contentFormat,
          payload: this.sized(
            this.encode(node, contentFormat, encodePath, registration),
            options,
            'Create',
            path,
            registration,
            contentFormat,
          ),
          timeoutMs: options.timeoutMs,
        }),
      }),
      candidates,
    );
    expectSuccess(response, 'Create', registration.endpoint, path, ['2.01']);
    const location = response.options
      .filter((option) => option.name === 'Location-Path')
      .map((option) => option.value.toString('utf8'));
    const created =
      location.length > 0
        ? '/' + location.slice(-2).join('/')
        : instanceId !== undefined
          ? path.append(instanceId).toString()
          : undefined;
    return { ...result(registration, path, response, started, format), instancePath: created };
  }

  /** The formats for a Create of an instance with no resources: ones that can carry it (content-negotiation.ts). */
  private emptyInstanceCandidates(
    registration: Registration,
    objectPath: LwM2mPath,
    instanceId: number | undefined,
    forced: number | undefined,
  ): number[] | undefined {
    const withId = instanceId !== undefined;
    const instance = objectPath.append(instanceId ?? 0);
    const refuse = (why: string) =>
      badRequest(
        `cannot create the empty instance ${withId ? instance : `of ${objectPath}`}: ${why}; ` +
          'give it at least one resource, or use a format that carries it',
        registration,
        objectPath,
      );
    if (forced !== undefined) {
      if (!carriesEmptyInstance(forced, withId))
        throw refuse(`content format ${forced} cannot carry it with its id (SenML and OMA JSON cannot)`);
      return undefined;
    }
    const formats = emptyInstanceFormats(
      memoCandidateFormats(registration, objectPath, undefined, isSupportedFormat),
      withId,
    );
    if (formats.length === 0) {
      const announced = registration.supportedContentFormats.join(' ') || 'nothing';
      throw refuse(`the device announced only formats that cannot carry it (ct=${announced}; SenML cannot)`);
    }
    return formats;
  }

  async delete(endpointName: string, pathText: string, options: RequestOptions = {}): Promise<OperationResult> {
    const { registration, path } = await this.target(endpointName, pathText);
    if (!path.isObjectInstance() && !(path.isResourceInstance() && registration.lwm2mVersion === '1.2')) {
      throw badRequest(`Delete needs an instance path like /3303/0, not ${path}`, registration, path);
    }
    const started = Date.now();
    const response = await this.exchange(registration, path, 'Delete', '2.02', {
      method: 'DELETE',
      timeoutMs: options.timeoutMs,
    });
    return result(registration, path, response, started);
  }

  async writeAttributes(
    endpointName: string,
    pathText: string,
    attributes: NotificationAttributes,
    options: RequestOptions & { owner?: string } = {},
  ): Promise<WriteAttributesResult> {
    const { registration, path } = await this.target(endpointName, pathText);
    if (path.isRoot())
      throw badRequest('Write-Attributes needs an object, instance or resource path', registration, path);
    if (path.isResourceInstance() && registration.lwm2mVersion === '1.0') {
      throw badRequest('LwM2M 1.0 has no attributes on resource instances', registration, path);
    }
    const query = this.attributeQuery(registration, path, attributes);
    const started = Date.now();
    const response = await this.exchange(registration, path, 'Write-Attributes', '2.04', {
      method: 'PUT',
      query,
      timeoutMs: options.timeoutMs,
    });
    if (attributes.pmin !== undefined)
      this.observationService.setMinPeriod(registration.id, [path], attributes.pmin ?? undefined);
    const key = `${registration.id}|${path}`;
    const owner = options.owner ?? 'api';
    const previous = this.attributeWriters.get(key);
    this.attributeWriters.set(key, { owner, attributes: query });
    const replaced =
      previous && previous.owner !== owner && previous.attributes.join('&') !== query.join('&') ? previous : undefined;
    return { ...result(registration, path, response, started), attributes: query, ...(replaced ? { replaced } : {}) };
  }

  /**
   * Observe a path. Several callers observing the same path on one device share one device
   * observation; each is an owner, and the device is told to stop only when the last one cancels.
   */
  async observe(endpointName: string, pathText: string, options: ObserveOptions = {}): Promise<ObserveResult> {
    const { registration, path } = await this.target(endpointName, pathText);
    const started = Date.now();
    const owner = options.owner ?? 'api';
    const attributes =
      options.attributes && Object.keys(options.attributes).length > 0 ? options.attributes : undefined;
    const inRequest = attributes !== undefined && registration.lwm2mVersion === '1.2';
    const query = inRequest ? this.attributeQuery(registration, path, attributes) : undefined;
    let attributesReplaced: ObserveResult['attributesReplaced'];
    if (attributes && !inRequest) {
      const written = await this.writeAttributes(endpointName, pathText, attributes, {
        owner,
        timeoutMs: options.timeoutMs,
      });
      attributesReplaced = written.replaced;
    }
    const existing = await this.observationService.join(registration, [path], owner);
    if (existing) {
      // The device keeps notifying; a fresh Read gives the caller the current value right away.
      const current = await this.read(endpointName, pathText, options);
      return {
        ...current,
        observationId: existing.id,
        joined: true,
        ...(attributesReplaced ? { attributesReplaced } : {}),
        ...(inRequest ? { attributesNotApplied: true } : {}),
      };
    }
    const { outcome, format } = await this.withFormats(
      registration,
      path,
      options.format,
      'Observe',
      async (accept) => {
        // Observe=0 and every field in one literal: this object is kept for the life of the observation,
        // and one built by spreading would carry an extra out-of-object property array.
        const pathSegments = segmentsOf(path);
        const timeoutMs = options.timeoutMs;
        const request: OutgoingRequest = query
          ? { method: 'GET', pathSegments, query, accept, timeoutMs, observe: 0 }
          : { method: 'GET', pathSegments, accept, timeoutMs, observe: 0 };
        const pmin = attributes?.pmin ?? undefined; // notifications faster than it are coalesced
        const attempt = await this.observationService.start(registration, [path], owner, request, pmin);
        return { response: attempt.response, outcome: attempt };
      },
    );
    const response = outcome.response;
    expectSuccess(response, 'Observe', registration.endpoint, path, ['2.05']);
    const contentFormat = response.contentFormat ?? format;
    const node = this.decodeResponse(response.payload, contentFormat, path, registration.endpoint);
    if (!outcome.observation) {
      throw new Lwm2mRequestError(
        `Observe ${path} on ${registration.endpoint}: the device answered without Observe, so it will not notify`,
        '2.05',
        registration.endpoint,
        path.toString(),
      );
    }
    return {
      endpoint: registration.endpoint,
      path: path.toString(),
      code: response.code,
      contentFormat,
      rttMs: Date.now() - started,
      node,
      value: toPlain(node, path, this.model),
      observationId: outcome.observation.id,
      joined: false,
      ...(attributesReplaced ? { attributesReplaced } : {}),
    };
  }

  /**
   * Lets go of an observation for `owner` (every owner when omitted). When nobody holds it any more,
   * the device is told (active cancel; passive when the device does not answer).
   */
  async cancelObservation(endpointName: string, pathText: string, owner?: string): Promise<boolean> {
    const registration = await this.registrations.getByEndpoint(endpointName);
    if (!registration) return false;
    const paths = String(pathText)
      .split(',')
      .map((item) => parsePath(item, endpointName));
    return this.observationService.cancel(registration, paths, owner);
  }

  /** Forgets an owner on every observation it holds (a node removed from the flow). */
  async releaseOwner(owner: string): Promise<void> {
    await this.observationService.releaseOwner(owner, async (observation) => {
      return this.registrations.getById(observation.registrationId);
    });
  }

  // ---- Server object actions ------------------------------------------------------------------

  /**
   * The path of the device's Server object instance (/1/x) that is this server's account: the only one
   * announced, or the one whose Short Server ID (/1/x/0) is `shortServerId`.
   */
  async serverAccountPath(endpointName: string, shortServerId?: number): Promise<string> {
    const { registration } = await this.target(endpointName, '/1');
    const instances = registration.objects[1]?.instances ?? [];
    if (shortServerId === undefined) {
      if (instances.length === 1) return `/1/${instances[0]}`;
      if (instances.length === 0) {
        throw new Lwm2mRequestError(
          `${endpointName} announced no Server object instance`,
          'bad-request',
          endpointName,
          '/1',
        );
      }
      throw new Lwm2mRequestError(
        `${endpointName} has ${instances.length} Server accounts (/1/${instances.join(', /1/')}): give the Short Server ID`,
        'bad-request',
        endpointName,
        '/1',
      );
    }
    for (const instance of instances) {
      const read = await this.read(endpointName, `/1/${instance}/0`);
      if (read.value === shortServerId) {
        // Asked for by its Short Server ID, it is this server's account: a lifetime written there is ours.
        this.lifetimeWrites.learnAccount(registration.id, instance);
        return `/1/${instance}`;
      }
    }
    throw new Lwm2mRequestError(
      `${endpointName} has no Server account with Short Server ID ${shortServerId}`,
      '4.04',
      endpointName,
      '/1',
    );
  }

  /** Registration Update Trigger (/1/x/8): the device sends an Update at once (and wakes its queue). */
  async triggerRegistrationUpdate(endpointName: string, shortServerId?: number): Promise<OperationResult> {
    return this.execute(endpointName, `${await this.serverAccountPath(endpointName, shortServerId)}/8`);
  }

  /**
   * Bootstrap-Request Trigger (/1/x/9; Server object 1.1+, optional): the device goes back to its bootstrap
   * server and is provisioned again. A device without it answers 4.04 or 4.05: said plainly.
   */
  async triggerBootstrap(endpointName: string, shortServerId?: number): Promise<OperationResult> {
    const path = `${await this.serverAccountPath(endpointName, shortServerId)}/9`;
    try {
      return await this.execute(endpointName, path);
    } catch (err) {
      if (err instanceof Lwm2mRequestError && (err.code === '4.04' || err.code === '4.05'))
        throw new Lwm2mRequestError(
          `${endpointName} has no Bootstrap-Request Trigger (${path}, Server object 1.1+, optional), or no bootstrap ` +
            `server account to go back to (answered ${err.code}): it cannot be told to bootstrap again`,
          err.code,
          endpointName,
          path,
        );
      throw err;
    }
  }

  /**
   * Disable (/1/x/4): the device de-registers and stays away for its Disable Timeout (/1/x/5, which
   * `timeoutSeconds` writes first). The de-registration that follows is the expected outcome, not an error.
   */
  async disable(
    endpointName: string,
    options: { shortServerId?: number; timeoutSeconds?: number } = {},
  ): Promise<OperationResult> {
    const account = await this.serverAccountPath(endpointName, options.shortServerId);
    if (options.timeoutSeconds !== undefined) await this.write(endpointName, `${account}/5`, options.timeoutSeconds);
    return this.execute(endpointName, `${account}/4`);
  }

  /** Default notification periods for this server (/1/x/2 pmin, /1/x/3 pmax), used where no attribute says. */
  async setDefaultPeriods(
    endpointName: string,
    periods: { pmin?: number; pmax?: number },
    shortServerId?: number,
  ): Promise<OperationResult[]> {
    const account = await this.serverAccountPath(endpointName, shortServerId);
    const results: OperationResult[] = [];
    if (periods.pmin !== undefined) results.push(await this.write(endpointName, `${account}/2`, periods.pmin));
    if (periods.pmax !== undefined) results.push(await this.write(endpointName, `${account}/3`, periods.pmax));
    if (results.length === 0)
      throw new Lwm2mRequestError('give pmin and/or pmax', 'bad-request', endpointName, account);
    return results;
  }

  /** Mute Send (/1/x/23, LwM2M 1.1): a device sends nothing with Send while it is true. */
  async setMuteSend(endpointName: string, muted: boolean, shortServerId?: number): Promise<OperationResult> {
    const account = await this.serverAccountPath(endpointName, shortServerId);
    return this.write(endpointName, `${account}/23`, muted);
  }

  // ---- Composite operations (LwM2M 1.1+) ------------------------------------------------------

  /** Read-Composite (FETCH): several paths in one request; `values` is keyed by path. */
  async readComposite(
    endpointName: string,
    pathTexts: string[],
    options: RequestOptions = {},
  ): Promise<CompositeReadResult> {
    const { registration, paths, named } = await this.compositeTarget(endpointName, pathTexts, 'Read-Composite');
    const started = Date.now();
    const { response, format } = await this.withCompositeFormats(
      registration,
      paths,
      options.format,
      async (format) => ({
        response: await this.send(registration, {
          method: 'FETCH',
          pathSegments: [],
          ...compositeRequestBody(registration, paths, format),
          accept: format,
          timeoutMs: options.timeoutMs,
        }).catch((err: unknown) => {
          throw compositeFailure(err, 'Read-Composite', registration.endpoint, named);
        }),
      }),
    );
    const target = new LwM2mPath();
    expectSuccess(response, 'Read-Composite', registration.endpoint, named, ['2.05']);
    const nodes = this.decodeComposite(
      response.payload,
      response.contentFormat ?? format,
      paths,
      registration.endpoint,
      'Read-Composite',
    );
    return {
      ...result(registration, target, response, started, response.contentFormat ?? format),
      path: keyOf(paths),
      nodes,
      values: plainByPath(nodes, this.model),
    };
  }

  /** Write-Composite (iPATCH): `values` keyed by path (`{ "/3303/0/5701": "Cel", "/1/0/3": 60 }`). */
  async writeComposite(
    endpointName: string,
    values: Record<string, unknown>,
    options: RequestOptions & WriteLimitOptions = {},
  ): Promise<OperationResult> {
    if (typeof values !== 'object' || values === null || Array.isArray(values) || Object.keys(values).length === 0) {
      throw new Lwm2mRequestError(
        'Write-Composite needs an object keyed by path, e.g. { "/3303/0/5701": "Cel" }',
        'bad-request',
        endpointName,
      );
    }
    const { registration, paths, named } = await this.compositeTarget(
      endpointName,
      Object.keys(values),
      'Write-Composite',
    );
    const keys = Object.keys(values);
    const nodes = new Map<string, LwM2mNode>();
    // LwM2M 1.2: a path whose value is null deletes that resource instance (SenML-ETCH, RFC 8790 §3.2).
    const deletions: LwM2mPath[] = [];
    paths.forEach((path, index) => {
      if (path.level < 2)
        throw badRequest(`Write-Composite needs instance or resource paths, not ${path}`, registration, path);
      const value = values[keys[index]];
      if (value === null) {
        if (registration.lwm2mVersion !== '1.2' || !path.isResourceInstance()) {
          throw badRequest(`a null value deletes a resource instance, in LwM2M 1.2 only (${path})`, registration, path);
        }
        deletions.push(path);
        return;
      }
      nodes.set(path.toString(), this.toNode(value, path, registration));
    });
    const started = Date.now();
    const target = new LwM2mPath();
    const { response, format } = await this.withCompositeFormats(
      registration,
      paths,
      options.format,
      async (format) => {
        let payload: Buffer;
        try {
          payload = encodePatch(nodes, deletions, patchFormat(registration, format), this.model);
        } catch (err) {
          throw new Lwm2mRequestError(
            `Write-Composite ${named} on ${registration.endpoint}: cannot encode the values: ${(err as Error).message}`,
            'bad-request',
            registration.endpoint,
            named,
          );
        }
        checkWriteSize(
          payload,
          options.maxWriteBytes ?? this.options.maxWriteBytes,
          'Write-Composite',
          named,
          registration.endpoint,
          patchFormat(registration, format),
        );
        return {
          response: await this.send(registration, {
            method: 'iPATCH',
            pathSegments: [],
            contentFormat: patchFormat(registration, format),
            payload,
            timeoutMs: options.timeoutMs,
          }).catch((err: unknown) => {
            throw compositeFailure(err, 'Write-Composite', registration.endpoint, named);
          }),
        };
      },
    );
    expectSuccess(response, 'Write-Composite', registration.endpoint, named, ['2.04']);
    return { ...result(registration, target, response, started, format), path: keyOf(paths) };
  }

  /** Observe-Composite (FETCH with Observe): one notification carries every path's value. */
  async observeComposite(
    endpointName: string,
    pathTexts: string[],
    options: ObserveOptions = {},
  ): Promise<CompositeObserveResult> {
    const { registration, paths, named } = await this.compositeTarget(endpointName, pathTexts, 'Observe-Composite');
    const owner = options.owner ?? 'api';
    const existing = await this.observationService.join(registration, paths, owner);
    if (existing) {
      const current = await this.readComposite(endpointName, pathTexts, options);
      return { ...current, observationId: existing.id, joined: true };
    }
    const started = Date.now();
    const { outcome, format } = await this.withCompositeFormats(registration, paths, options.format, async (format) => {
      const attempt = await this.observationService
        .start(registration, paths, owner, {
          method: 'FETCH',
          pathSegments: [],
          ...compositeRequestBody(registration, paths, format),
          accept: format,
          timeoutMs: options.timeoutMs,
        })
        .catch((err: unknown) => {
          throw compositeFailure(err, 'Observe-Composite', registration.endpoint, named);
        });
      return { response: attempt.response, outcome: attempt };
    });
    const response = outcome.response;
    const target = new LwM2mPath();
    expectSuccess(response, 'Observe-Composite', registration.endpoint, named, ['2.05']);
    const nodes = this.decodeComposite(
      response.payload,
      response.contentFormat ?? format,
      paths,
      registration.endpoint,
      'Observe-Composite',
    );
    if (!outcome.observation) {
      throw new Lwm2mRequestError(
        `Observe-Composite ${named} on ${registration.endpoint}: the device answered without Observe, so it will not notify`,
        '2.05',
        registration.endpoint,
        keyOf(paths),
      );
    }
    return {
      ...result(registration, target, response, started, response.contentFormat ?? format),
      path: keyOf(paths),
      nodes,
      values: plainByPath(nodes, this.model),
      observationId: outcome.observation.id,
      joined: false,
    };
  }

  private async compositeTarget(
    endpointName: string,
    pathTexts: string[],
    operation: string,
  ): Promise<{ registration: Registration; paths: LwM2mPath[]; named: string }> {
    if (!Array.isArray(pathTexts) || pathTexts.length === 0) {
      throw new Lwm2mRequestError(`${operation} needs a list of paths`, 'bad-request', endpointName);
    }
    const paths = pathTexts.map((text) => parsePath(text, endpointName));
    const named = keyOf(paths);
    const { registration } = await this.target(endpointName, '/').catch((err: unknown) => {
      throw compositeFailure(err, operation, endpointName, named);
    });
    if (registration.lwm2mVersion === '1.0') {
      throw new Lwm2mRequestError(
        `${operation} is LwM2M 1.1: ${endpointName} registered as 1.0`,
        'bad-request',
        endpointName,
        named,
      );
    }
    return { registration, paths, named };
  }

  /** SenML CBOR or JSON (what the device announced first), moving on when it answers 4.06 or 4.15. */
  private withCompositeFormats<T extends { response: IncomingResponse }>(
    registration: Registration,
    paths: LwM2mPath[],
    forced: number | undefined,
    attempt: (format: number) => Promise<T>,
  ): Promise<T & { format: number }> {
    // 1.2 adds LwM2M CBOR as the compact answer (no timestamps; SenML stays for the others).
    const family = (
      registration.lwm2mVersion === '1.2'
        ? [ContentFormat.LWM2M_CBOR, ContentFormat.SENML_CBOR, ContentFormat.SENML_JSON]
        : [ContentFormat.SENML_CBOR, ContentFormat.SENML_JSON]
    ) as number[];
    const announced = registration.supportedContentFormats.filter((format) => family.includes(format));
    const formats = forced !== undefined ? [forced] : announced.length > 0 ? announced : family;
    return this.withFormats(registration, paths[0], undefined, 'composite', attempt, formats);
  }

  private decodeComposite(
    payload: Buffer,
    format: number,
    paths: LwM2mPath[],
    endpoint: string,
    operation: 'Read-Composite' | 'Observe-Composite',
  ): Map<string, LwM2mNode> {
    try {
      return decodeNodes(payload, format, this.model, paths);
    } catch (err) {
      throw invalidResponse(err, operation, endpoint, keyOf(paths));
    }
  }

  // ---- internals -------------------------------------------------------------------------------

  private async handleRequest(request: IncomingRequest): Promise<OutgoingResponse> {
    const first = request.pathSegments[0];
    if (first === 'rd') return this.registrationService.handle(request);
    if (first === 'dp' && request.pathSegments.length === 1) return this.handleSend(request);
    if (first === 'bs') return { code: '4.04', payload: Buffer.from('this is not a bootstrap server') };
    const served = first === undefined ? undefined : this.resources.get(first);
    if (served) return (await served(request)) ?? { code: '4.04' };
    return { code: '4.04' };
  }

  /**
   * Serves requests below `/<firstSegment>` on the server's own listeners (plain and DTLS), e.g. firmware
   * packages devices pull. The handler answers, or returns undefined for 4.04; a large answer goes block-wise
   * (Block2) by itself. Returns the function that stops serving. The LwM2M paths (rd, dp, bs) are not available.
   */
  serve(
    firstSegment: string,
    handler: (request: IncomingRequest) => OutgoingResponse | undefined | Promise<OutgoingResponse | undefined>,
  ): () => void {
    if (['rd', 'dp', 'bs', ''].includes(firstSegment) || firstSegment.includes('/'))
      throw new RangeError(`cannot serve /${firstSegment}: an LwM2M path, or not one segment`);
    if (this.resources.has(firstSegment)) throw new RangeError(`/${firstSegment} is served already`);
    this.resources.set(firstSegment, handler);
    return () => {
      if (this.resources.get(firstSegment) === handler) this.resources.delete(firstSegment);
    };
  }

  private async handleSend(request: IncomingRequest): Promise<OutgoingResponse> {
    if (request.method !== 'POST') return { code: '4.05' };
    // Send carries no endpoint name: the device is known by where it talks from.
    const registration = await this.registrations.getByPeer(request.peer.key);
    // Over DTLS the address is not enough: another device may have handshaken from it since (NAT port reuse).
    if (!registration || !sameSecurity(registration.security, request.peer.security))
      return { code: '4.04', payload: Buffer.from('not registered: register before Send') };
    this.queueMode.touch(registration);
    if (!this.options.acceptSend) return { code: '4.03', payload: Buffer.from('this server does not accept Send') };
    try {
      this.emit('send', decodeSend(request.payload, request.contentFormat, registration, this.model));
      return { code: '2.04' };
    } catch (err) {
      if (err instanceof ContentCodecError) return { code: err.coapCode, payload: Buffer.from(err.message) };
      throw err;
    }
  }

  private onRegistered(registration: Registration, replaced?: Registration): void {
    this.queueMode.touch(registration);
    let reobserve: Promise<StoredObservation[]> = Promise.resolve([]);
    if (replaced) {
      this.forgetAttributes(replaced.id);
      // The device rebooted or lost its session: its observations died with it.
      reobserve = this.observationService.dropRegistration(replaced, 'replaced by a new registration');
    }
    this.emit('registered', registration, replaced);
    if (!this.options.reobserveOnRegister) return;
    void reobserve
      .then((dropped) => {
        if (dropped.length === 0) return;
        // After the 2.01 has gone out: a device may not answer requests before it knows it is registered.
        setImmediate(() => {
          for (const observation of dropped) {
            for (const owner of observation.owners) {
              this.observe(registration.endpoint, observation.path, { owner, format: observation.contentFormat }).catch(
                (err: Error) =>
                  this.emitError(
                    new Error(`re-observing ${observation.path} on ${registration.endpoint}: ${err.message}`),
                  ),
              );
            }
          }
        });
      })
      .catch((err: Error) => this.emitError(err));
  }

  private onUpdated(registration: Registration, previous: Registration): void {
    this.queueMode.touch(registration);
    if (registration.peerKey !== previous.peerKey) {
      this.observationService.movePeer(registration).catch((err: Error) => this.emitError(err));
    }
    this.emit('updated', registration, previous);
  }

  private forgetAttributes(registrationId: string): void {
    this.lifetimeWrites.forget(registrationId);
    for (const key of this.attributeWriters.keys())
      if (key.startsWith(registrationId + '|')) this.attributeWriters.delete(key);
  }

  private onRegistrationEnded(registration: Registration, kind: 'deregistered' | 'expired'): void {
    this.forgetAttributes(registration.id);
    this.queueMode.forget(registration, kind);
    this.observationService.dropRegistration(registration, kind).catch((err: Error) => this.emitError(err));
    if (kind === 'deregistered') this.emit('deregistered', registration);
    else this.emit('expired', registration);
  }

  private emitError(error: Error): void {
    // An EventEmitter throws on 'error' with no listener: background problems must never crash Node-RED.
    if (this.listenerCount('error') > 0) this.emit('error', error);
  }

  private requireEndpoint(): CoapEndpoint {
    if (!this.endpoint) throw new Lwm2mRequestError('the LwM2M server is not running', 'closed');
    return this.endpoint;
  }

  /**
   * Sends now, or holds the request until a sleeping queue-mode device wakes. A device another instance of a
   * cluster talks to is reached through that instance (its socket, its DTLS session, its queue).
   */
  private send(registration: Registration, request: OutgoingRequest): Promise<IncomingResponse> {
    const owner = this.remoteOwner(registration);
    if (owner !== undefined) return this.forwardSend(owner, registration, request);
    return this.sendHere(registration, request);
  }

  private sendHere(registration: Registration, request: OutgoingRequest): Promise<IncomingResponse> {
    // Nothing to pay on the request path unless someone logs exchanges.
    if (this.listenerCount('exchange') > 0)
      return this.reported(registration, request, this.sendHereNow(registration, request));
    return this.sendHereNow(registration, request);
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
      this.emit('exchange', exchange);
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

  private sendHereNow(registration: Registration, request: OutgoingRequest): Promise<IncomingResponse> {
    if (!this.queueMode.isAwake(registration)) {
      const description = `${request.method} /${request.pathSegments.join('/')}`;
      // Kept as plain data when a store holds queued requests: it still goes out after a restart.
      const persisted = this.options.queuedRequestStore ? requestToWire(request) : undefined;
      return this.queueMode.enqueue(registration, description, (current) => this.sendNow(current, request), persisted);
    }
    return this.sendNow(registration, request);
  }

  /** Not an async function: one promise less per request on the common path. */
  private sendNow(registration: Registration, request: OutgoingRequest): Promise<IncomingResponse> {
    const endpoint = this.endpoint;
    if (endpoint === undefined)
      return Promise.reject(new Lwm2mRequestError('the LwM2M server is not running', 'closed'));
    const peer = peerOf(registration);
    if (peer.secure && !this.dual?.canReach(peer)) {
      // No session to encrypt with (the device's session expired or the server restarted): only the device
      // can start a handshake; it does when it next talks to us. A queue-mode device is treated as asleep.
      this.queueMode.markAsleep(registration);
      const path = '/' + request.pathSegments.join('/');
      return Promise.reject(
        new Lwm2mRequestError(
          `${path} on ${registration.endpoint}: no DTLS session with the device (it must handshake again)`,
          'no-session',
          registration.endpoint,
          path,
        ),
      );
    }
    const withRoot: OutgoingRequest = registration.rootPath
      ? { ...request, pathSegments: [...registration.rootPath.split('/').filter(Boolean), ...request.pathSegments] }
      : request;
    const sent = endpoint.request(peer, withRoot).then(undefined, (err: unknown) => {
      if (err instanceof CoapRequestError && err.reason === 'timeout') this.queueMode.markAsleep(registration);
      throw transportError(err, registration, request.pathSegments);
    });
    // A Write of this server's own lifetime (/1/x/1) the device accepts is adopted by its registration.
    if (request.method === 'GET' || !mayWriteLifetime(request)) return sent;
    return sent.then((response) => this.lifetimeWrites.follow(registration, request, response));
  }

  // ---- several instances (cluster) ---------------------------------------------------------------

  /** The other instance the device talks to, or undefined when it is this one (or there is no cluster). */
  private remoteOwner(registration: Registration): string | undefined {
    const cluster = this.options.cluster;
    if (cluster === undefined) return undefined;
    const owner = cluster.ownerOf(registration.id);
    return owner !== undefined && owner !== cluster.instanceId ? owner : undefined;
  }

  /** How long to wait for the owner: the request's own limit, or a queued request's time to live. */
  private forwardTimeoutMs(registration: Registration, request: OutgoingRequest): number {
    if (registration.queueMode) return this.options.queuedRequestTtlMs + 60_000;
    return (request.timeoutMs ?? 300_000) + 5_000;
  }

  /**
   * Asks the owner instance to do `op` for the device; `here` does it from this instance instead when the owner
   * has gone (the device's next uplink makes this instance its owner). While the cluster's link cannot be reached
   * nobody can tell whether the owner lives, and what the device answers goes to the owner (the load balancer
   * sends it there): sending from here would end in a timeout that blames the device, so the request fails at
   * once, naming the link.
   */
  private async viaOwner<T>(
    owner: string,
    call: ClusterCall,
    registration: Registration,
    request: OutgoingRequest,
    here: () => Promise<T>,
  ): Promise<{ answer: unknown } | { done: T }> {
    const cluster = this.options.cluster!;
    const unreachable = (cause?: unknown) =>
      clusterUnreachable(owner, registration, request, cause instanceof Error ? cause : undefined);
    if (!cluster.reachable) throw unreachable();
    let alive: boolean;
    try {
      alive = await cluster.isAlive(owner);
    } catch (err) {
      throw unreachable(err);
    }
    if (!alive) return { done: await here() };
    try {
      return { answer: await cluster.call(owner, call, this.forwardTimeoutMs(registration, request)) };
    } catch (err) {
      if ((err as Error).name === INSTANCE_GONE) return { done: await here() };
      if (err instanceof StoreUnreachableError) throw unreachable(err);
      throw err;
    }
  }

  private async forwardSend(
    owner: string,
    registration: Registration,
    request: OutgoingRequest,
  ): Promise<IncomingResponse> {
    const call: ClusterCall = { op: 'send', registrationId: registration.id, request: requestToWire(request) };
    const outcome = await this.viaOwner(owner, call, registration, request, () => this.sendHere(registration, request));
    return 'done' in outcome ? outcome.done : responseFromWire(outcome.answer, peerOf(registration));
  }

  private async forwardObserve(
    owner: string,
    registration: Registration,
    request: OutgoingRequest,
    listener: NotificationListener,
  ): Promise<{ response: IncomingResponse; observation?: ObservationHandle }> {
    const cluster = this.options.cluster!;
    const peer = peerOf(registration);
    const call: ClusterCall = { op: 'observe', registrationId: registration.id, request: requestToWire(request) };
    const outcome = await this.viaOwner(owner, call, registration, request, () =>
      this.requireEndpoint().observe(peer, request, listener),
    );
    if ('done' in outcome) return outcome.done;
    const answer = outcome.answer as { response: unknown; token?: string };
    const response = responseFromWire(answer.response, peer);
    if (answer.token === undefined) return { response };
    const token = Buffer.from(answer.token, 'hex');
    // The observation lives on the owner's endpoint: cancelling it is asked of the owner.
    const handle: ObservationHandle = {
      token,
      peer,
      cancel: async (mode = 'active') => {
        const wire = await cluster.call(
          owner,
          { op: 'cancel', peerKey: registration.peerKey, token: answer.token!, mode },
          this.forwardTimeoutMs(registration, request),
        );
        return wire === undefined || wire === null ? undefined : responseFromWire(wire, peer);
      },
    };
    return { response, observation: handle };
  }

  /** Requests from other instances for devices that talk to this one. */
  private async serveClusterCall(call: ClusterCall): Promise<unknown> {
    if (call.op === 'cancel') {
      const key = `${call.peerKey}|${call.token}`;
      const held = this.foreignObservations.get(key);
      if (!held) return undefined;
      this.foreignObservations.delete(key);
      clearTimeout(held.timer);
      const response = await held.handle.cancel(call.mode);
      return response ? responseToWire(response) : undefined;
    }
    const registration = await this.registrations.getById(call.registrationId);
    if (!registration) throw new Lwm2mRequestError(`registration ${call.registrationId} is gone`, 'not-registered');
    const request = requestFromWire(call.request);
    if (call.op === 'send') return responseToWire(await this.sendHere(registration, request));
    const { response, observation } = await this.requireEndpoint().observe(
      peerOf(registration),
      request,
      (notification) => this.deliverForeign(notification),
    );
    if (!observation) return { response: responseToWire(response) };
    const token = observation.token.toString('hex');
    this.foreignObservations.set(`${registration.peerKey}|${token}`, { handle: observation, held: [] });
    return { response: responseToWire(response), token };
  }

  /**
   * A notification of an observation another instance asked for through this one: delivered once that instance
   * has stored the observation (its change reaches this one's index), held until then. One that is never
   * stored (the caller failed) is dropped after a while, and the device is told (RST) at its next notification.
   */
  private deliverForeign(notification: IncomingResponse): void {
    const listener = this.observationService.adopt(notification);
    if (listener) {
      listener(notification);
      return;
    }
    const key = `${notification.peer.key}|${notification.token.toString('hex')}`;
    const held = this.foreignObservations.get(key);
    if (!held) return;
    if (held.held.length < 16) held.held.push(notification);
    held.timer ??= setTimeout(() => {
      if (this.foreignObservations.get(key) !== held) return;
      this.foreignObservations.delete(key);
      void held.handle.cancel('passive').catch(() => undefined);
    }, 30_000).unref();
  }

  private releaseHeldNotifications(stored: StoredObservation): void {
    const key = `${stored.peerKey}|${stored.token}`;
    const held = this.foreignObservations.get(key);
    if (!held || held.held.length === 0) return;
    clearTimeout(held.timer);
    held.timer = undefined;
    const notifications = held.held;
    held.held = [];
    for (const notification of notifications) this.observationService.adopt(notification)?.(notification);
  }

  /** 'awake' or 'sleeping' for a queue-mode device; undefined for one that is always reachable. */
  queueStatus(registration: Registration): 'awake' | 'sleeping' | undefined {
    return this.queueMode.status(registration);
  }

  /** Requests waiting for a sleeping device. */
  queuedRequests(endpoint: string): number {
    return this.queueMode.queued(endpoint);
  }

  /** One request to the path, failing with the device's code unless it answered with success. */
  private async exchange(
    registration: Registration,
    path: LwM2mPath,
    operation: string,
    expected: string,
    request: Omit<OutgoingRequest, 'pathSegments'>,
  ): Promise<IncomingResponse> {
    const response = await this.send(registration, { ...request, pathSegments: segmentsOf(path) });
    expectSuccess(response, operation, registration.endpoint, path, [expected]);
    return response;
  }

  /** Attributes checked against the device's version and the target, as Uri-Query items. */
  private attributeQuery(registration: Registration, path: LwM2mPath, attributes: NotificationAttributes): string[] {
    try {
      return attributesToQuery(attributes, registration.lwm2mVersion, path.level, this.resourceDefinition(path));
    } catch (err) {
      if (err instanceof AttributeError) throw badRequest(err.message, registration, path);
      throw err;
    }
  }

  private async target(
    endpointName: string,
    pathText: string,
  ): Promise<{ registration: Registration; path: LwM2mPath }> {
    return this.targetNow(endpointName, pathText);
  }

  /** The registration and parsed path; without a promise when the store can answer synchronously. */
  private targetNow(
    endpointName: string,
    pathText: string,
  ): { registration: Registration; path: LwM2mPath } | Promise<{ registration: Registration; path: LwM2mPath }> {
    if (typeof endpointName !== 'string' || endpointName === '') {
      throw new Lwm2mRequestError('no endpoint given', 'bad-request');
    }
    const path = parsePath(pathText, endpointName);
    const store = this.registrations;
    if (store.getByEndpointSync !== undefined) {
      return { registration: registeredOrThrow(store.getByEndpointSync(endpointName), endpointName, path), path };
    }
    return store
      .getByEndpoint(endpointName)
      .then((registration) => ({ registration: registeredOrThrow(registration, endpointName, path), path }));
  }

  /** The formats to try in order: the forced one (checked), or the memoised candidates for the target. */
  private formatsFor(
    registration: Registration,
    path: LwM2mPath,
    forced: number | undefined,
    operation: string,
  ): readonly number[] {
    if (forced !== undefined) {
      if (!isSupportedFormat(forced)) throw badRequest(`content format ${forced} is not supported`, registration, path);
      return [forced];
    }
    const formats = memoCandidateFormats(registration, path, this.resourceDefinition(path), isSupportedFormat);
    if (formats.length === 0) throw badRequest(`no content format to ${operation} ${path} with`, registration, path);
    return formats;
  }

  /** Tries the candidate formats in order, moving on when the device answers 4.06 or 4.15. */
  private async withFormats<T extends { response: IncomingResponse }>(
    registration: Registration,
    path: LwM2mPath,
    forced: number | undefined,
    operation: string,
    attempt: (format: number) => Promise<T>,
    candidates?: number[],
  ): Promise<T & { format: number }> {
    for (const format of forced !== undefined ? [forced] : (candidates ?? [])) {
      if (!isSupportedFormat(format)) throw badRequest(`content format ${format} is not supported`, registration, path);
    }
    const formats =
      forced !== undefined
        ? [forced]
        : (candidates ?? memoCandidateFormats(registration, path, this.resourceDefinition(path), isSupportedFormat));
    let last: (T & { format: number }) | undefined;
    for (const format of formats) {
      last = { ...(await attempt(format)), format };
      if (last.response.code !== '4.06' && last.response.code !== '4.15') return last;
    }
    if (!last) throw badRequest(`no content format to ${operation} ${path} with`, registration, path);
    return last;
  }

  private toNode(value: unknown, path: LwM2mPath, registration: Registration): LwM2mNode {
    if (isNode(value)) return value;
    try {
      return fromPlain(value, path, this.model);
    } catch (err) {
      throw badRequest((err as Error).message, registration, path);
    }
  }

  private encode(node: LwM2mNode, format: number, path: LwM2mPath, registration: Registration): Buffer {
    try {
      return encodeNode(node, format, path, this.model);
    } catch (err) {
      throw badRequest(`cannot encode the value for ${path}: ${(err as Error).message}`, registration, path);
    }
  }

  /** The payload, when it is within the call's (or the server's) write size limit; 'too-large' otherwise. */
  private sized(
    payload: Buffer,
    options: WriteLimitOptions,
    operation: string,
    path: LwM2mPath,
    registration: Registration,
    format: number,
  ): Buffer {
    const limit = options.maxWriteBytes ?? this.options.maxWriteBytes;
    checkWriteSize(payload, limit, operation, path.toString(), registration.endpoint, format);
    return payload;
  }

  private decode(payload: Buffer, format: number | undefined, path: LwM2mPath): LwM2mNode {
    return decodeNode(payload, format ?? this.defaultDecodeFormat(path), path, this.model);
  }

  private decodeResponse(payload: Buffer, format: number | undefined, path: LwM2mPath, endpoint: string): LwM2mNode {
    try {
      return this.decode(payload, format, path);
    } catch (err) {
      throw invalidResponse(err, 'Read', endpoint, path);
    }
  }

  /** A response without Content-Format: text for a single value, TLV otherwise (what 1.0 clients send). */
  private defaultDecodeFormat(path: LwM2mPath): number {
    const definition = this.resourceDefinition(path);
    if (path.isResourceInstance() || (path.isResource() && definition && !definition.multiple)) {
      return definition?.type === 'opaque' ? ContentFormat.OPAQUE : ContentFormat.TEXT;
    }
    return ContentFormat.TLV;
  }

  private resourceDefinition(path: LwM2mPath): ResourceDefinition | undefined {
    if (path.objectId === undefined || path.resourceId === undefined) return undefined;
    return this.model.getResource(path.objectId, path.resourceId);
  }

  private isMultiple(path: LwM2mPath): boolean {
    return this.resourceDefinition(path)?.multiple ?? false;
  }
}

// ---- helpers -------------------------------------------------------------------------------------

function sameSecurity(a: Registration['security'], b: Registration['security']): boolean {
  return a === undefined ? b === undefined : b !== undefined && a.mode === b.mode && a.identity === b.identity;
}

function peerOf(registration: Registration): Peer {
  // A DTLS registration carries its security identity; its key is the `coaps://` one it registered with.
  return registration.security === undefined
    ? { address: registration.address, port: registration.port, key: registration.peerKey }
    : {
        address: registration.address,
        port: registration.port,
        key: registration.peerKey,
        secure: true,
        // Only a session of this identity may carry its requests (see DualTransport.canReach).
        security: registration.security,
      };
}

const SEGMENTS = new WeakMap<LwM2mPath, string[]>();

/**
 * A path's Uri-Path segments, built once per path (parsed paths are cached, so a flow reading the same
 * path reuses them) and shared by the requests and observations on it: frozen, never changed.
 */
function segmentsOf(path: LwM2mPath): string[] {
  let segments = SEGMENTS.get(path);
  if (segments === undefined) {
    segments = Object.freeze(path.toSegments()) as string[];
    SEGMENTS.set(path, segments);
  }
  return segments;
}

function registeredOrThrow(registration: Registration | undefined, endpoint: string, path: LwM2mPath): Registration {
  if (registration) return registration;
  throw new Lwm2mRequestError(`device "${endpoint}" is not registered`, 'not-registered', endpoint, path.toString());
}

function parsePath(pathText: string, endpoint: string): LwM2mPath {
  try {
    return LwM2mPath.parse(pathText);
  } catch (err) {
    if (err instanceof InvalidPathError)
      throw new Lwm2mRequestError(err.message, 'bad-request', endpoint, String(pathText));
    throw err;
  }
}

function badRequest(message: string, registration: Registration, path: LwM2mPath): Lwm2mRequestError {
  return new Lwm2mRequestError(message, 'bad-request', registration.endpoint, path.toString());
}

/** `path`: the target, or the paths of a composite operation as one text (`/3/0/0,/3303/0/5700`). */
function invalidResponse(
  err: unknown,
  operation: string,
  endpoint: string,
  path: LwM2mPath | string,
): Lwm2mRequestError {
  const reason = err instanceof ContentCodecError ? err.message : String((err as Error)?.message ?? err);
  return new Lwm2mRequestError(
    `${operation} ${path} on ${endpoint}: the device's answer could not be decoded: ${reason}`,
    'invalid-response',
    endpoint,
    path.toString(),
  );
}

function expectSuccess(
  response: IncomingResponse,
  operation: string,
  endpoint: string,
  path: LwM2mPath | string,
  expected: string[],
): void {
  if (expected.includes(response.code)) return;
  if (response.code.startsWith('2.')) return; // a device answering 2.04 to a Read is odd, but a success
  const diagnostic =
    response.payload.length > 0 && response.payload.length < 200 ? `: ${response.payload.toString('utf8')}` : '';
  throw new Lwm2mRequestError(
    `${operation} ${path} on ${endpoint} failed: ${describeCode(response.code)}${diagnostic}`,
    response.code,
    endpoint,
    path.toString(),
  );
}

function transportError(err: unknown, registration: Registration, segments: string[]): Error {
  const path = '/' + segments.join('/');
  if (err instanceof CoapRequestError) {
    return new Lwm2mRequestError(
      `${path} on ${registration.endpoint}: ${transportFailureText(err)}`,
      err.reason === 'block' ? '4.08' : err.reason,
      registration.endpoint,
      path,
    );
  }
  return err as Error;
}

/** A request for a device of another instance that cannot be handed over: the cluster's link is unreachable. */
function clusterUnreachable(
  owner: string,
  registration: Registration,
  request: OutgoingRequest,
  cause: Error | undefined,
): Lwm2mRequestError {
  const path = '/' + request.pathSegments.join('/');
  return new Lwm2mRequestError(
    `${path} on ${registration.endpoint}: not sent: the device talks to server instance ${owner}, and the cluster's ` +
      `store (Redis) that links the instances is unreachable${cause ? `: ${cause.message}` : ''}`,
    'cluster-unreachable',
    registration.endpoint,
    path,
  );
}

function result(
  registration: Registration,
  path: LwM2mPath,
  response: IncomingResponse,
  started: number,
  contentFormat?: number,
): OperationResult {
  return {
    endpoint: registration.endpoint,
    path: path.toString(),
    code: response.code,
    contentFormat,
    rttMs: Date.now() - started,
  };
}

/**
 * The path list of a Read-/Observe-Composite: SenML-ETCH in 1.2 (LwM2M CBOR cannot carry paths, so a
 * CBOR answer is asked with an ETCH CBOR list), SenML in 1.1.
 */
function compositeRequestBody(
  registration: Registration,
  paths: LwM2mPath[],
  accept: number,
): { contentFormat: number; payload: Buffer } {
  const cbor = accept !== ContentFormat.SENML_JSON;
  const contentFormat =
    registration.lwm2mVersion === '1.2'
      ? cbor
        ? ContentFormat.SENML_ETCH_CBOR
        : ContentFormat.SENML_ETCH_JSON
      : cbor
        ? ContentFormat.SENML_CBOR
        : ContentFormat.SENML_JSON;
  return { contentFormat, payload: encodePaths(paths, contentFormat) };
}

/** Write-Composite body format: SenML-ETCH for a 1.2 device (SenML in 1.1; LwM2M CBOR as is). */
function patchFormat(registration: Registration, format: number): number {
  if (registration.lwm2mVersion !== '1.2') return format;
  if (format === ContentFormat.SENML_JSON) return ContentFormat.SENML_ETCH_JSON;
  if (format === ContentFormat.SENML_CBOR) return ContentFormat.SENML_ETCH_CBOR;
  return format;
}

function stripRoot(links: Link[], rootPath: string): Link[] {
  if (!rootPath) return links;
  return links.map((link) =>
    link.uri.startsWith(rootPath + '/') ? { ...link, uri: link.uri.slice(rootPath.length) } : link,
  );
}

function isNode(value: unknown): value is LwM2mNode {
  if (typeof value !== 'object' || value === null) return false;
  const kind = (value as { kind?: unknown }).kind;
  return (
    (kind === 'object' ||
      kind === 'instance' ||
      kind === 'resource' ||
      kind === 'multipleResource' ||
      kind === 'resourceInstance') &&
    typeof (value as { id?: unknown }).id === 'number'
  );
}

/**
 * Execute arguments (LwM2M Core §5.4.5: `0='value',1`): a string as is, an array (index = digit),
 * or an object `{ "0": "value", "1": null }`.
 */
export function executeArguments(args: unknown): string {
  if (args === undefined || args === null || args === '') return '';
  if (typeof args === 'string') return args;
  if (typeof args === 'number') return String(args);
  const entries: [string, unknown][] = Array.isArray(args)
    ? args.map((value, index) => [String(index), value])
    : typeof args === 'object'
      ? Object.entries(args as Record<string, unknown>)
      : [];
  if (entries.length === 0 && typeof args !== 'object') {
    throw new Error(`Execute arguments must be a string, a list or an object, got ${typeof args}`);
  }
  return entries
    .map(([digit, value]) => {
      if (!/^\d$/.test(digit)) throw new Error(`Execute argument names are digits 0-9, got "${digit}"`);
      if (value === null || value === undefined || value === '') return digit;
      const text = String(value);
      if (text.includes("'")) throw new Error(`Execute argument ${digit} must not contain a quote (')`);
      return `${digit}='${text}'`;
    })
    .join(',');
}

export type { Notification, SendReport };
