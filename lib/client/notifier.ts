/**
 * The client's side of Information Reporting: the observations servers hold on it (with the attributes
 * Write-Attributes set), the notifications they cause, and Send (POST /dp).
 */
import { ContentFormat } from '../content/types';
import { encodeNode, encodeNodes } from '../content';
import type { IncomingRequest, IncomingResponse } from '../coap/types';
import type { ObjectModel } from '../model/object-model';
import { LwM2mPath } from '../model/path';
import type { LwM2mNode, ResourceDefinition } from '../model/types';
import type { Peer } from '../transport/types';
import { applyAttributeQuery, effectiveAttributes, type ClientAttributes } from './attributes';
import type { ServerConnection } from './connection';
import type { DeviceObjects } from './device-objects';
import { Observation, ObservationRegistry, observationKey } from './observations';
import { emitError, type ClientCounters, type ClientEvents, type Lwm2mClientOptions } from './options';

/** What the notifier asks of the rest of the client. */
export interface NotifierHost {
  /** Queue mode: an exchange keeps the device reachable a while longer. */
  awake(): void;
}

export class Notifier {
  private readonly observations: ObservationRegistry;
  /** Attributes written by the server (Write-Attributes), by path. */
  private readonly _attributes = new Map<string, ClientAttributes>();
  private observeSeq = 1;

  constructor(
    private readonly options: Lwm2mClientOptions,
    private readonly model: ObjectModel,
    private readonly objects: DeviceObjects,
    private readonly connection: ServerConnection,
    private readonly counters: ClientCounters,
    private readonly events: ClientEvents,
    private readonly host: NotifierHost,
  ) {
    this.observations = new ObservationRegistry({
      attributes: (path) => this.effectiveAttributes(path),
      read: (path) => this.objects.readNode(path),
      send: (observation, node, confirmable) => this.sendNotification(observation, node, confirmable),
      confirmableByDefault: () => this.options.confirmableNotifications,
      ended: (observation, reason) =>
        this.events.emit('observeCancelled', {
          path: observation.path.toString(),
          token: observation.token.toString('hex'),
          reason,
        }),
      now: () => performance.now(),
    });
  }

  /** How many observations are active. */
  get size(): number {
    return this.observations.size;
  }

  /** The attributes written by the server (Write-Attributes), by path. */
  get attributes(): ReadonlyMap<string, ClientAttributes> {
    return this._attributes;
  }

  /** Drops every observation (reboot, registration lost, bootstrap, stop). */
  clear(reason: string): void {
    this.observations.clear(reason);
  }

  /** Something at `path` changed: the observations on it (or above it) evaluate. */
  changed(path: LwM2mPath): void {
    this.observations.changed(path);
  }

  /** Ends the observation a peer holds with `token` (Observe: 1, or an RST answering a notification). */
  cancel(peer: Peer, token: Buffer, reason: string): void {
    this.observations.remove(observationKey(peer.key, token), reason);
  }

  /**
   * A new observation (Observe: 0) of `path`, notifying in `format`; returns the Observe sequence number
   * of the first answer.
   */
  observe(request: IncomingRequest, path: LwM2mPath, format: number): number {
    const node = this.objects.readNode(path);
    const key = observationKey(request.peer.key, request.token);
    const observation = new Observation(
      key,
      request.peer,
      Buffer.from(request.token),
      path,
      format,
      node,
      performance.now(),
    );
    this.observations.add(observation);
    this.events.emit('observe', {
      path: path.toString(),
      token: request.token.toString('hex'),
      format: observation.format,
    });
    return this.nextSequence();
  }

  /** Write-Attributes: applies the query to the attributes at `path` (the caller checked that it exists). */
  writeAttributes(path: LwM2mPath, query: readonly string[], def: ResourceDefinition | undefined): void {
    const key = path.toString();
    const next = applyAttributeQuery(this._attributes.get(key), query, this.options.lwm2mVersion, path, def);
    if (Object.keys(next).length === 0) this._attributes.delete(key);
    else this._attributes.set(key, next);
    this.observations.attributesChanged();
  }

  /**
   * Send (LwM2M 1.1 Information Reporting): POST /dp with the values at `paths` in SenML CBOR (112,
   * default) or SenML JSON (110). Resolves with the server's response.
   */
  async send(paths: string[], options: { format?: number; timeoutMs?: number } = {}): Promise<IncomingResponse> {
    if (this.options.lwm2mVersion === '1.0') throw new Error('Send needs LwM2M 1.1 or later');
    if (this.objects.get(`/1/${this.connection.serverInstanceId}/23`) === true)
      throw new Error('Send is muted (/1/x/23 Mute Send is true)');
    const endpoint = this.connection.requireEndpoint();
    const format = options.format ?? ContentFormat.SENML_CBOR;
    const nodes = new Map<string, LwM2mNode>();
    for (const text of paths) {
      const path = LwM2mPath.parse(text);
      nodes.set(path.toString(), this.objects.readNode(path));
    }
    const payload = encodeNodes(nodes, format, this.model);
    this.counters.sends++;
    this.host.awake();
    return endpoint.request(this.connection.serverPeer, {
      method: 'POST',
      pathSegments: ['dp'],
      contentFormat: format,
      payload,
      timeoutMs: options.timeoutMs,
    });
  }

  private nextSequence(): number {
    this.observeSeq = (this.observeSeq + 1) & 0xffffff;
    return this.observeSeq;
  }

  private sendNotification(observation: Observation, node: LwM2mNode | undefined, confirmable: boolean): Promise<void> {
    const endpoint = this.connection.endpoint;
    if (endpoint === undefined) return Promise.reject(new Error('client stopped'));
    this.host.awake();
    const { peer, token } = observation;
    // an error notification ends the observation and carries no Observe option (RFC 7641 §4.2)
    if (node === undefined) return endpoint.notify(peer, token, { code: '4.04', observe: 0 }, { confirmable: false });
    let payload: Buffer;
    try {
      payload = encodeNode(node, observation.format, observation.path, this.model);
    } catch (err) {
      emitError(this.events, err as Error);
      return endpoint.notify(peer, token, { code: '5.00', observe: 0 }, { confirmable: false });
    }
    const sequence = this.nextSequence();
    this.counters.notifications++;
    this.events.emit('notification', {
      path: observation.path.toString(),
      code: '2.05',
      confirmable,
      sequence,
    });
    // larger than a block: the endpoint sends the first Block2 block, the server fetches the rest
    return endpoint.notify(
      peer,
      token,
      { code: '2.05', observe: sequence, contentFormat: observation.format, payload },
      { confirmable },
    );
  }

  private effectiveAttributes(path: LwM2mPath): ClientAttributes {
    const pmin = this.objects.get(`/1/${this.connection.serverInstanceId}/2`);
    const pmax = this.objects.get(`/1/${this.connection.serverInstanceId}/3`);
    return effectiveAttributes(this._attributes, path, {
      pmin: typeof pmin === 'number' ? pmin : undefined,
      pmax: typeof pmax === 'number' ? pmax : undefined,
    });
  }
}
