/**
 * Client-initiated bootstrap (LwM2M Core §6.1): the attempts and their retries against the
 * Bootstrap-Server (Bootstrap-Pack in 1.2, else Bootstrap-Request), and the answers to its requests on
 * the bootstrap interface (Discover, Read, Write, Delete, Finish) until the configuration is complete.
 */
import type { CoapEndpoint } from '../coap/endpoint';
import type { IncomingRequest, OutgoingResponse } from '../coap/types';
import { ContentFormat } from '../content/types';
import { decodeNode, decodeNodes, encodeNode, formatName, isSupportedFormat } from '../content';
import type { ObjectModel } from '../model/object-model';
import { LwM2mPath } from '../model/path';
import type { LwM2mNode, LwM2mResource } from '../model/types';
import { bootstrapDiscoverLinks, findServerAccount, isBootstrapAccount, type ServerAccount } from './bootstrap';
import type { ServerConnection } from './connection';
import type { DeviceObjects } from './device-objects';
import { ClientError, diagnostic } from './errors';
import type { ClientFormats } from './formats';
import type { ClientLifecycle } from './lifecycle';
import type { Notifier } from './notifier';
import { EMPTY_BUFFER, contentOf, type ClientInstance, type ClientObject } from './object-tree';
import type { ClientCounters, ClientEvents, Lwm2mClientOptions, RetryPolicy } from './options';
import type { RegistrationEngine } from './registration-engine';
import type { ClientTimers } from './timers';

/** The parts of the client the bootstrap handler works with. */
export interface BootstrapParts {
  lifecycle: ClientLifecycle;
  timers: ClientTimers;
  connection: ServerConnection;
  objects: DeviceObjects;
  formats: ClientFormats;
  notifier: Notifier;
  registration: RegistrationEngine;
  counters: ClientCounters;
  events: ClientEvents;
}

export class BootstrapHandler {
  private readonly lifecycle: ClientLifecycle;
  private readonly timers: ClientTimers;
  private readonly connection: ServerConnection;
  private readonly objects: DeviceObjects;
  private readonly formats: ClientFormats;
  private readonly notifier: Notifier;
  private readonly registration: RegistrationEngine;
  private readonly counters: ClientCounters;
  private readonly events: ClientEvents;
  private readonly retry: RetryPolicy;
  /** Numbers the attempts: a timer or an answer of an older attempt finds it changed and does nothing. */
  private session = 0;
  private attempts = 0;

  constructor(
    private readonly options: Lwm2mClientOptions,
    private readonly model: ObjectModel,
    parts: BootstrapParts,
  ) {
    this.lifecycle = parts.lifecycle;
    this.timers = parts.timers;
    this.connection = parts.connection;
    this.objects = parts.objects;
    this.formats = parts.formats;
    this.notifier = parts.notifier;
    this.registration = parts.registration;
    this.counters = parts.counters;
    this.events = parts.events;
    this.retry = { initialDelayMs: 1000, maxDelayMs: 60_000, maxAttempts: Infinity, ...options.bootstrapRetry };
  }

  /** Ends the attempt under way (the client stops). */
  cancel(): void {
    this.session++;
  }

  /** Security / Server instances at construction: the Bootstrap-Server account, and the server account if given. */
  initialAccounts(explicitServer: boolean): void {
    const o = this.options;
    const security = this.objects.object(0)!;
    const server = this.objects.object(1)!;
    security.instances.clear();
    const bs = o.bootstrapPsk;
    // the Bootstrap-Server account: Bootstrap-Server true, no Short Server ID
    this.objects.addInstance(0, 0, {
      0: o.bootstrapUri,
      1: true,
      2: bs ? 0 : 3,
      3: bs ? Buffer.from(bs.identity, 'utf8') : EMPTY_BUFFER,
      5: bs ? bs.key : EMPTY_BUFFER,
      10: undefined,
    });
    if (explicitServer) {
      const psk = o.psk;
      this.objects.addInstance(0, 1, {
        0: o.serverUri,
        1: false,
        2: psk ? 0 : 3,
        3: psk ? Buffer.from(psk.identity, 'utf8') : EMPTY_BUFFER,
        5: psk ? psk.key : EMPTY_BUFFER,
        10: o.shortServerId,
      });
    } else server.instances.clear();
  }

  /** A client-initiated bootstrap from the first attempt (start, bootstrap(), registration failed for good). */
  begin(reason: string): void {
    this.registration.resetAttempts();
    this.timers.clearAll(['simulate']);
    this.notifier.clear('bootstrapping');
    this.registration.forgetLocation();
    this.lifecycle.state = 'bootstrapping';
    void this.runBootstrap(++this.session, reason);
  }

