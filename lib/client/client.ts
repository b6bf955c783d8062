/**
 * Lwm2mClient: one LwM2M device on our CoAP message layer, the facade over the client's parts. It
 * registers with a server (registration-engine.ts), bootstraps (bootstrap-handler.ts), answers Device
 * Management requests in every content format of lib/content (dm-handler.ts), notifies observers and
 * sends data (notifier.ts), all over the device's object tree (device-objects.ts).
 *
 * The socket is a DatagramTransport made by `options.transport` (a UdpTransport by default), so a
 * DTLS transport plugs in the same way the server's does (connection.ts).
 */
import { EventEmitter } from 'node:events';
import { isIP } from 'node:net';
import type { CoapEndpoint } from '../coap/endpoint';
import type { IncomingRequest, IncomingResponse, OutgoingRequest, OutgoingResponse } from '../coap/types';
import { ObjectModel } from '../model/object-model';
import type { PeerAddress } from '../transport/types';
import { findServerAccount } from './bootstrap';
import { BootstrapHandler } from './bootstrap-handler';
import { ServerConnection } from './connection';
import { DeviceObjects } from './device-objects';
import { DmHandler, errorResponse } from './dm-handler';
import { downloadPackage } from './download';
import { ClientFormats } from './formats';
import { ClientLifecycle } from './lifecycle';
import { Notifier } from './notifier';
import type { InstanceSpec } from './object-tree';
import type { ObjectContext } from './objects/types';
import {
  DEFAULTS,
  checkBootstrapUri,
  emitError,
  parseObjectChoice,
  type ClientCounters,
  type ClientState,
  type ClientStats,
  type Lwm2mClientEvents,
  type Lwm2mClientOptions,
  type ObjectChoice,
} from './options';
import { RegistrationEngine } from './registration-engine';
import { ClientTimers } from './timers';

export type {
  ClientState,
  ClientStats,
  Lwm2mClientEvents,
  Lwm2mClientOptions,
  ObjectChoice,
  RetryPolicy,
} from './options';

let sharedModel: ObjectModel | undefined;
/** The built-in object model, shared by every client that brings none (a fleet of thousands). */
export function defaultClientModel(): ObjectModel {
  return (sharedModel ??= ObjectModel.withBuiltins());
}

export class Lwm2mClient extends EventEmitter<Lwm2mClientEvents> {
  readonly options: Lwm2mClientOptions;
  readonly model: ObjectModel;
  readonly endpointName: string;
  /** Content formats we accept in Write and answer in (Accept). */
  readonly acceptedFormats: ReadonlySet<number>;
  /** Content formats announced with `ct`. */
  readonly announcedFormats: readonly number[];
  private readonly lifecycle: ClientLifecycle;
  private readonly timers = new ClientTimers((err) => this.emitError(err));
  private readonly connection: ServerConnection;
  private readonly objects: DeviceObjects;
  private readonly notifier: Notifier;
  private readonly registration: RegistrationEngine;
  private readonly bootstrapper: BootstrapHandler;
  private readonly dm: DmHandler;
  private readonly counters: ClientCounters = {
    registrations: 0,
    updates: 0,
    reRegistrations: 0,
    registrationFailures: 0,
    deregistrations: 0,
    requests: 0,
    notifications: 0,
    sends: 0,
    bootstraps: 0,
    bootstrapFailures: 0,
  };

