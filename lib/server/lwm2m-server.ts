/**
 * The LwM2M server facade: its public API, events and options. It wires the collaborators (listeners and CoAP
 * endpoint, registration and observation services, queue mode, the downlink sender chain, the device operations)
 * and starts and stops them.
 */
import { EventEmitter } from 'node:events';
import type { CoapEndpoint } from '../coap/endpoint';
import { ObjectModel } from '../model/object-model';
import { MemoryObservationStore, MemoryRegistrationStore } from './memory-stores';
import { MemorySecurityStore } from './memory-security-store';
import type { DualTransport } from '../transport/dual';
import type { PeerAddress } from '../transport/types';
import type { NotificationAttributes } from './attributes';
import type { DownlinkChain } from './downlink/chain';
import type { LimitWarnings } from './limit-warnings';
import type { ObservationService } from './observation-service';
import type { CompositeOperations } from './operations/composite';
import type { DeviceOperations } from './operations/device';
import type { ObserveOperations } from './operations/observe';
import type {
  CompositeObserveResult,
  CompositeReadResult,
  CreateResult,
  DiscoverResult,
  ObserveOptions,
  ObserveResult,
  OperationResult,
  ReadResult,
  RequestOptions,
  WriteAttributesResult,
  WriteLimitOptions,
  WriteOptions,
} from './operations/results';
import type { ServerAccountActions } from './operations/server-account';
import type { QueueModeService } from './queue-mode';
import type { Registration } from './registration';
import type { RegistrationService } from './registration-service';
import type { SecurityInfo, SecurityStore } from './security';
import type { ServerEndpoint } from './server-endpoint';
import type { Lwm2mServerEvents, Lwm2mServerOptions } from './server-options';
import { DEFAULT_SERVER_OPTIONS } from './server-options';
import { composeServer } from './server-parts';
import type { RegistrationStore, StoredObservation } from './stores';
import type { ServedPath, UplinkRouter } from './uplink';

export {
  DEFAULT_REQUESTS_PER_SECOND_PER_ADDRESS,
  DEFAULT_SERVER_OPTIONS,
  NO_FLOOD_LIMITS,
  maxTransmitWaitMs,
} from './server-options';
export type {
  Lwm2mServerEvents,
  Lwm2mServerOptions,
  QueuedRequestSettled,
  SecureListenerOptions,
} from './server-options';
export type { DeviceExchange } from './downlink/reporting-sender';
// Every operation's options and results, where users of the facade have always found them.
export type * from './operations/results';
export { executeArguments } from './operations/requests';
export type { Notification } from './observation-service';
export type { SendReport } from './send';

/**
 * The LwM2M server facade: every operation and event goes through it, and it delegates to the parts server-parts.ts
 * builds (the endpoint over the listeners, the registration and observation services, the downlink sender chain,
 * the operations). It can be stopped and started again (a Node-RED redeploy): the stores and the live observations
 * survive in between, so devices are not lost.
 */