  /** One bootstrap attempt: socket to the Bootstrap-Server, Bootstrap-Pack (1.2) or Bootstrap-Request. */
  private async runBootstrap(session: number, reason: string): Promise<void> {
    const o = this.options;
    const uri = o.bootstrapUri!;
    const stale = (): boolean => this.session !== session || this.lifecycle.state !== 'bootstrapping';
    this.attempts++;
    this.events.emit('bootstrapping', { uri, reason, attempt: this.attempts });
    try {
      await this.connection.close();
      if (stale()) return;
      await this.connection.open({ uri, psk: o.bootstrapPsk });
      if (stale()) {
        if (this.lifecycle.state === 'stopped' || this.lifecycle.state === 'failed') await this.connection.close();
        return;
      }
      const endpoint = this.connection.requireEndpoint();
      this.armBootstrapTimer(session);
      if (o.lwm2mVersion === '1.2' && (await this.bootstrapPack(endpoint, stale))) return;
      if (stale()) return;
      const query = [`ep=${this.options.endpointName}`];
      // 1.1+: the Preferred Content Format for the Bootstrap-Server's writes (LwM2M 1.1 Transport §6.1)
      if (o.lwm2mVersion !== '1.0') query.push(`pct=${this.formats.multiFormat}`);
      const response = await endpoint.request(this.connection.serverPeer, {
        method: 'POST',
        pathSegments: ['bs'],
        query,
        timeoutMs: o.registrationTimeoutMs,
      });
      if (stale()) return;
      if (response.code !== '2.04') {
        const why = response.payload.length > 0 ? `: ${response.payload.toString('utf8')}` : '';
        throw new ClientError(response.code, `Bootstrap-Request refused with ${response.code}${why}`);
      }
      // from now on the bootstrap server has bootstrapTimeoutMs between its requests, until Bootstrap-Finish
      this.armBootstrapTimer(session);
    } catch (err) {
      if (!stale()) this.bootstrapFailed(err as Error);
    }
  }

  /**
   * LwM2M 1.2 Bootstrap-Pack-Request (GET /bspack?ep=, SenML CBOR): true when the pack was applied and
   * the bootstrap is done; false when the server has none (any answer but 2.05): use /bs instead.
   */
  private async bootstrapPack(endpoint: CoapEndpoint, stale: () => boolean): Promise<boolean> {
    const response = await endpoint.request(this.connection.serverPeer, {
      method: 'GET',
      pathSegments: ['bspack'],
      query: [`ep=${this.options.endpointName}`],
      accept: ContentFormat.SENML_CBOR,
      timeoutMs: this.options.registrationTimeoutMs,
    });
    if (stale() || response.code !== '2.05') return false;
    const format = response.contentFormat ?? ContentFormat.SENML_CBOR;
    if (format !== ContentFormat.SENML_CBOR && format !== ContentFormat.SENML_JSON) {
      throw new Error(`Bootstrap-Pack in ${formatName(format)}, not SenML CBOR`);
    }
    const nodes = decodeNodes(response.payload, format, this.model);
    // the pack is the whole configuration: it replaces the server accounts (the bootstrap account stays)
    this.deleteBootstrapInstances(0);
    this.deleteBootstrapInstances(1);
    for (const [text, node] of nodes) this.bootstrapWriteNode(LwM2mPath.parse(text), node);
    const found = findServerAccount(this.objects.object(0), this.objects.object(1));
    if ('error' in found) throw new Error(`Bootstrap-Pack: ${found.error}`);
    this.finishBootstrap(found.account);
    return true;
  }

  private armBootstrapTimer(session: number = this.session): void {
    const ms = this.options.bootstrapTimeoutMs;
    this.timers.set('bootstrap', ms, () => {
      if (this.session !== session || this.lifecycle.state !== 'bootstrapping') return;
      this.bootstrapFailed(new Error(`bootstrap did not finish within ${ms} ms of the last Bootstrap-Server request`));
    });
  }

  private bootstrapFailed(err: Error): void {
    this.timers.clear('bootstrap');
    this.session++;
    this.counters.bootstrapFailures++;
    if (this.events.listenerCount('bootstrapFailed') > 0) this.events.emit('bootstrapFailed', err);
    const retry = this.retry;
    if (this.attempts >= retry.maxAttempts) {
      this.lifecycle.state = 'failed';
      void this.connection.close();
      this.lifecycle.settleWaiters(new Error(`${this.options.endpointName}: bootstrap failed: ${err.message}`));
      return;
    }
    const base = Math.min(retry.maxDelayMs, retry.initialDelayMs * 2 ** (this.attempts - 1));
    const delay = base * (0.5 + this.options.random() * 0.5);
    this.timers.set('bootstrapRetry', delay, () => {
      if (this.lifecycle.state === 'bootstrapping') void this.runBootstrap(++this.session, `retry: ${err.message}`);
    });
  }