  constructor(options: Partial<Lwm2mClientOptions> & { endpointName: string }) {
    super();
    if (typeof options.endpointName !== 'string' || options.endpointName === '') {
      throw new TypeError('Lwm2mClient needs an endpointName');
    }
    const defined = Object.fromEntries(Object.entries(options).filter(([, v]) => v !== undefined));
    this.options = { ...DEFAULTS, ...defined } as Lwm2mClientOptions;
    const o = this.options;
    if (!['1.0', '1.1', '1.2'].includes(o.lwm2mVersion))
      throw new RangeError(`unknown LwM2M version ${o.lwm2mVersion}`);
    if (!(o.lifetime >= 1)) throw new RangeError('lifetime must be >= 1 s');
    this.endpointName = o.endpointName;
    this.model = o.model ?? defaultClientModel();
    const explicitServer = typeof options.serverUri === 'string' && options.serverUri !== '';
    if (!explicitServer) o.serverUri = DEFAULTS.serverUri;
    if (o.bootstrapUri !== undefined) checkBootstrapUri(o);
    const formats = new ClientFormats(o.lwm2mVersion, o.contentFormats);
    this.acceptedFormats = formats.accepted;
    this.announcedFormats = formats.announced;
    this.lifecycle = new ClientLifecycle(this.endpointName);
    this.connection = new ServerConnection(o, this.endpointName, {
      handleRequest: (request) => this.handleRequest(request),
      notificationReset: (peer, token) => this.notifier.cancel(peer, token, 'reset by the server'),
      error: (err) => this.emitError(err),
    });
    this.objects = new DeviceObjects(this.model, o, {
      context: this.makeContext(),
      changed: (path) => this.notifier.changed(path),
      objectsChanged: () => this.registration.markObjectsChanged(),
    });
    const { lifecycle, timers, connection, objects, counters } = this;
    const notifier = new Notifier(o, this.model, objects, connection, counters, this, {
      awake: () => this.registration.awake(),
    });
    this.notifier = notifier;
    const parts = { lifecycle, timers, connection, objects, formats, notifier, counters, events: this };
    this.registration = new RegistrationEngine(o, parts, { bootstrap: (reason) => this.bootstrapper.begin(reason) });
    this.bootstrapper = new BootstrapHandler(o, this.model, { ...parts, registration: this.registration });
    this.dm = new DmHandler(o, this.model, objects, formats, notifier, this, {
      objectsChanged: () => this.registration.markObjectsChanged(),
    });
    this.addObject({ id: 0 });
    this.addObject({ id: 1 });
    this.addObject({ id: 3 });
    for (const choice of o.objects) this.addObject(choice);
    if (o.bootstrapUri !== undefined) this.bootstrapper.initialAccounts(explicitServer);
  }

  // ================================================================ public API

  get state(): ClientState {
    return this.lifecycle.state;
  }

  get registered(): boolean {
    return this.lifecycle.state === 'registered';
  }

  /** The registration's location (`/rd/5a3f`) while registered. */
  get registrationLocation(): string | undefined {
    return this.registration.registrationLocation;
  }

  /** The bound local address (after start). */
  localAddress(): PeerAddress | undefined {
    return this.connection.localAddress();
  }

  /** The CoAP endpoint (after start): its stats, or requests of your own. */
  get coapEndpoint(): CoapEndpoint | undefined {
    return this.connection.endpoint;
  }

  stats(): ClientStats {
    return { ...this.counters, observations: this.notifier.size };
  }

  /** Object ids exposed, ascending. */
  objectIds(): number[] {
    return this.objects.objectIds();
  }

  /** Instance ids of an object, ascending. */
  instanceIds(objectId: number): number[] {
    return this.objects.instanceIds(objectId);
  }

  /**
   * Binds the socket and registers. Resolves once registered; retries per `registerRetry` meanwhile and
   * rejects when it gives up or the client is stopped first.
   */
  async start(): Promise<void> {
    const lifecycle = this.lifecycle;
    const connection = this.connection;
    if (lifecycle.state !== 'stopped' && lifecycle.state !== 'failed') return this.whenRegistered();
    lifecycle.state = 'starting';
    this.registration.resetAttempts();
    if (this.options.bootstrapUri !== undefined) {
      const found = findServerAccount(this.objects.object(0), this.objects.object(1));
      if ('error' in found) {
        this.bootstrapper.begin(found.error);
        this.startSimulation();
        return this.whenRegistered();
      }
      connection.useAccount(found.account);
    }
    if (connection.endpoint !== undefined && connection.endpointUri !== connection.target.uri) await connection.close();
    // with a Bootstrap-Server the Register opens the socket itself: a failure there counts toward the fallback
    if (connection.endpoint === undefined && this.options.bootstrapUri === undefined) {
      try {
        await connection.open();
      } catch (err) {
        lifecycle.state = 'stopped';
        throw err;
      }
    }
    if (lifecycle.state !== 'starting') throw new Error('client stopped while starting');
    lifecycle.state = 'registering';
    const registered = this.whenRegistered();
    this.registration.register();
    this.startSimulation();
    return registered;
  }