export class Lwm2mServer extends EventEmitter<Lwm2mServerEvents> {
  readonly options: Lwm2mServerOptions;
  readonly registrations: RegistrationStore;
  readonly model: ObjectModel;
  private readonly registrationService: RegistrationService;
  private readonly observationService: ObservationService;
  private readonly queueMode: QueueModeService;
  /** Requests to devices, outermost first: cluster forwarding, exchange reports, queue mode, the CoAP endpoint. */
  private readonly downlink: DownlinkChain;
  private readonly uplink: UplinkRouter;
  private readonly serverEndpoint: ServerEndpoint;
  private readonly limitWarnings: LimitWarnings;
  private readonly device: DeviceOperations;
  private readonly observeOperations: ObserveOperations;
  private readonly composite: CompositeOperations;
  private readonly serverAccount: ServerAccountActions;
  private starting?: Promise<PeerAddress>;

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
    const parts = composeServer(this.options, this);
    this.registrationService = parts.registrationService;
    this.observationService = parts.observationService;
    this.queueMode = parts.queueMode;
    this.downlink = parts.downlink;
    this.uplink = parts.uplink;
    this.serverEndpoint = parts.endpoint;
    this.limitWarnings = parts.limitWarnings;
    this.device = parts.device;
    this.observeOperations = parts.observe;
    this.composite = parts.composite;
    this.serverAccount = parts.serverAccount;
  }

  /** The CoAP endpoint while the server runs (held by the plain downlink sender). */
  private get endpoint(): CoapEndpoint | undefined {
    return this.downlink.coap.endpoint;
  }

  /** Set when a DTLS listener runs (alone or beside the plain one). */
  private get dual(): DualTransport | undefined {
    return this.downlink.coap.dual;
  }

  get running(): boolean {
    return this.endpoint !== undefined;
  }

  /** The plain CoAP listener's address (the DTLS one's when plain is off). */
  get address(): PeerAddress | undefined {
    return this.serverEndpoint.address;
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
    const secure = this.dual?.secure;
    const close = secure?.closeSessionsOf;
    if (!close) return 0;
    return close.call(secure, (security) =>
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
    const address = this.serverEndpoint.address;
    if (address && this.endpoint) return Promise.resolve(address);
    this.starting ??= this.doStart().finally(() => (this.starting = undefined));
    return this.starting;
  }

  private async doStart(): Promise<PeerAddress> {
    const address = await this.serverEndpoint.open();
    try {
      await this.observationService.load();
      await this.registrationService.start();
      this.queueMode.start();
      this.downlink.cluster?.start();
      await this.downlink.queued.restore(
        (registrationId) => this.registrations.getById(registrationId),
        (settled) => this.emit('queuedRequestSettled', settled),
      );
    } catch (err) {
      // Not stop(): it waits for the start in progress, which is this one.
      await this.stopNow();
      throw err;
    }
    this.serverEndpoint.watchRequestBudget(this.limitWarnings);
    this.emit('started', address);
    return address;
  }

  /** Closes the socket and stops timers. Registrations and observations stay in their stores. */
  async stop(): Promise<void> {
    if (this.starting) await this.starting.catch(() => undefined);
    await this.stopNow();
  }

  private async stopNow(): Promise<void> {
    this.downlink.cluster?.stop();
    this.registrationService.stop();
    this.queueMode.stop();
    this.observationService.detach();
    this.limitWarnings.stop();
    if (await this.serverEndpoint.close()) this.emit('stopped');
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

  // ---- Device management (operations/device.ts) --------------------------------------------------

  read(endpointName: string, pathText: string, options?: RequestOptions): Promise<ReadResult> {
    return this.device.read(endpointName, pathText, options);
  }

  /**
   * Discover. `depth` (LwM2M 1.2: 0 = the target only, 1 = one level down, ... 3 = resource instances)
   * limits how far the device lists; it is refused for 1.0/1.1 devices, which do not know it.
   */
  discover(
    endpointName: string,
    pathText: string,
    options?: RequestOptions & { depth?: number },
  ): Promise<DiscoverResult> {
    return this.device.discover(endpointName, pathText, options);
  }

  /** Write (replace with PUT, or partial update with POST). `value` is a msg-shaped value or a node. */
  write(endpointName: string, pathText: string, value: unknown, options?: WriteOptions): Promise<OperationResult> {
    return this.device.write(endpointName, pathText, value, options);
  }

  /** Execute with optional arguments: a string as the device expects it (`0='on',1`) or a list/object. */
  execute(endpointName: string, pathText: string, args?: unknown, options?: RequestOptions): Promise<OperationResult> {
    return this.device.execute(endpointName, pathText, args, options);
  }

  /** Create an object instance; `value` holds its resources (keyed by id or name). */
  create(
    endpointName: string,
    objectPathText: string,
    value: unknown,
    options?: RequestOptions & WriteLimitOptions & { instanceId?: number },
  ): Promise<CreateResult> {
    return this.device.create(endpointName, objectPathText, value, options);
  }

  delete(endpointName: string, pathText: string, options?: RequestOptions): Promise<OperationResult> {
    return this.device.delete(endpointName, pathText, options);
  }

  // ---- Information reporting (operations/observe.ts) ----------------------------------------------

  writeAttributes(
    endpointName: string,
    pathText: string,
    attributes: NotificationAttributes,
    options?: RequestOptions & { owner?: string },
  ): Promise<WriteAttributesResult> {
    return this.observeOperations.writeAttributes(endpointName, pathText, attributes, options);
  }

  /**
   * Observe a path. Several callers observing the same path on one device share one device
   * observation; each is an owner, and the device is told to stop only when the last one cancels.
   */
  observe(endpointName: string, pathText: string, options?: ObserveOptions): Promise<ObserveResult> {
    return this.observeOperations.observe(endpointName, pathText, options);
  }

  /**
   * Lets go of an observation for `owner` (every owner when omitted). When nobody holds it any more,
   * the device is told (active cancel; passive when the device does not answer).
   */
  cancelObservation(endpointName: string, pathText: string, owner?: string): Promise<boolean> {
    return this.observeOperations.cancelObservation(endpointName, pathText, owner);
  }

  /** Forgets an owner on every observation it holds (a node removed from the flow). */
  releaseOwner(owner: string): Promise<void> {
    return this.observeOperations.releaseOwner(owner);
  }

  // ---- Server object actions (operations/server-account.ts) ---------------------------------------

  /**
   * The path of the device's Server object instance (/1/x) that is this server's account: the only one
   * announced, or the one whose Short Server ID (/1/x/0) is `shortServerId`.
   */
  serverAccountPath(endpointName: string, shortServerId?: number): Promise<string> {
    return this.serverAccount.serverAccountPath(endpointName, shortServerId);
  }

  /** Registration Update Trigger (/1/x/8): the device sends an Update at once (and wakes its queue). */
  triggerRegistrationUpdate(endpointName: string, shortServerId?: number): Promise<OperationResult> {
    return this.serverAccount.triggerRegistrationUpdate(endpointName, shortServerId);
  }

  /**
   * Bootstrap-Request Trigger (/1/x/9; Server object 1.1+, optional): the device goes back to its bootstrap
   * server and is provisioned again. A device without it answers 4.04 or 4.05: said plainly.
   */
  triggerBootstrap(endpointName: string, shortServerId?: number): Promise<OperationResult> {
    return this.serverAccount.triggerBootstrap(endpointName, shortServerId);
  }

  /**
   * Disable (/1/x/4): the device de-registers and stays away for its Disable Timeout (/1/x/5, which
   * `timeoutSeconds` writes first). The de-registration that follows is the expected outcome, not an error.
   */
  disable(
    endpointName: string,
    options?: { shortServerId?: number; timeoutSeconds?: number },
  ): Promise<OperationResult> {
    return this.serverAccount.disable(endpointName, options);
  }

  /** Default notification periods for this server (/1/x/2 pmin, /1/x/3 pmax), used where no attribute says. */
  setDefaultPeriods(
    endpointName: string,
    periods: { pmin?: number; pmax?: number },
    shortServerId?: number,
  ): Promise<OperationResult[]> {
    return this.serverAccount.setDefaultPeriods(endpointName, periods, shortServerId);
  }

  /** Mute Send (/1/x/23, LwM2M 1.1): a device sends nothing with Send while it is true. */
  setMuteSend(endpointName: string, muted: boolean, shortServerId?: number): Promise<OperationResult> {
    return this.serverAccount.setMuteSend(endpointName, muted, shortServerId);
  }

  // ---- Composite operations, LwM2M 1.1+ (operations/composite.ts) ---------------------------------

  /** Read-Composite (FETCH): several paths in one request; `values` is keyed by path. */
  readComposite(endpointName: string, pathTexts: string[], options?: RequestOptions): Promise<CompositeReadResult> {
    return this.composite.readComposite(endpointName, pathTexts, options);
  }

  /** Write-Composite (iPATCH): `values` keyed by path (`{ "/3303/0/5701": "Cel", "/1/0/3": 60 }`). */
  writeComposite(
    endpointName: string,
    values: Record<string, unknown>,
    options?: RequestOptions & WriteLimitOptions,
  ): Promise<OperationResult> {
    return this.composite.writeComposite(endpointName, values, options);
  }

  /** Observe-Composite (FETCH with Observe): one notification carries every path's value. */
  observeComposite(
    endpointName: string,
    pathTexts: string[],
    options?: ObserveOptions,
  ): Promise<CompositeObserveResult> {
    return this.composite.observeComposite(endpointName, pathTexts, options);
  }

  /**
   * Serves requests below `/<firstSegment>` on the server's own listeners (plain and DTLS), e.g. firmware
   * packages devices pull. The handler answers, or returns undefined for 4.04; a large answer goes block-wise
   * (Block2) by itself. Returns the function that stops serving. The LwM2M paths (rd, dp, bs) are not available.
   */
  serve(firstSegment: string, handler: ServedPath): () => void {
    return this.uplink.serve(firstSegment, handler);
  }

  /** 'awake' or 'sleeping' for a queue-mode device; undefined for one that is always reachable. */
  queueStatus(registration: Registration): 'awake' | 'sleeping' | undefined {
    return this.queueMode.status(registration);
  }

  /** Requests waiting for a sleeping device. */
  queuedRequests(endpoint: string): number {
    return this.queueMode.queued(endpoint);
  }

  // ---- internals -------------------------------------------------------------------------------
}