  /** Bootstrap done: (after the 2.04 went out) close the bootstrap socket and register with the new server. */
  private finishBootstrap(account: ServerAccount): void {
    this.timers.clear('bootstrap');
    this.timers.clear('bootstrapRetry');
    this.session++;
    this.counters.bootstraps++;
    this.connection.useAccount(account);
    this.lifecycle.state = 'registering';
    this.registration.resetAttempts();
    this.timers.set('bootstrapDone', 0, () => {
      if (this.lifecycle.state !== 'registering') return;
      this.events.emit('bootstrapped', {
        serverUri: account.uri,
        securityMode: account.securityMode,
        shortServerId: account.shortServerId,
      });
      void this.connection.close().then(() => {
        if (this.lifecycle.state === 'registering' && this.connection.endpoint === undefined)
          this.registration.register();
      });
    });
  }

  /** A request of the Bootstrap-Server (the bootstrap interface: Discover, Read, Write, Delete, Finish). */
  async handleRequest(request: IncomingRequest): Promise<OutgoingResponse> {
    this.armBootstrapTimer();
    const segments = request.pathSegments;
    if (segments.length === 1 && segments[0] === 'bs') {
      if (request.method !== 'POST') throw new ClientError('4.05', `${request.method} /bs is not allowed`);
      return this.bootstrapFinish();
    }
    let path: LwM2mPath;
    try {
      path = LwM2mPath.fromSegments(segments);
    } catch {
      return { code: '4.04' };
    }
    switch (request.method) {
      case 'GET':
        if (request.accept === ContentFormat.LINK_FORMAT) return this.bootstrapDiscover(path);
        return this.bootstrapRead(path, request.accept);
      case 'PUT':
        return this.bootstrapWrite(request, path);
      case 'DELETE':
        return this.bootstrapDelete(path);
      default:
        throw new ClientError('4.05', `${request.method} is not a bootstrap operation`);
    }
  }

  private bootstrapFinish(): OutgoingResponse {
    const found = findServerAccount(this.objects.object(0), this.objects.object(1));
    // LwM2M 1.1 §6.1.7.6: an inconsistent configuration is refused with 4.06 Not Acceptable
    if ('error' in found) return { code: '4.06', payload: diagnostic(found.error) };
    this.finishBootstrap(found.account);
    return { code: '2.04' };
  }

  private bootstrapDiscover(path: LwM2mPath): OutgoingResponse {
    if (path.level > 1) throw new ClientError('4.00', `Bootstrap-Discover targets / or an object, not ${path}`);
    if (path.level === 1 && !this.objects.has(path.objectId!)) throw new ClientError('4.04', `${path} not found`);
    const text = bootstrapDiscoverLinks(this.objects.values(), path.objectId, this.options.lwm2mVersion);
    return { code: '2.05', contentFormat: ContentFormat.LINK_FORMAT, payload: Buffer.from(text, 'utf8') };
  }

  /** Bootstrap-Read (1.1+): the Server (1) and Access Control (2) objects only. */
  private bootstrapRead(path: LwM2mPath, accept: number | undefined): OutgoingResponse {
    if (this.options.lwm2mVersion === '1.0') throw new ClientError('4.05', 'LwM2M 1.0 has no Bootstrap-Read');
    if (path.level === 0 || (path.objectId !== 1 && path.objectId !== 2)) {
      throw new ClientError('4.01', `Bootstrap-Read is allowed on /1 and /2 only, not ${path}`);
    }
    const node = this.objects.readNode(path);
    const format = this.formats.responseFormat(node, accept);
    return { code: '2.05', contentFormat: format, payload: encodeNode(node, format, path, this.model) };
  }

  private bootstrapWrite(request: IncomingRequest, path: LwM2mPath): OutgoingResponse {
    if (path.level === 0 || path.level === 4) {
      throw new ClientError('4.00', `Bootstrap-Write targets an object, instance or resource, not ${path}`);
    }
    const object = this.bootstrapObject(path.objectId!);
    let format = request.contentFormat;
    if (format === undefined) {
      const def = path.level === 3 ? object.definition.resources[path.resourceId!] : undefined;
      if (path.level === 3 && def !== undefined && !def.multiple) {
        format = def.type === 'opaque' ? ContentFormat.OPAQUE : ContentFormat.TEXT;
      } else format = this.formats.multiFormat;
    }
    // every format lib/content decodes (TLV, SenML JSON/CBOR, LwM2M JSON/CBOR, text, opaque, CBOR)
    if (!isSupportedFormat(format))
      throw new ClientError('4.15', `content format ${formatName(format)} is not supported`);
    const node = decodeNode(request.payload, format, path, this.model);
    this.bootstrapWriteNode(path, node);
    return { code: '2.04' };
  }