  /**
   * Client-initiated bootstrap now (needs `bootstrapUri`): de-registers if registered, asks the
   * Bootstrap-Server for a configuration, and registers with the server it provisions. Resolves once
   * registered there (starting the client if it is stopped).
   */
  async bootstrap(): Promise<void> {
    const lifecycle = this.lifecycle;
    if (this.options.bootstrapUri === undefined) throw new Error(`${this.endpointName} has no bootstrapUri`);
    if (lifecycle.state === 'bootstrapping') return this.whenRegistered();
    if (lifecycle.state === 'registered') {
      this.timers.clearAll(['simulate']);
      this.notifier.clear('bootstrapping');
      lifecycle.state = 'bootstrapping';
      try {
        await this.registration.sendDeregister(this.options.registrationTimeoutMs);
      } catch {
        // the server is gone: bootstrap anyway
      }
      if (lifecycle.state !== 'bootstrapping') return this.whenRegistered();
    }
    const fromStopped = lifecycle.state === 'stopped' || lifecycle.state === 'failed';
    this.registration.resetAttempts();
    this.bootstrapper.begin('bootstrap() called');
    if (fromStopped) this.startSimulation();
    return this.whenRegistered();
  }

  /** The LwM2M server account in use: its URI, security mode (0 PSK, 3 NoSec) and Short Server ID. */
  get serverAccount(): { uri: string; securityMode: number; shortServerId: number } {
    const target = this.connection.target;
    const security = target.psk !== undefined || target.uri.startsWith('coaps:') ? 0 : 3;
    const ssid = Number(this.get(`/1/${this.connection.serverInstanceId}/0`) ?? this.options.shortServerId);
    return { uri: target.uri, securityMode: security, shortServerId: ssid };
  }

  /** Resolves when registered (at once if already). */
  whenRegistered(): Promise<void> {
    return this.lifecycle.whenRegistered();
  }

  /**
   * De-registers (unless `deregister: false`), drops observations, stops every timer and closes the
   * socket. Nothing of this client keeps running afterwards.
   */
  async stop(options: { deregister?: boolean; timeoutMs?: number } = {}): Promise<void> {
    const lifecycle = this.lifecycle;
    if (lifecycle.state === 'stopped') return;
    const wasRegistered = lifecycle.state === 'registered' && this.registration.registrationLocation !== undefined;
    lifecycle.state = 'stopped';
    this.bootstrapper.cancel();
    this.timers.clearAll();
    this.notifier.clear('client stopped');
    lifecycle.settleWaiters(new Error(`${this.endpointName} stopped`));
    if (wasRegistered && options.deregister !== false && this.connection.endpoint !== undefined) {
      try {
        await this.registration.sendDeregister(options.timeoutMs ?? 5000);
      } catch {
        // the server is gone: nothing more to do
      }
    }
    this.registration.forgetLocation();
    await this.connection.close();
  }

  /** Sends a registration Update now (e.g. after changing objects). */
  async update(): Promise<void> {
    await this.registration.update();
  }

  /**
   * Sets a value as the device itself (sensor reading, local change): a resource (`/3303/0/5700`), a
   * resource instance (`/3/0/7/1`) or several resources of an instance (`/3303/0` with `{ 5700: 21 }`).
   * Observers are notified. Throws for paths or values the model does not allow.
   */
  set(pathText: string, value: unknown): void {
    this.objects.set(pathText, value);
  }

  /**
   * A value as msg data (see lib/model toPlain): a resource's value, `{ id: value }` for a multiple
   * resource, `{ byName, byId }` for an instance, `{ id: instance }` for an object. Undefined when absent.
   */
  get(pathText: string): unknown {
    return this.objects.get(pathText);
  }

