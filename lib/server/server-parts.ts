/**
 * The composition of an LwM2M server: its collaborators built and wired to each other and to the server's events
 * (registration and observation services, queue mode, the downlink sender chain, the uplink router, the endpoint,
 * the device operations). The facade (lwm2m-server.ts) owns what this returns.
 */
import type { EventEmitter } from 'node:events';
import type { DownlinkChain } from './downlink/chain';
import { downlinkChain } from './downlink/chain';
import { LimitWarnings } from './limit-warnings';
import { ObservationService } from './observation-service';
import { CodecBridge } from './operations/codec-bridge';
import { CompositeOperations } from './operations/composite';
import type { OperationContext } from './operations/context';
import { DeviceOperations } from './operations/device';
import { ObserveOperations, cancelRequest } from './operations/observe';
import { ServerAccountActions } from './operations/server-account';
import { QueueModeService } from './queue-mode';
import { RegistrationFollowUp } from './registration-follow-up';
import { RegistrationService } from './registration-service';
import { ServerEndpoint } from './server-endpoint';
import type { Lwm2mServerEvents, Lwm2mServerOptions } from './server-options';
import { maxTransmitWaitMs } from './server-options';
import { UplinkRouter } from './uplink';
import { LifetimeWrites } from './written-lifetime';

export interface ServerParts {
  registrationService: RegistrationService;
  observationService: ObservationService;
  queueMode: QueueModeService;
  downlink: DownlinkChain;
  uplink: UplinkRouter;
  endpoint: ServerEndpoint;
  limitWarnings: LimitWarnings;
  device: DeviceOperations;
  observe: ObserveOperations;
  composite: CompositeOperations;
  serverAccount: ServerAccountActions;
}

/** Problems that belong to no caller go to 'error', when someone listens (it would throw otherwise). */
function emitError(events: EventEmitter<Lwm2mServerEvents>, error: Error): void {
  // An EventEmitter throws on 'error' with no listener: background problems must never crash Node-RED.
  if (events.listenerCount('error') > 0) events.emit('error', error);
}

/** Builds the collaborators of a server whose events go to `events` (the facade itself). */
export function composeServer(options: Lwm2mServerOptions, events: EventEmitter<Lwm2mServerEvents>): ServerParts {
  const model = options.model;
  const registrations = options.registrationStore;
  const onError = (error: Error) => emitError(events, error);
  const limitWarnings = new LimitWarnings((report) => events.emit('limited', report));
  const registrationService = new RegistrationService(
    registrations,
    options,
    {
      registered: (registration, replaced) => followUp.registered(registration, replaced),
      updated: (registration, previous) => followUp.updated(registration, previous),
      deregistered: (registration) => followUp.ended(registration, 'deregistered'),
      expired: (registration) => followUp.ended(registration, 'expired'),
      refused: (endpoint, address, refusal) =>
        limitWarnings.note(refusal.kind, `refused the Register of "${endpoint}" from ${address}: ${refusal.reason}`),
      expiryFailed: onError,
    },
    options.securityStore,
  );
  const lifetimeWrites = new LifetimeWrites(
    model,
    (registrationId, lifetime) => registrationService.adoptWrittenLifetime(registrationId, lifetime),
    onError,
  );
  const queueMode = new QueueModeService(
    {
      awakeWindowMs: options.queueAwakeWindowMs ?? maxTransmitWaitMs(options.coap),
      maxQueuedPerDevice: options.maxQueuedPerDevice,
      requestTtlMs: options.queuedRequestTtlMs,
    },
    {
      awake: (registration) => events.emit('awake', registration),
      sleeping: (registration) => events.emit('sleeping', registration),
      error: onError,
    },
    options.queuedRequestStore,
  );
  const downlink = downlinkChain({
    queueMode,
    lifetimeWrites,
    persistQueued: options.queuedRequestStore !== undefined,
    reports: {
      listening: () => events.listenerCount('exchange') > 0,
      report: (exchange) => events.emit('exchange', exchange),
    },
    cluster: options.cluster && {
      bus: options.cluster,
      deps: {
        registrationById: (registrationId) => registrations.getById(registrationId),
        adopt: (notification) => observationService.adopt(notification),
        queuedRequestTtlMs: options.queuedRequestTtlMs,
      },
    },
  });
  const codec = new CodecBridge(model);
  const observationService = new ObservationService(options.observationStore, {
    model,
    send: (registration, request) => downlink.sender.send(registration, request),
    registrationById: (registrationId) => registrations.getById(registrationId),
    observe: (registration, request, listener) => downlink.observer.observe(registration, request, listener),
    decode: (payload, format, path) => codec.decode(payload, format, path),
    decodeComposite: (payload, format, paths) => codec.decodeNotification(payload, format, paths),
    cancelRequest,
    notify: (notification) => {
      queueMode.touchEndpoint(notification.endpoint);
      events.emit('notification', notification);
    },
    ended: (observation, reason, cause) => events.emit('observationEnded', observation, reason, cause),
    limited: (kind, detail) => limitWarnings.note(kind, detail),
    error: onError,
    guard: options,
  });
  const cluster = downlink.cluster;
  if (cluster) observationService.onIndexed = (stored) => cluster.releaseHeldNotifications(stored);
  const uplink = new UplinkRouter({
    registrationService,
    registrations,
    queueMode,
    model,
    options,
    sent: (report) => events.emit('send', report),
  });
  const endpoint = new ServerEndpoint(options, downlink.coap, registrations, {
    handleRequest: (request) => uplink.handleRequest(request),
    adopt: (notification) => observationService.adopt(notification),
    error: onError,
    handshakeFailed: (peer, reason) => events.emit('handshakeFailed', peer, reason),
    recordsDropped: (drop) => events.emit('dtlsRecordsDropped', drop),
    moved: (registration, previous) => events.emit('moved', registration, previous),
  });
  const context: OperationContext = { model, registrations, sender: downlink.sender, codec, limits: options };
  const device = new DeviceOperations(context);
  const observe = new ObserveOperations(context, device, observationService);
  const followUp = new RegistrationFollowUp(queueMode, observationService, {
    options,
    forget: (registrationId) => {
      lifetimeWrites.forget(registrationId);
      observe.forgetAttributes(registrationId);
    },
    observe: (endpointName, path, observeOptions) => observe.observe(endpointName, path, observeOptions),
    registered: (registration, replaced) => events.emit('registered', registration, replaced),
    updated: (registration, previous) => events.emit('updated', registration, previous),
    ended: (registration, kind) =>
      kind === 'deregistered' ? events.emit('deregistered', registration) : events.emit('expired', registration),
    error: onError,
  });
  return {
    registrationService,
    observationService,
    queueMode,
    downlink,
    uplink,
    endpoint,
    limitWarnings,
    device,
    observe,
    composite: new CompositeOperations(context, observationService),
    serverAccount: new ServerAccountActions(context, device, lifetimeWrites),
  };
}