  /** The object a Bootstrap-Write names, added (without instances) when the model knows it. */
  private bootstrapObject(objectId: number): ClientObject {
    let object = this.objects.object(objectId);
    if (object === undefined) {
      if (this.model.versionsOf(objectId).length === 0) throw new ClientError('4.04', `object ${objectId} not found`);
      this.objects.addObject({ id: objectId, instances: 0 });
      object = this.objects.object(objectId)!;
    }
    return object;
  }

  /** Stores a written node (object, instance, resource or resource instance), creating instances as needed. */
  private bootstrapWriteNode(path: LwM2mPath, node: LwM2mNode): void {
    const object = this.bootstrapObject(path.objectId!);
    switch (node.kind) {
      case 'object':
        for (const instance of node.instances.values()) {
          this.bootstrapWriteInstance(object, instance.id, [...instance.resources.values()]);
        }
        return;
      case 'instance':
        this.bootstrapWriteInstance(object, node.id, [...node.resources.values()]);
        return;
      case 'resource':
      case 'multipleResource':
        this.bootstrapWriteInstance(object, path.instanceId!, [node]);
        return;
      case 'resourceInstance': {
        const instance = this.bootstrapInstance(object, path.instanceId!);
        const def = object.definition.resources[path.resourceId!];
        if (def === undefined || !def.multiple)
          throw new ClientError('4.00', `${path.parent()} is not a multiple resource`);
        const slot = this.objects.slotFor(instance, path.resourceId!, true)!;
        const instances = new Map(slot.instances ?? []);
        instances.set(node.id, node.value);
        slot.store(instances);
        return;
      }
      default:
        throw new ClientError('4.00', `cannot write ${path}`);
    }
  }

  private bootstrapWriteInstance(object: ClientObject, instanceId: number, resources: LwM2mResource[]): void {
    for (const resource of resources) {
      if (object.definition.resources[resource.id] === undefined) {
        throw new ClientError('4.04', `/${object.id}/${instanceId}/${resource.id} not found`);
      }
    }
    const instance = this.bootstrapInstance(object, instanceId);
    for (const resource of resources) {
      const slot = this.objects.slotFor(instance, resource.id, true)!;
      slot.store(contentOf(slot, resource, instance.path.append(resource.id), false));
    }
  }

  /** An instance, created when missing (Security from nothing, others with their built-in resources). */
  private bootstrapInstance(object: ClientObject, instanceId: number): ClientInstance {
    const existing = object.instances.get(instanceId);
    if (existing !== undefined) return existing;
    if (!object.definition.multiple && object.instances.size > 0) {
      throw new ClientError('4.00', `object ${object.id} is single-instance`);
    }
    const spec = object.id === 0 ? {} : this.objects.implementation(object.id).instance(instanceId);
    object.instances.set(instanceId, this.objects.buildInstance(object, instanceId, spec));
    this.registration.markObjectsChanged();
    return object.instances.get(instanceId)!;
  }

  /**
   * Bootstrap-Delete (LwM2M 1.1 §6.1.7.5): `/` deletes every instance but the Bootstrap-Server account
   * and the Device object's; `/0` spares the Bootstrap-Server account; deleting that account or the
   * Device instance by name is refused (4.00).
   */
  private bootstrapDelete(path: LwM2mPath): OutgoingResponse {
    if (path.level === 0) {
      for (const id of this.objects.objectIds()) if (id !== 3) this.deleteBootstrapInstances(id);
      return { code: '2.02' };
    }
    if (path.level > 2)
      throw new ClientError('4.00', `Bootstrap-Delete targets /, an object or an instance, not ${path}`);
    if (path.objectId === 3) throw new ClientError('4.00', 'the Device object cannot be deleted');
    const object = this.objects.object(path.objectId!);
    if (path.level === 1) {
      if (object !== undefined) this.deleteBootstrapInstances(object.id);
      return { code: '2.02' };
    }
    const instance = object?.instances.get(path.instanceId!);
    if (instance !== undefined) {
      if (object!.id === 0 && isBootstrapAccount(instance)) {
        throw new ClientError('4.00', `${path} is the Bootstrap-Server account and cannot be deleted`);
      }
      object!.instances.delete(instance.id);
      this.registration.markObjectsChanged();
    }
    return { code: '2.02' };
  }

  private deleteBootstrapInstances(objectId: number): void {
    const object = this.objects.object(objectId);
    if (object === undefined) return;
    for (const instance of [...object.instances.values()]) {
      if (objectId === 0 && isBootstrapAccount(instance)) continue;
      object.instances.delete(instance.id);
      this.registration.markObjectsChanged();
    }
  }
}
