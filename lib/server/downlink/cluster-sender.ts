/**
 * Cluster forwarding as a sender: several instances share one store (Redis), and a request for a device another
 * instance talks to goes through that instance (its socket, its DTLS session, its queue). Also serves the requests
 * other instances forward to this one, and holds the notifications of observations they asked for until stored.
 */
import { tellListener } from '../../coap/types';
import type { IncomingResponse, NotificationListener, ObservationHandle, OutgoingRequest } from '../../coap/types';
import type { ClusterBus, ClusterCall } from '../cluster';
import { INSTANCE_GONE, requestFromWire, requestToWire, responseFromWire, responseToWire } from '../cluster';
import { Lwm2mRequestError } from '../errors';
import type { Registration } from '../registration';
import type { StoredObservation } from '../stores';
import { StoreUnreachableError } from '../stores';
import type { DownlinkObserver, DownlinkSender } from './sender';
import { peerOf } from './sender';

/** What the cluster sender needs of the server besides the senders it wraps. */
export interface ClusterSenderDeps {
  /** The registration a forwarded request is for. */
  registrationById(registrationId: string): Promise<Registration | undefined>;
  /** The listener of a stored observation this notification belongs to, if it is known here. */
  adopt(notification: IncomingResponse): NotificationListener | undefined;
  /** How long a queued request lives (a forwarded one for a queue-mode device waits as long). */
  queuedRequestTtlMs: number;
}

export class ClusterSender implements DownlinkSender, DownlinkObserver {
  /** Observations other instances asked for through this one (`peerKey|token`), with notifications held for them. */
  private readonly foreignObservations = new Map<
    string,
    { handle: ObservationHandle; held: IncomingResponse[]; timer?: NodeJS.Timeout }
  >();

  /** `here`: sends from this instance; `observer`: observes from this instance. */
  constructor(
    private readonly cluster: ClusterBus,
    private readonly here: DownlinkSender,
    private readonly observer: DownlinkObserver,
    private readonly deps: ClusterSenderDeps,
  ) {}

  /** Serves the requests other instances forward to this one (while the server runs). */
  start(): void {
    this.cluster.serve((call) => this.serveClusterCall(call));
  }

  stop(): void {
    this.cluster.serve(undefined);
    for (const held of this.foreignObservations.values()) clearTimeout(held.timer);
    this.foreignObservations.clear();
  }

  /**
   * Sends now, or holds the request until a sleeping queue-mode device wakes. A device another instance of a
   * cluster talks to is reached through that instance (its socket, its DTLS session, its queue).
   */
  send(registration: Registration, request: OutgoingRequest): Promise<IncomingResponse> {
    const owner = this.remoteOwner(registration);
    if (owner !== undefined) return this.forwardSend(owner, registration, request);
    return this.here.send(registration, request);
  }

  observe(
    registration: Registration,
    request: OutgoingRequest,
    listener: NotificationListener,
  ): Promise<{ response: IncomingResponse; observation?: ObservationHandle }> {
    const owner = this.remoteOwner(registration);
    if (owner !== undefined) return this.forwardObserve(owner, registration, request, listener);
    return this.observer.observe(registration, request, listener);
  }

  /** The other instance the device talks to, or undefined when it is this one. */
  private remoteOwner(registration: Registration): string | undefined {
    const owner = this.cluster.ownerOf(registration.id);
    return owner !== undefined && owner !== this.cluster.instanceId ? owner : undefined;
  }

  /** How long to wait for the owner: the request's own limit, or a queued request's time to live. */
  private forwardTimeoutMs(registration: Registration, request: OutgoingRequest): number {
    if (registration.queueMode) return this.deps.queuedRequestTtlMs + 60_000;
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
    const cluster = this.cluster;
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
    const outcome = await this.viaOwner(owner, call, registration, request, () =>
      this.here.send(registration, request),
    );
    return 'done' in outcome ? outcome.done : responseFromWire(outcome.answer, peerOf(registration));
  }

  private async forwardObserve(
    owner: string,
    registration: Registration,
    request: OutgoingRequest,
    listener: NotificationListener,
  ): Promise<{ response: IncomingResponse; observation?: ObservationHandle }> {
    const cluster = this.cluster;
    const peer = peerOf(registration);
    const call: ClusterCall = { op: 'observe', registrationId: registration.id, request: requestToWire(request) };
    const outcome = await this.viaOwner(owner, call, registration, request, () =>
      this.observer.observe(registration, request, listener),
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
    const registration = await this.deps.registrationById(call.registrationId);
    if (!registration) throw new Lwm2mRequestError(`registration ${call.registrationId} is gone`, 'not-registered');
    const request = requestFromWire(call.request);
    if (call.op === 'send') return responseToWire(await this.here.send(registration, request));
    const { response, observation } = await this.observer.observe(registration, request, (notification) =>
      this.deliverForeign(notification),
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
    const listener = this.deps.adopt(notification);
    if (listener) {
      tellListener(listener, notification);
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

  /** An observation was stored (here or by another instance): the notifications held for it go on. */
  releaseHeldNotifications(stored: StoredObservation): void {
    const key = `${stored.peerKey}|${stored.token}`;
    const held = this.foreignObservations.get(key);
    if (!held || held.held.length === 0) return;
    clearTimeout(held.timer);
    held.timer = undefined;
    const notifications = held.held;
    held.held = [];
    for (const notification of notifications) {
      const listener = this.deps.adopt(notification);
      if (listener) tellListener(listener, notification);
    }
  }
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