  /** Adds an object (before or after start; a registered client sends an Update). */
  addObject(choice: number | string | ObjectChoice): void {
    this.objects.addObject(choice);
  }

  /** Adds an instance (next free id by default) with the built-in resources, overridden by `resources`. */
  addInstance(objectId: number, instanceId?: number, resources?: InstanceSpec): number {
    return this.objects.addInstance(objectId, instanceId, resources);
  }

  /** Removes an instance (a registered client sends an Update). */
  removeInstance(objectId: number, instanceId: number): boolean {
    return this.objects.removeInstance(objectId, instanceId);
  }

  /** One simulated change of every simulated value; returns how many instances changed. */
  changeValues(): number {
    return this.objects.changeValues();
  }

  /**
   * Send (LwM2M 1.1 Information Reporting): POST /dp with the values at `paths` in SenML CBOR (112,
   * default) or SenML JSON (110). Resolves with the server's response.
   */
  async send(paths: string[], options: { format?: number; timeoutMs?: number } = {}): Promise<IncomingResponse> {
    return this.notifier.send(paths, options);
  }

  /** Simulated reboot (Device /3/0/4 does this): silent, observations gone, registers again. */
  reboot(whileDown?: () => 'stay-down' | void): void {
    this.registration.reboot(whileDown);
  }

  // ================================================================ plumbing

  /** A request from the server: the bootstrap interface while bootstrapping, Device Management otherwise. */
  private async handleRequest(request: IncomingRequest): Promise<OutgoingResponse> {
    this.counters.requests++;
    this.registration.awake();
    try {
      if (this.lifecycle.state === 'bootstrapping') return await this.bootstrapper.handleRequest(request);
      return await this.dm.dispatch(request);
    } catch (err) {
      return errorResponse(err, this);
    }
  }

  private makeContext(): ObjectContext {
    // eslint-disable-next-line @typescript-eslint/no-this-alias
    const client = this;
    return {
      get endpointName() {
        return client.endpointName;
      },
      get lwm2mVersion() {
        return client.options.lwm2mVersion;
      },
      get serverUri() {
        return client.connection.target.uri;
      },
      get lifetime() {
        return client.options.lifetime;
      },
      get binding() {
        return client.options.binding;
      },
      random: () => client.options.random(),
      set: (path, value) => client.set(path, value),
      get: (path) => client.get(path),
      hasObject: (id) => client.objects.has(id) || client.options.objects.some((c) => parseObjectChoice(c).id === id),
      triggerUpdate: () => client.registration.deferUpdate(),
      reboot: (whileDown) => setImmediate(() => client.reboot(whileDown)),
      disable: (seconds) => setImmediate(() => void client.registration.disable(seconds)),
      // After the 2.04 has gone out: the bootstrap begins with a De-register.
      triggerBootstrap:
        client.options.bootstrapUri === undefined
          ? undefined
          : () => setImmediate(() => void client.bootstrap().catch((err: Error) => client.emitError(err))),
      download: (uri, timeoutMs, maxSize, tls) => {
        const endpoint = client.connection.requireEndpoint();
        const local = client.localAddress();
        return downloadPackage(uri, {
          coapRequest: (peer, request: OutgoingRequest) => endpoint.request(peer, request),
          family: local === undefined ? undefined : isIP(local.address) === 6 ? 6 : 4,
          timeoutMs,
          maxSize,
          ...(tls ? { tls } : {}),
        });
      },
      emit: (event, payload) => (client.emit as (e: string, p: unknown) => boolean)(event, payload),
      localAddress: () => client.localAddress(),
    };
  }

  private startSimulation(): void {
    if (this.options.simulateEveryMs > 0) {
      this.timers.set('simulate', this.options.simulateEveryMs, () => this.simulateTick(), true);
    }
  }

  private simulateTick(): void {
    if (this.lifecycle.state === 'registered') this.changeValues();
    this.timers.set('simulate', this.options.simulateEveryMs, () => this.simulateTick(), true);
  }

  private emitError(err: Error): void {
    emitError(this, err);
  }
}
