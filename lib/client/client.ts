/**
 * Lwm2mClient: one LwM2M device on our CoAP message layer. It registers with a server, keeps the
 * registration alive with Updates, answers Device Management requests in every content format of
 * lib/content, notifies observers (pmin/pmax/gt/lt/st, epmin/epmax, edge/con), and sends data (Send).
 *
 * The socket is a DatagramTransport made by `options.transport` (a UdpTransport by default), so a
 * DTLS transport plugs in the same way the server's does.
 */
import { lookup } from 'node:dns/promises';
import { EventEmitter } from 'node:events';
import { isIP } from 'node:net';
import { encodeUint } from '../coap/codec';
import { CoapEndpoint } from '../coap/endpoint';
import { CoapRequestError } from '../coap/types';
import type {
  CoapEndpointOptions,
  IncomingRequest,
  IncomingResponse,
  OutgoingRequest,
  OutgoingResponse,
} from '../coap/types';
import { ContentCodecError, ContentFormat } from '../content/types';
import {
  decodeNode,
  decodeNodes,
  decodePaths,
  encodeNode,
  encodeNodes,
  formatName,
  isSupportedFormat,
} from '../content';
import { ObjectModel } from '../model/object-model';
import { compareVersions } from '../model/builtins';
import { findResourceByName } from '../model/object-model';
import { InvalidPathError, LwM2mPath } from '../model/path';
import { ValueError, toPlain } from '../model/values';
import type { LwM2mNode, LwM2mObjectInstance, LwM2mResource, ObjectDefinition, ResourceValue } from '../model/types';
import type { DatagramTransport, PeerAddress } from '../transport/types';
import { UdpTransport } from '../transport/udp';
import { applyAttributeQuery, effectiveAttributes, type ClientAttributes, type ClientLwm2mVersion } from './attributes';
import { downloadPackage } from './download';
import { ClientError } from './errors';
import { bootstrapDiscoverLinks, findServerAccount, isBootstrapAccount, type ServerAccount } from './bootstrap';
import { discoverLinks, registrationLinks } from './links';
import { DtlsClientTransport } from './dtls-transport';
import type { PskCredentials } from './dtls-transport';
import { NotifierTransport } from './notifier-transport';
import {
  ClientInstance,
  ClientObject,
  ResourceSlot,
  EMPTY_BUFFER,
  coerceContent,
  isResourceOptions,
  sortedSlots,
  type InstanceSpec,
  type ResourceContent,
} from './object-tree';
import { Observation, ObservationRegistry } from './observations';
import { builtinImplementation, type DeviceInfo, type FirmwareOptions, type ObjectImplementation } from './objects';
import type { ObjectContext } from './objects/types';

/** One object to expose: an id, or an id with its version, instances and behaviour. */
export interface ObjectChoice {
  id: number;
  /** Object version to use and announce (`ver=`); default: the newest the model has for our LwM2M version. */
  version?: string;
  /** How many instances (default 1), or each instance's resource values (ids from 0, or keyed by instance id). */
  instances?: number | InstanceSpec[] | Record<number, InstanceSpec>;
  /** Replaces the built-in behaviour of the object. */
  implementation?: ObjectImplementation;
}

export interface RetryPolicy {
  /** First delay after a failed Register, ms (default 1000); doubles each time. */
  initialDelayMs: number;
  /** Longest delay, ms (default 60000). */
  maxDelayMs: number;
  /** Register attempts before giving up (default Infinity: keep trying). */
  maxAttempts: number;
}

export interface Lwm2mClientOptions {
  /** The endpoint name (`ep=`). */
  endpointName: string;
  /** Where the LwM2M server is: `coap://host:port` (default coap://127.0.0.1:5683). */
  serverUri: string;
  /** Registration lifetime in seconds (default 300). */
  lifetime: number;
  lwm2mVersion: ClientLwm2mVersion;
  /** Binding (default 'U'). */
  binding: string;
  /** Queue mode: `Q` (1.1+) or a `UQ` binding (1.0); the device sleeps between exchanges. */
  queueMode: boolean;
  /** How long a queue-mode device stays reachable after an exchange, ms (default 93000, MAX_TRANSMIT_WAIT). */
  queueAwakeMs: number;
  /**
   * Content formats accepted (Accept, Content-Format) besides text (0) and opaque (42), which always
   * are, in order of preference: the first multi-value one answers requests without Accept. Announced
   * on the root link: 1.1 `ct=` the preferred one (a single value, as 1.1 defines `ct`), 1.2 `ct="..."`
   * all of them. Default: 1.0 TLV and JSON (old and new numbers); 1.1+ SenML JSON, SenML CBOR, TLV,
   * JSON, CBOR.
   */
  contentFormats?: number[];
  /** Objects besides Security (0), Server (1) and Device (3), which are always there. Default: none. */
  objects: Array<number | string | ObjectChoice>;
  /** Object definitions (default: the built-in ones, shared). */
  model?: ObjectModel;
  /**
   * Pre-shared key for a `coaps://` server: the device speaks DTLS 1.2 through node-dtls-client (the
   * LwM2M mandatory TLS_PSK_WITH_AES_128_CCM_8 first).
   */
  psk?: PskCredentials;
  /** Makes the socket; default a UdpTransport on bindAddress:bindPort (a DTLS one with `psk`). */
  transport?: (local: { address: string; port: number }) => DatagramTransport;
  /** Local address to bind (default: 0.0.0.0 for an IPv4 server, :: for IPv6). */
  bindAddress?: string;
  /** Local port (default 0: any free port). */
  bindPort: number;
  /** CoAP message layer options. */
  coap: Partial<CoapEndpointOptions>;
  /** Send notifications as CON (default false: NON, as most devices do); the 1.2 `con` attribute wins. */
  confirmableNotifications: boolean;
  /** Seconds before the lifetime ends at which an Update goes out (default 10, at least 10% of the lifetime). */
  updateMarginSeconds: number;
  /** Alternate root path (e.g. '/lwm2m'), default none. */
  rootPath: string;
  registerRetry: Partial<RetryPolicy>;
  /** Time a simulated reboot takes, ms (default 1000). */
  rebootDelayMs: number;
  firmware?: FirmwareOptions;
  device?: Partial<DeviceInfo>;
  /** Short Server ID (default 1). */
  shortServerId: number;
  /** Server object defaults /1/0/2 and /1/0/3 (seconds). */
  defaultPmin?: number;
  defaultPmax?: number;
  /** Changes simulated values every this many ms (default 0: only on changeValues()). */
  simulateEveryMs: number;
  /** Random source for the simulation (default Math.random). */
  random: () => number;
  /** Limit for a Register / Update / De-register exchange, ms (default: the CoAP layer's). */
  registrationTimeoutMs?: number;
  /**
   * LwM2M Bootstrap-Server, `coap://host:5683` or `coaps://host:5684` (with `bootstrapPsk`). With it the
   * device bootstraps (client-initiated, LwM2M Core §6.1) when it has no LwM2M Server account (no
   * `serverUri` given), when `bootstrap()` is called, and when registration fails for good (after
   * `registerRetry.maxAttempts`, default 5 with a bootstrap server, unless /1/x/16 is false).
   */
  bootstrapUri?: string;
  /** PSK of the Bootstrap-Server account (for a `coaps://` bootstrapUri). */
  bootstrapPsk?: PskCredentials;
  /** A bootstrap fails when it has not finished this long after the last Bootstrap-Server request, ms (default 60000). */
  bootstrapTimeoutMs: number;
  /** Retries of a failed bootstrap (default: 1 s doubling up to 60 s, no limit). */
  bootstrapRetry: Partial<RetryPolicy>;
}

export type ClientState =
  | 'stopped'
  | 'starting'
  | 'bootstrapping'
  | 'registering'
  | 'registered'
  | 'rebooting'
  | 'disabled'
  | 'offline'
  | 'failed';

export interface ClientStats {
  registrations: number;
  updates: number;
  /** Registrations after an Update was refused (4.04) or failed. */
  reRegistrations: number;
  registrationFailures: number;
  deregistrations: number;
  /** Requests from the server answered. */
  requests: number;
  notifications: number;
  observations: number;
  sends: number;
  /** Bootstraps finished (Bootstrap-Finish accepted, or a Bootstrap-Pack applied). */
  bootstraps: number;
  /** Bootstrap attempts that failed (refused, timed out, inconsistent Bootstrap-Pack). */
  bootstrapFailures: number;
}

export interface Lwm2mClientEvents {
  registered: [info: { location: string; reRegistration: boolean }];
  updated: [info: { location: string }];
  deregistered: [];
  registrationFailed: [error: Error];
  /** A client-initiated bootstrap begins (each attempt). */
  bootstrapping: [info: { uri: string; reason: string; attempt: number }];
  /** The bootstrap finished; the device registers with this server next. */
  bootstrapped: [info: { serverUri: string; securityMode: number; shortServerId: number }];
  /** A bootstrap attempt failed (it is retried per `bootstrapRetry`). */
  bootstrapFailed: [error: Error];
  /** The server wrote a value (after it was stored). */
  write: [event: { path: string; value: unknown; mode: 'replace' | 'update' }];
  execute: [event: { path: string; args: string }];
  create: [event: { path: string }];
  delete: [event: { path: string }];
  observe: [event: { path: string; token: string; format: number }];
  observeCancelled: [event: { path: string; token: string; reason: string }];
  /** A notification went out. */
  notification: [event: { path: string; code: string; confirmable: boolean; sequence: number }];
  reboot: [];
  sleep: [];
  wake: [];
  firmware: [event: { state: number; result: number }];
  error: [error: Error];
}

const DEFAULTS: Omit<Lwm2mClientOptions, 'endpointName'> = {
  serverUri: 'coap://127.0.0.1:5683',
  lifetime: 300,
  lwm2mVersion: '1.1',
  binding: 'U',
  queueMode: false,
  queueAwakeMs: 93_000,
  objects: [],
  bindPort: 0,
  coap: {},
  confirmableNotifications: false,
  updateMarginSeconds: 10,
  rootPath: '',
  registerRetry: {},
  rebootDelayMs: 1000,
  shortServerId: 1,
  simulateEveryMs: 0,
  random: Math.random,
  bootstrapTimeoutMs: 60_000,
  bootstrapRetry: {},
};

const FORMATS_1_0 = [ContentFormat.TLV, ContentFormat.OLD_TLV, ContentFormat.JSON, ContentFormat.OLD_JSON];
const FORMATS_1_1 = [
  ContentFormat.SENML_JSON,
  ContentFormat.SENML_CBOR,
  ContentFormat.TLV,
  ContentFormat.JSON,
  ContentFormat.CBOR,
];
/** Formats that carry an instance or an object (the others carry one value). */
const MULTI_VALUE = new Set<number>([
  ContentFormat.TLV,
  ContentFormat.SENML_CBOR,
  ContentFormat.SENML_JSON,
  ContentFormat.JSON,
  ContentFormat.OLD_TLV,
  ContentFormat.OLD_JSON,
]);
/** Objects the server may not touch (LwM2M 1.1 §7.1: Security, OSCORE). */
const PROTECTED = new Set([0, 21]);

let sharedModel: ObjectModel | undefined;
/** The built-in object model, shared by every client that brings none (a fleet of thousands). */
export function defaultClientModel(): ObjectModel {
  return (sharedModel ??= ObjectModel.withBuiltins());
}

interface Waiter {
  resolve: () => void;
  reject: (err: Error) => void;
}

export class Lwm2mClient extends EventEmitter<Lwm2mClientEvents> {
  readonly options: Lwm2mClientOptions;
  readonly model: ObjectModel;
  readonly endpointName: string;
  /** Content formats we accept in Write and answer in (Accept). */
  readonly acceptedFormats: ReadonlySet<number>;
  /** Content formats announced with `ct`. */
  readonly announcedFormats: readonly number[];
  private readonly objects = new Map<number, ClientObject>();
  private readonly implementations = new Map<number, ObjectImplementation>();
  private readonly attributes = new Map<string, ClientAttributes>();
  private readonly observations: ObservationRegistry;
  private readonly retry: RetryPolicy;
  private readonly multiFormat: number;
  private readonly context: ObjectContext;
  private transport: NotifierTransport | undefined;
  private endpoint: CoapEndpoint | undefined;
  private serverPeer: PeerAddress | undefined;
  private _state: ClientState = 'stopped';
  private location: string[] | undefined;
  private registeredLifetime = 0;
  private registeredBinding = '';
  private objectsChanged = false;
  private attempts = 0;
  private registerInFlight = false;
  private updateInFlight = false;
  private updateAgain = false;
  private hasRegistered = false;
  private observeSeq = 1;
  private waiters: Waiter[] = [];
  /** The LwM2M server the device talks to: options.serverUri / psk, or the account a bootstrap provisioned. */
  private target: { uri: string; psk?: PskCredentials };
  /** The URI the open endpoint talks to. */
  private endpointUri: string | undefined;
  /** The Server object instance (/1/x) of the account in use. */
  private serverInstanceId = 0;
  private readonly bootstrapRetryPolicy: RetryPolicy;
  private bootstrapSession = 0;
  private bootstrapAttempts = 0;
  private readonly timers = new Map<string, NodeJS.Timeout>();
  private readonly counters = {
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
    this.target = { uri: o.serverUri, psk: o.psk };
    this.retry = {
      initialDelayMs: 1000,
      maxDelayMs: 60_000,
      // LwM2M 1.1 §6.1: bootstrap after the registration retry sequence (Communication Retry Count 5)
      maxAttempts: o.bootstrapUri !== undefined ? 5 : Infinity,
      ...o.registerRetry,
    };
    this.bootstrapRetryPolicy = {
      initialDelayMs: 1000,
      maxDelayMs: 60_000,
      maxAttempts: Infinity,
      ...o.bootstrapRetry,
    };
    const announced = o.contentFormats ?? (o.lwm2mVersion === '1.0' ? FORMATS_1_0 : FORMATS_1_1);
    for (const format of announced) {
      if (!isSupportedFormat(format)) throw new RangeError(`content format ${format} is not supported`);
    }
    const preferred = announced.find((format) => MULTI_VALUE.has(format));
    this.multiFormat = preferred ?? ContentFormat.TLV;
    this.acceptedFormats = new Set([ContentFormat.TEXT, ContentFormat.OPAQUE, ...announced]);
    // 1.1 defines `ct` as the one format the client prefers (Wakaama's server accepts nothing else); 1.2 a list
    this.announcedFormats =
      o.lwm2mVersion === '1.1' ? [preferred ?? announced[0]].filter((f) => f !== undefined) : [...announced];
    this.context = this.makeContext();
    this.observations = new ObservationRegistry({
      attributes: (path) => this.effectiveAttributes(path),
      read: (path) => this.readNode(path),
      send: (observation, node, confirmable) => this.sendNotification(observation, node, confirmable),
      confirmableByDefault: () => this.options.confirmableNotifications,
      ended: (observation, reason) =>
        this.emit('observeCancelled', {
          path: observation.path.toString(),
          token: observation.token.toString('hex'),
          reason,
        }),
      now: () => performance.now(),
    });
    this.addObject({ id: 0 });
    this.addObject({ id: 1 });
    this.addObject({ id: 3 });
    for (const choice of o.objects) this.addObject(choice);
    if (o.bootstrapUri !== undefined) this.initialAccounts(explicitServer);
  }

  // ================================================================ public API

  get state(): ClientState {
    return this._state;
  }

  get registered(): boolean {
    return this._state === 'registered';
  }

  /** The registration's location (`/rd/5a3f`) while registered. */
  get registrationLocation(): string | undefined {
    return this.location === undefined ? undefined : '/' + this.location.join('/');
  }

  /** The bound local address (after start). */
  localAddress(): PeerAddress | undefined {
    return this.transport?.localAddress();
  }

  /** The CoAP endpoint (after start): its stats, or requests of your own. */
  get coapEndpoint(): CoapEndpoint | undefined {
    return this.endpoint;
  }

  stats(): ClientStats {
    return { ...this.counters, observations: this.observations.size };
  }

  /** Object ids exposed, ascending. */
  objectIds(): number[] {
    return [...this.objects.keys()].sort((a, b) => a - b);
  }

  /** Instance ids of an object, ascending. */
  instanceIds(objectId: number): number[] {
    return [...(this.objects.get(objectId)?.instances.keys() ?? [])].sort((a, b) => a - b);
  }

  /**
   * Binds the socket and registers. Resolves once registered; retries per `registerRetry` meanwhile and
   * rejects when it gives up or the client is stopped first.
   */
  async start(): Promise<void> {
    if (this._state !== 'stopped' && this._state !== 'failed') return this.whenRegistered();
    this._state = 'starting';
    this.attempts = 0;
    if (this.options.bootstrapUri !== undefined) {
      const found = findServerAccount(this.objects.get(0), this.objects.get(1));
      if ('error' in found) {
        this.bootstrapAttempts = 0;
        this.beginBootstrap(found.error);
        this.startSimulation();
        return this.whenRegistered();
      }
      this.useAccount(found.account);
    }
    if (this.endpoint !== undefined && this.endpointUri !== this.target.uri) await this.closeEndpoint();
    // with a Bootstrap-Server the Register opens the socket itself: a failure there counts toward the fallback
    if (this.endpoint === undefined && this.options.bootstrapUri === undefined) {
      try {
        await this.open();
      } catch (err) {
        this._state = 'stopped';
        throw err;
      }
    }
    if (this._state !== 'starting') throw new Error('client stopped while starting');
    this._state = 'registering';
    const registered = this.whenRegistered();
    this.register();
    this.startSimulation();
    return registered;
  }

  /**
   * Client-initiated bootstrap now (needs `bootstrapUri`): de-registers if registered, asks the
   * Bootstrap-Server for a configuration, and registers with the server it provisions. Resolves once
   * registered there (starting the client if it is stopped).
   */
  async bootstrap(): Promise<void> {
    if (this.options.bootstrapUri === undefined) throw new Error(`${this.endpointName} has no bootstrapUri`);
    if (this._state === 'bootstrapping') return this.whenRegistered();
    if (this._state === 'registered') {
      this.clearTimers(['simulate']);
      this.observations.clear('bootstrapping');
      this._state = 'bootstrapping';
      try {
        await this.sendDeregister(this.options.registrationTimeoutMs);
      } catch {
        // the server is gone: bootstrap anyway
      }
      if (this._state !== 'bootstrapping') return this.whenRegistered();
    }
    const fromStopped = this._state === 'stopped' || this._state === 'failed';
    this.bootstrapAttempts = 0;
    this.attempts = 0;
    this.beginBootstrap('bootstrap() called');
    if (fromStopped) this.startSimulation();
    return this.whenRegistered();
  }

  /** The LwM2M server account in use: its URI, security mode (0 PSK, 3 NoSec) and Short Server ID. */
  get serverAccount(): { uri: string; securityMode: number; shortServerId: number } {
    const security = this.target.psk !== undefined || this.target.uri.startsWith('coaps:') ? 0 : 3;
    const ssid = Number(this.get(`/1/${this.serverInstanceId}/0`) ?? this.options.shortServerId);
    return { uri: this.target.uri, securityMode: security, shortServerId: ssid };
  }

  /** Resolves when registered (at once if already). */
  whenRegistered(): Promise<void> {
    if (this._state === 'registered') return Promise.resolve();
    if (this._state === 'stopped' || this._state === 'failed') {
      return Promise.reject(new Error(`${this.endpointName} is ${this._state}`));
    }
    return new Promise((resolve, reject) => this.waiters.push({ resolve, reject }));
  }

  /**
   * De-registers (unless `deregister: false`), drops observations, stops every timer and closes the
   * socket. Nothing of this client keeps running afterwards.
   */
  async stop(options: { deregister?: boolean; timeoutMs?: number } = {}): Promise<void> {
    if (this._state === 'stopped') return;
    const wasRegistered = this._state === 'registered' && this.location !== undefined;
    this._state = 'stopped';
    this.bootstrapSession++;
    this.clearTimers();
    this.observations.clear('client stopped');
    this.settleWaiters(new Error(`${this.endpointName} stopped`));
    if (wasRegistered && options.deregister !== false && this.endpoint !== undefined) {
      try {
        await this.sendDeregister(options.timeoutMs ?? 5000);
      } catch {
        // the server is gone: nothing more to do
      }
    }
    this.location = undefined;
    await this.closeEndpoint();
  }

  /** Sends a registration Update now (e.g. after changing objects). */
  async update(): Promise<void> {
    await this.doUpdate();
  }

  /**
   * Sets a value as the device itself (sensor reading, local change): a resource (`/3303/0/5700`), a
   * resource instance (`/3/0/7/1`) or several resources of an instance (`/3303/0` with `{ 5700: 21 }`).
   * Observers are notified. Throws for paths or values the model does not allow.
   */
  set(pathText: string, value: unknown): void {
    const path = LwM2mPath.parse(pathText);
    const instance = this.instanceAt(path);
    if (path.level === 2) {
      if (typeof value !== 'object' || value === null) throw new ValueError(`${path} expects { resourceId: value }`);
      const entries = value instanceof Map ? [...value.entries()] : Object.entries(value);
      for (const [key, resourceValue] of entries) {
        const id = /^\d+$/.test(String(key))
          ? Number(key)
          : findResourceByName(this.objects.get(instance.objectId)!.definition, String(key))?.id;
        if (id === undefined) throw new ValueError(`${path} has no resource "${String(key)}"`);
        this.set(`${path}/${id}`, resourceValue);
      }
      return;
    }
    if (path.level < 2)
      throw new ValueError(`set() needs an instance, resource or resource instance path, not ${path}`);
    const slot = this.slotFor(instance, path.resourceId!, true);
    if (slot === undefined) throw new ValueError(`object ${instance.objectId} has no resource ${path.resourceId}`);
    let changed: boolean;
    if (path.level === 4) {
      if (!slot.def.multiple) throw new ValueError(`${path.parent()} is a single resource`);
      const current = new Map(slot.instances ?? []);
      current.set(
        path.resourceInstanceId!,
        coerceContent({ ...slot.def, multiple: false }, value, path) as ResourceValue,
      );
      changed = slot.store(current);
    } else changed = slot.store(coerceContent(slot.def, value, path));
    if (changed) this.observations.changed(path);
  }

  /**
   * A value as msg data (see lib/model toPlain): a resource's value, `{ id: value }` for a multiple
   * resource, `{ byName, byId }` for an instance, `{ id: instance }` for an object. Undefined when absent.
   */
  get(pathText: string): unknown {
    const path = LwM2mPath.parse(pathText);
    let node: LwM2mNode | undefined;
    try {
      node = this.localNode(path);
    } catch {
      return undefined;
    }
    return node === undefined ? undefined : toPlain(node, path, this.model);
  }

  /** Adds an object (before or after start; a registered client sends an Update). */
  addObject(choice: number | string | ObjectChoice): void {
    const c = parseObjectChoice(choice);
    if (this.objects.has(c.id)) {
      const count = typeof c.instances === 'number' ? c.instances : undefined;
      if (count !== undefined) while (this.instanceIds(c.id).length < count) this.addInstance(c.id);
      return;
    }
    const { definition, announced } = this.chooseDefinition(c.id, c.version);
    const object = new ClientObject(definition, announced);
    this.objects.set(c.id, object);
    this.implementations.set(c.id, c.implementation ?? this.builtin(definition));
    const instances = c.instances ?? 1;
    if (typeof instances === 'number') {
      for (let i = 0; i < instances; i++) this.addInstance(c.id, i);
    } else if (Array.isArray(instances)) {
      instances.forEach((spec, i) => this.addInstance(c.id, i, spec));
    } else {
      for (const [id, spec] of Object.entries(instances)) this.addInstance(c.id, Number(id), spec);
    }
    this.markObjectsChanged();
  }

  /** Adds an instance (next free id by default) with the built-in resources, overridden by `resources`. */
  addInstance(objectId: number, instanceId?: number, resources?: InstanceSpec): number {
    let object = this.objects.get(objectId);
    if (object === undefined) {
      this.addObject({ id: objectId, instances: 0 });
      object = this.objects.get(objectId)!;
    }
    const id = instanceId ?? object.freeInstanceId();
    if (object.instances.has(id)) throw new ClientError('4.00', `/${objectId}/${id} already exists`);
    if (!object.definition.multiple && object.instances.size > 0) {
      throw new ClientError('4.00', `object ${objectId} is single-instance`);
    }
    const spec = { ...this.implementations.get(objectId)!.instance(id), ...(resources ?? {}) };
    object.instances.set(id, this.buildInstance(object, id, spec));
    this.markObjectsChanged();
    this.observations.changed(new LwM2mPath(objectId));
    return id;
  }

  /** Removes an instance (a registered client sends an Update). */
  removeInstance(objectId: number, instanceId: number): boolean {
    const object = this.objects.get(objectId);
    if (object === undefined || !object.instances.delete(instanceId)) return false;
    this.markObjectsChanged();
    this.observations.changed(new LwM2mPath(objectId, instanceId));
    return true;
  }

  /** One simulated change of every simulated value; returns how many instances changed. */
  changeValues(): number {
    let count = 0;
    for (const [objectId, impl] of this.implementations) {
      if (impl.simulate === undefined) continue;
      for (const id of this.instanceIds(objectId)) {
        impl.simulate(id);
        count++;
      }
    }
    return count;
  }

  /**
   * Send (LwM2M 1.1 Information Reporting): POST /dp with the values at `paths` in SenML CBOR (112,
   * default) or SenML JSON (110). Resolves with the server's response.
   */
  async send(paths: string[], options: { format?: number; timeoutMs?: number } = {}): Promise<IncomingResponse> {
    if (this.options.lwm2mVersion === '1.0') throw new Error('Send needs LwM2M 1.1 or later');
    if (this.get(`/1/${this.serverInstanceId}/23`) === true)
      throw new Error('Send is muted (/1/x/23 Mute Send is true)');
    const endpoint = this.requireEndpoint();
    const format = options.format ?? ContentFormat.SENML_CBOR;
    const nodes = new Map<string, LwM2mNode>();
    for (const text of paths) {
      const path = LwM2mPath.parse(text);
      nodes.set(path.toString(), this.readNode(path));
    }
    const payload = encodeNodes(nodes, format, this.model);
    this.counters.sends++;
    this.awake();
    return endpoint.request(this.serverPeer!, {
      method: 'POST',
      pathSegments: ['dp'],
      contentFormat: format,
      payload,
      timeoutMs: options.timeoutMs,
    });
  }

  /** Simulated reboot (Device /3/0/4 does this): silent, observations gone, registers again. */
  reboot(whileDown?: () => 'stay-down' | void): void {
    if (this._state === 'stopped' || this._state === 'offline' || this._state === 'bootstrapping') return;
    this.clearTimers(['simulate']);
    this.observations.clear('device rebooted');
    this._state = 'rebooting';
    this.location = undefined;
    if (this.transport !== undefined) this.transport.receiving = false;
    this.emit('reboot');
    this.setTimer('reboot', this.options.rebootDelayMs, () => {
      if (this._state !== 'rebooting') return;
      let outcome: 'stay-down' | void = undefined;
      try {
        outcome = whileDown?.();
      } catch (err) {
        this.emitError(err as Error);
      }
      if (outcome === 'stay-down') {
        this._state = 'offline';
        if (this.transport !== undefined) this.transport.sending = false;
        return;
      }
      if (this.transport !== undefined) this.transport.receiving = true;
      this._state = 'registering';
      this.attempts = 0;
      this.register();
    });
  }

  // ================================================================ registration

  /** Opens the socket to `target` (the LwM2M server in use, or the Bootstrap-Server). */
  private async open(target: { uri: string; psk?: PskCredentials } = this.target): Promise<void> {
    const psk = target.psk;
    const server = await resolveServer(target.uri, this.options.transport !== undefined || psk !== undefined);
    if (psk && !target.uri.startsWith('coaps:'))
      throw new RangeError(`server URI "${target.uri}": a PSK needs a coaps:// URI`);
    this.serverPeer = server;
    this.endpointUri = target.uri;
    const bindAddress = this.options.bindAddress ?? (isIP(server.address) === 6 ? '::' : '0.0.0.0');
    const local = { address: bindAddress, port: this.options.bindPort };
    const inner = this.options.transport?.(local) ?? (psk ? this.dtlsTransport(server, psk) : new UdpTransport(local));
    const coap = { maxBodySize: 16 * 1024 * 1024, ...this.options.coap };
    const endpoint = new CoapEndpoint((this.transport = new NotifierTransport(inner)), coap);
    endpoint.onError = (err) => this.emitError(err instanceof Error ? err : new Error(String(err)));
    // the server answered a notification (CON or NON) with RST: it does not want that observation any more
    endpoint.onNotificationReset = (peer, token) =>
      this.observations.remove(observationKey(peer.key, token), 'reset by the server');
    endpoint.setRequestHandler((request) => this.handleRequest(request));
    this.endpoint = endpoint;
    try {
      await endpoint.start();
    } catch (err) {
      if (this.endpoint === endpoint) {
        this.endpoint = undefined;
        this.transport = undefined;
        this.endpointUri = undefined;
      }
      await endpoint.close().catch(() => undefined);
      throw err;
    }
  }

  private async closeEndpoint(): Promise<void> {
    const endpoint = this.endpoint;
    this.endpoint = undefined;
    this.transport = undefined;
    this.endpointUri = undefined;
    if (endpoint !== undefined) await endpoint.close().catch(() => undefined);
  }

  private startSimulation(): void {
    if (this.options.simulateEveryMs > 0) {
      this.setTimer('simulate', this.options.simulateEveryMs, () => this.simulateTick(), true);
    }
  }

  private register(): void {
    // after a bootstrap the socket to the new server is opened by the Register itself
    if (this.registerInFlight || (this.endpoint === undefined && this.options.bootstrapUri === undefined)) return;
    this.clearTimer('update');
    this.clearTimer('retry');
    this.registerInFlight = true;
    this.doRegister().finally(() => (this.registerInFlight = false));
  }

  private async doRegister(): Promise<void> {
    const o = this.options;
    if (this.endpoint === undefined) {
      try {
        await this.open();
      } catch (err) {
        if (this._state === 'registering') this.registrationFailed(err as Error);
        return;
      }
      if (this._state !== 'registering') return;
    }
    const query = [`ep=${this.endpointName}`, `lt=${this.currentLifetime()}`, `lwm2m=${o.lwm2mVersion}`];
    const binding = this.currentBinding();
    if (o.lwm2mVersion === '1.0') query.push(`b=${o.queueMode && !binding.includes('Q') ? binding + 'Q' : binding}`);
    else {
      query.push(`b=${binding}`);
      if (o.queueMode) query.push('Q');
    }
    const payload = Buffer.from(this.registrationPayload(), 'utf8');
    this.objectsChanged = false;
    this.awake();
    let response: IncomingResponse;
    try {
      response = await this.requireEndpoint().request(this.serverPeer!, {
        method: 'POST',
        pathSegments: ['rd'],
        query,
        contentFormat: ContentFormat.LINK_FORMAT,
        payload,
        timeoutMs: o.registrationTimeoutMs,
      });
    } catch (err) {
      this.registrationFailed(err as Error);
      return;
    }
    if (this._state !== 'registering') return;
    if (response.code !== '2.01') {
      const reason = response.payload.length > 0 ? `: ${response.payload.toString('utf8')}` : '';
      this.registrationFailed(new ClientError(response.code, `Register refused with ${response.code}${reason}`));
      return;
    }
    this.location = response.options
      .filter((option) => option.name === 'Location-Path')
      .map((option) => option.value.toString('utf8'));
    if (this.location.length === 0) this.location = ['rd'];
    this._state = 'registered';
    this.attempts = 0;
    this.registeredLifetime = Number(query[1].slice(3));
    this.registeredBinding = binding;
    this.counters.registrations++;
    const reRegistration = this.hasRegistered;
    this.hasRegistered = true;
    this.scheduleUpdate();
    this.awake();
    this.emit('registered', { location: this.registrationLocation!, reRegistration });
    this.settleWaiters();
    if (this.objectsChanged) this.deferUpdate();
  }

  private dtlsTransport(server: PeerAddress, psk: PskCredentials): DtlsClientTransport {
    const transport = new DtlsClientTransport(server, psk);
    transport.onError = (err) => this.emitError(err);
    return transport;
  }

  private registrationFailed(err: Error): void {
    if (this._state !== 'registering') return;
    // No answer over DTLS: the server may have lost our session (a restart); a new handshake is the cure.
    const inner = this.transport?.inner;
    if (inner instanceof DtlsClientTransport && err instanceof CoapRequestError && err.reason === 'timeout')
      inner.newSession();
    this.counters.registrationFailures++;
    this.attempts++;
    if (this.listenerCount('registrationFailed') > 0) this.emit('registrationFailed', err);
    if (this.attempts >= this.retry.maxAttempts) {
      // LwM2M 1.1 §6.1: after the registration retry sequence, bootstrap (unless /1/x/16 says not to)
      if (this.options.bootstrapUri !== undefined && this.get(`/1/${this.serverInstanceId}/16`) !== false) {
        this.bootstrapAttempts = 0;
        this.beginBootstrap(`registration failed: ${err.message}`);
        return;
      }
      this._state = 'failed';
      this.settleWaiters(new Error(`${this.endpointName}: registration failed: ${err.message}`));
      return;
    }
    const base = Math.min(this.retry.maxDelayMs, this.retry.initialDelayMs * 2 ** (this.attempts - 1));
    const delay = base * (0.5 + this.options.random() * 0.5);
    this.setTimer('retry', delay, () => this.register());
  }

  private scheduleUpdate(): void {
    const lifetime = this.registeredLifetime;
    const margin = Math.max(lifetime * 0.1, Math.min(this.options.updateMarginSeconds, lifetime * 0.5));
    this.setTimer('update', (lifetime - margin) * 1000, () => void this.doUpdate());
  }

  private deferUpdate(): void {
    if (this._state !== 'registered' || this.timers.has('deferredUpdate')) return;
    this.setTimer('deferredUpdate', 0, () => void this.doUpdate());
  }

  private async doUpdate(): Promise<void> {
    if (this._state !== 'registered' || this.location === undefined) return;
    if (this.updateInFlight) {
      this.updateAgain = true;
      return;
    }
    this.updateInFlight = true;
    this.clearTimer('update');
    this.awake();
    const lifetime = this.currentLifetime();
    const binding = this.currentBinding();
    const query: string[] = [];
    if (lifetime !== this.registeredLifetime) query.push(`lt=${lifetime}`);
    if (binding !== this.registeredBinding) query.push(`b=${binding}`);
    const withObjects = this.objectsChanged;
    this.objectsChanged = false;
    const location = this.location;
    let response: IncomingResponse | undefined;
    try {
      response = await this.requireEndpoint().request(this.serverPeer!, {
        method: 'POST',
        pathSegments: location,
        query,
        contentFormat: withObjects ? ContentFormat.LINK_FORMAT : undefined,
        payload: withObjects ? Buffer.from(this.registrationPayload(), 'utf8') : undefined,
        timeoutMs: this.options.registrationTimeoutMs,
      });
    } catch {
      response = undefined;
    } finally {
      this.updateInFlight = false;
    }
    if (this._state !== 'registered' || this.location !== location) return;
    if (response?.code === '2.04') {
      this.registeredLifetime = lifetime;
      this.registeredBinding = binding;
      this.counters.updates++;
      this.scheduleUpdate();
      this.awake();
      this.emit('updated', { location: this.registrationLocation! });
      if (this.updateAgain) {
        this.updateAgain = false;
        void this.doUpdate();
      }
      return;
    }
    // 4.04: the server forgot us; anything else (or no answer): register again
    this.updateAgain = false;
    if (withObjects) this.objectsChanged = true;
    this.counters.reRegistrations++;
    this.observations.clear('registration lost');
    this.location = undefined;
    this._state = 'registering';
    this.attempts = 0;
    this.register();
  }

  private async sendDeregister(timeoutMs: number | undefined): Promise<void> {
    const location = this.location;
    const endpoint = this.endpoint;
    if (location === undefined || endpoint === undefined) return;
    this.location = undefined;
    const response = await endpoint.request(this.serverPeer!, {
      method: 'DELETE',
      pathSegments: location,
      timeoutMs,
    });
    this.counters.deregistrations++;
    if (response.code === '2.02' || response.code === '4.04') this.emit('deregistered');
  }

  private async disable(seconds: number): Promise<void> {
    if (this._state !== 'registered') return;
    this.clearTimers(['simulate']);
    this.observations.clear('disabled');
    this._state = 'disabled';
    try {
      await this.sendDeregister(this.options.registrationTimeoutMs);
    } catch {
      // gone anyway
    }
    if (this._state !== 'disabled') return;
    this.setTimer('disable', seconds * 1000, () => {
      if (this._state !== 'disabled') return;
      this._state = 'registering';
      this.attempts = 0;
      this.register();
    });
  }

  private currentLifetime(): number {
    const value = Number(this.get(`/1/${this.serverInstanceId}/1`));
    return Number.isInteger(value) && value > 0 ? value : this.options.lifetime;
  }

  private currentBinding(): string {
    const value = this.get(`/1/${this.serverInstanceId}/7`);
    return typeof value === 'string' && value !== '' ? value : this.options.binding;
  }

  private registrationPayload(): string {
    return registrationLinks(this.objects.values(), {
      lwm2mVersion: this.options.lwm2mVersion,
      rootPath: normaliseRoot(this.options.rootPath),
      contentFormats: this.announcedFormats,
    });
  }

  private markObjectsChanged(): void {
    this.objectsChanged = true;
    if (this._state === 'registered') this.deferUpdate();
  }

  private settleWaiters(err?: Error): void {
    const waiters = this.waiters;
    this.waiters = [];
    for (const w of waiters) {
      if (err === undefined) w.resolve();
      else w.reject(err);
    }
  }

  /** Queue mode: reachable now and for queueAwakeMs after the last exchange, then asleep. */
  private awake(): void {
    if (!this.options.queueMode || this.transport === undefined) return;
    if (!this.transport.receiving && (this._state === 'registered' || this._state === 'registering')) {
      this.transport.receiving = true;
      this.emit('wake');
    }
    this.setTimer('sleep', this.options.queueAwakeMs, () => {
      if (this.transport === undefined || this._state !== 'registered') return;
      this.transport.receiving = false;
      this.emit('sleep');
    });
  }

  // ================================================================ bootstrap (LwM2M Core §6.1, client-initiated)

  /** Security / Server instances at construction: the Bootstrap-Server account, and the server account if given. */
  private initialAccounts(explicitServer: boolean): void {
    const o = this.options;
    const security = this.objects.get(0)!;
    const server = this.objects.get(1)!;
    security.instances.clear();
    const bs = o.bootstrapPsk;
    // the Bootstrap-Server account: Bootstrap-Server true, no Short Server ID
    this.addInstance(0, 0, {
      0: o.bootstrapUri,
      1: true,
      2: bs ? 0 : 3,
      3: bs ? Buffer.from(bs.identity, 'utf8') : EMPTY_BUFFER,
      5: bs ? bs.key : EMPTY_BUFFER,
      10: undefined,
    });
    if (explicitServer) {
      const psk = o.psk;
      this.addInstance(0, 1, {
        0: o.serverUri,
        1: false,
        2: psk ? 0 : 3,
        3: psk ? Buffer.from(psk.identity, 'utf8') : EMPTY_BUFFER,
        5: psk ? psk.key : EMPTY_BUFFER,
        10: o.shortServerId,
      });
    } else server.instances.clear();
  }

  private useAccount(account: ServerAccount): void {
    this.target = { uri: account.uri, psk: account.psk };
    this.serverInstanceId = account.serverInstance;
  }

  private beginBootstrap(reason: string): void {
    this.clearTimers(['simulate']);
    this.observations.clear('bootstrapping');
    this.location = undefined;
    this._state = 'bootstrapping';
    void this.runBootstrap(++this.bootstrapSession, reason);
  }

  /** One bootstrap attempt: socket to the Bootstrap-Server, Bootstrap-Pack (1.2) or Bootstrap-Request. */
  private async runBootstrap(session: number, reason: string): Promise<void> {
    const o = this.options;
    const uri = o.bootstrapUri!;
    const stale = (): boolean => this.bootstrapSession !== session || this._state !== 'bootstrapping';
    this.bootstrapAttempts++;
    this.emit('bootstrapping', { uri, reason, attempt: this.bootstrapAttempts });
    try {
      await this.closeEndpoint();
      if (stale()) return;
      await this.open({ uri, psk: o.bootstrapPsk });
      if (stale()) {
        if (this._state === 'stopped' || this._state === 'failed') await this.closeEndpoint();
        return;
      }
      const endpoint = this.requireEndpoint();
      this.armBootstrapTimer(session);
      if (o.lwm2mVersion === '1.2' && (await this.bootstrapPack(endpoint, stale))) return;
      if (stale()) return;
      const query = [`ep=${this.endpointName}`];
      // 1.1+: the Preferred Content Format for the Bootstrap-Server's writes (LwM2M 1.1 Transport §6.1)
      if (o.lwm2mVersion !== '1.0') query.push(`pct=${this.multiFormat}`);
      const response = await endpoint.request(this.serverPeer!, {
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
    const response = await endpoint.request(this.serverPeer!, {
      method: 'GET',
      pathSegments: ['bspack'],
      query: [`ep=${this.endpointName}`],
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
    const found = findServerAccount(this.objects.get(0), this.objects.get(1));
    if ('error' in found) throw new Error(`Bootstrap-Pack: ${found.error}`);
    this.finishBootstrap(found.account);
    return true;
  }

  private armBootstrapTimer(session: number = this.bootstrapSession): void {
    const ms = this.options.bootstrapTimeoutMs;
    this.setTimer('bootstrap', ms, () => {
      if (this.bootstrapSession !== session || this._state !== 'bootstrapping') return;
      this.bootstrapFailed(new Error(`bootstrap did not finish within ${ms} ms of the last Bootstrap-Server request`));
    });
  }

  private bootstrapFailed(err: Error): void {
    this.clearTimer('bootstrap');
    this.bootstrapSession++;
    this.counters.bootstrapFailures++;
    if (this.listenerCount('bootstrapFailed') > 0) this.emit('bootstrapFailed', err);
    const retry = this.bootstrapRetryPolicy;
    if (this.bootstrapAttempts >= retry.maxAttempts) {
      this._state = 'failed';
      void this.closeEndpoint();
      this.settleWaiters(new Error(`${this.endpointName}: bootstrap failed: ${err.message}`));
      return;
    }
    const base = Math.min(retry.maxDelayMs, retry.initialDelayMs * 2 ** (this.bootstrapAttempts - 1));
    const delay = base * (0.5 + this.options.random() * 0.5);
    this.setTimer('bootstrapRetry', delay, () => {
      if (this._state === 'bootstrapping') void this.runBootstrap(++this.bootstrapSession, `retry: ${err.message}`);
    });
  }

  /** Bootstrap done: (after the 2.04 went out) close the bootstrap socket and register with the new server. */
  private finishBootstrap(account: ServerAccount): void {
    this.clearTimer('bootstrap');
    this.clearTimer('bootstrapRetry');
    this.bootstrapSession++;
    this.counters.bootstraps++;
    this.useAccount(account);
    this._state = 'registering';
    this.attempts = 0;
    this.setTimer('bootstrapDone', 0, () => {
      if (this._state !== 'registering') return;
      this.emit('bootstrapped', {
        serverUri: account.uri,
        securityMode: account.securityMode,
        shortServerId: account.shortServerId,
      });
      void this.closeEndpoint().then(() => {
        if (this._state === 'registering' && this.endpoint === undefined) this.register();
      });
    });
  }

  /** A request of the Bootstrap-Server (the bootstrap interface: Discover, Read, Write, Delete, Finish). */
  private async bootstrapRequest(request: IncomingRequest): Promise<OutgoingResponse> {
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
    const found = findServerAccount(this.objects.get(0), this.objects.get(1));
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
    const node = this.readNode(path);
    const format = this.responseFormat(node, accept);
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
      } else format = this.multiFormat;
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
    let object = this.objects.get(objectId);
    if (object === undefined) {
      if (this.model.versionsOf(objectId).length === 0) throw new ClientError('4.04', `object ${objectId} not found`);
      this.addObject({ id: objectId, instances: 0 });
      object = this.objects.get(objectId)!;
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
        const slot = this.slotFor(instance, path.resourceId!, true)!;
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
      const slot = this.slotFor(instance, resource.id, true)!;
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
    const spec = object.id === 0 ? {} : this.implementations.get(object.id)!.instance(instanceId);
    object.instances.set(instanceId, this.buildInstance(object, instanceId, spec));
    this.markObjectsChanged();
    return object.instances.get(instanceId)!;
  }

  /**
   * Bootstrap-Delete (LwM2M 1.1 §6.1.7.5): `/` deletes every instance but the Bootstrap-Server account
   * and the Device object's; `/0` spares the Bootstrap-Server account; deleting that account or the
   * Device instance by name is refused (4.00).
   */
  private bootstrapDelete(path: LwM2mPath): OutgoingResponse {
    if (path.level === 0) {
      for (const id of this.objectIds()) if (id !== 3) this.deleteBootstrapInstances(id);
      return { code: '2.02' };
    }
    if (path.level > 2)
      throw new ClientError('4.00', `Bootstrap-Delete targets /, an object or an instance, not ${path}`);
    if (path.objectId === 3) throw new ClientError('4.00', 'the Device object cannot be deleted');
    const object = this.objects.get(path.objectId!);
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
      this.markObjectsChanged();
    }
    return { code: '2.02' };
  }

  private deleteBootstrapInstances(objectId: number): void {
    const object = this.objects.get(objectId);
    if (object === undefined) return;
    for (const instance of [...object.instances.values()]) {
      if (objectId === 0 && isBootstrapAccount(instance)) continue;
      object.instances.delete(instance.id);
      this.markObjectsChanged();
    }
  }

  // ================================================================ device management

  private async handleRequest(request: IncomingRequest): Promise<OutgoingResponse> {
    this.counters.requests++;
    this.awake();
    try {
      if (this._state === 'bootstrapping') return await this.bootstrapRequest(request);
      return await this.dispatch(request);
    } catch (err) {
      return this.errorResponse(err);
    }
  }

  private errorResponse(err: unknown): OutgoingResponse {
    if (err instanceof ClientError) return { code: err.code, payload: diagnostic(err.message) };
    if (err instanceof ContentCodecError) return { code: err.coapCode, payload: diagnostic(err.message) };
    if (err instanceof ValueError || err instanceof InvalidPathError) {
      return { code: '4.00', payload: diagnostic(err.message) };
    }
    this.emitError(err instanceof Error ? err : new Error(String(err)));
    return { code: '5.00', payload: diagnostic(String((err as Error)?.message ?? err)) };
  }

  private async dispatch(request: IncomingRequest): Promise<OutgoingResponse> {
    const segments = stripRoot(request.pathSegments, this.options.rootPath);
    if (segments === undefined) return { code: '4.04' };
    let path: LwM2mPath;
    try {
      path = LwM2mPath.fromSegments(segments);
    } catch {
      return { code: '4.04' };
    }
    if (path.objectId !== undefined && PROTECTED.has(path.objectId)) {
      return { code: '4.01', payload: diagnostic(`object ${path.objectId} is not accessible to a server`) };
    }
    if (request.method === 'FETCH' || request.method === 'iPATCH') {
      if (this.options.lwm2mVersion === '1.0' || path.level !== 0) {
        throw new ClientError('4.05', `${request.method} is not allowed on ${path}`);
      }
      if (request.method === 'iPATCH') return this.writeComposite(request);
      if (request.observe === 0) throw new ClientError('4.05', 'Observe-Composite is not supported');
      return this.readComposite(request);
    }
    switch (request.method) {
      case 'GET':
        if (request.accept === ContentFormat.LINK_FORMAT) return this.discover(path);
        if (request.observe === 0) return this.observe(request, path);
        if (request.observe === 1) {
          const key = observationKey(request.peer.key, request.token);
          this.observations.remove(key, 'cancelled by the server');
        }
        return this.read(path, request.accept);
      case 'PUT':
        if (request.query.length > 0) return this.writeAttributes(path, request.query);
        return this.write(request, path, 'replace');
      case 'POST':
        if (path.level === 1) return this.create(request, path);
        if (path.level === 2) return this.write(request, path, 'update');
        if (path.level === 3) {
          const slot = this.existingSlot(path);
          if (slot.executable) return this.execute(request, path, slot);
          if (slot.def.multiple) return this.write(request, path, 'update');
          throw new ClientError('4.05', `${path} is not executable`);
        }
        throw new ClientError('4.05', `POST is not allowed on ${path}`);
      case 'DELETE':
        return this.delete(path);
      default:
        throw new ClientError('4.05', `${request.method} is not supported`);
    }
  }

  private read(path: LwM2mPath, accept: number | undefined): OutgoingResponse {
    if (path.level === 0) throw new ClientError('4.05', 'Read on / is not a Device Management operation');
    const node = this.readNode(path);
    const format = this.responseFormat(node, accept);
    return { code: '2.05', contentFormat: format, payload: encodeNode(node, format, path, this.model) };
  }

  private observe(request: IncomingRequest, path: LwM2mPath): OutgoingResponse {
    const response = this.read(path, request.accept);
    const node = this.readNode(path);
    const key = observationKey(request.peer.key, request.token);
    const observation = new Observation(
      key,
      request.peer,
      Buffer.from(request.token),
      path,
      response.contentFormat!,
      node,
      performance.now(),
    );
    this.observations.add(observation);
    this.emit('observe', { path: path.toString(), token: request.token.toString('hex'), format: observation.format });
    return { ...response, options: [{ name: 'Observe', value: encodeUint(this.nextSequence()) }] };
  }

  private discover(path: LwM2mPath): OutgoingResponse {
    if (path.level === 0 || path.level === 4) {
      throw new ClientError('4.00', `Discover needs an object, instance or resource path, not ${path}`);
    }
    const object = this.objects.get(path.objectId!);
    if (object === undefined) throw new ClientError('4.04', `${path} not found`);
    if (path.level >= 2) this.existingInstance(path);
    if (path.level === 3) this.existingSlot(path);
    const text = discoverLinks(object, path, this.attributes, this.options.lwm2mVersion);
    return { code: '2.05', contentFormat: ContentFormat.LINK_FORMAT, payload: Buffer.from(text, 'utf8') };
  }

  private async write(
    request: IncomingRequest,
    path: LwM2mPath,
    mode: 'replace' | 'update',
  ): Promise<OutgoingResponse> {
    if (path.level < 2) throw new ClientError('4.05', `Write is not allowed on ${path}`);
    const instance = this.existingInstance(path);
    if (path.level >= 3) {
      const slot = this.existingSlot(path);
      if (!slot.writable) throw new ClientError('4.05', `${path} is not writable`);
      if (path.level === 4 && !slot.def.multiple) throw new ClientError('4.04', `${path} not found`);
    }
    const format = this.requestFormat(request, path);
    const node = decodeNode(request.payload, format, path, this.model);
    const changes: Array<{ slot: ResourceSlot; resource: LwM2mResource; path: LwM2mPath }> = [];
    if (node.kind === 'instance') {
      for (const resource of node.resources.values()) {
        const slot = this.slotFor(instance, resource.id, true);
        if (slot === undefined) throw new ClientError('4.04', `${path}/${resource.id} not found`);
        if (!slot.writable) throw new ClientError('4.05', `${path}/${resource.id} is not writable`);
        changes.push({ slot, resource, path: path.append(resource.id) });
      }
    } else if (node.kind === 'resource' || node.kind === 'multipleResource') {
      changes.push({ slot: this.existingSlot(path), resource: node, path });
    } else if (node.kind === 'resourceInstance') {
      const slot = this.existingSlot(path);
      const instances = new Map(slot.instances ?? []);
      instances.set(node.id, node.value);
      changes.push({
        slot,
        resource: { kind: 'multipleResource', id: slot.id, type: slot.def.type, instances },
        path,
      });
    } else throw new ClientError('4.00', `cannot write a ${node.kind} at ${path}`);

    const planned = changes.map((change) => ({
      ...change,
      content: contentOf(
        change.slot,
        change.resource,
        change.path,
        mode === 'update' && node.kind !== 'resourceInstance',
      ),
    }));
    await this.applyWrites(planned, mode);
    return { code: '2.04' };
  }

  /** Stores checked writes one by one, through each resource's write handler. */
  private async applyWrites(
    planned: Array<{ slot: ResourceSlot; path: LwM2mPath; content: ResourceContent }>,
    mode: 'replace' | 'update',
  ): Promise<void> {
    for (const { slot, path, content } of planned) {
      const keep = slot.write === undefined ? undefined : await slot.write(content, { path: path.toString(), mode });
      const changed = keep === false ? true : slot.store(content);
      if (changed) this.observations.changed(path);
      this.emit('write', { path: path.toString(), value: this.get(path.toString()), mode });
    }
  }

  /** Read-Composite (FETCH /): the values at the paths listed in the payload, in SenML. */
  private readComposite(request: IncomingRequest): OutgoingResponse {
    const format = this.compositeFormat(request.contentFormat, '4.15');
    const accept = request.accept === undefined ? format : this.compositeFormat(request.accept, '4.06');
    const nodes = new Map<string, LwM2mNode>();
    for (const path of decodePaths(request.payload, format)) {
      if (path.objectId !== undefined && PROTECTED.has(path.objectId)) throw new ClientError('4.01', `${path}`);
      try {
        nodes.set(path.toString(), this.readNode(path));
      } catch (err) {
        if (!(err instanceof ClientError && err.code === '4.04')) throw err;
      }
    }
    return { code: '2.05', contentFormat: accept, payload: encodeNodes(nodes, accept, this.model) };
  }

  /** Write-Composite (iPATCH /): resources and resource instances of several objects at once. */
  private async writeComposite(request: IncomingRequest): Promise<OutgoingResponse> {
    const format = this.compositeFormat(request.contentFormat, '4.15');
    const planned: Array<{ slot: ResourceSlot; path: LwM2mPath; content: ResourceContent }> = [];
    for (const [text, node] of decodeNodes(request.payload, format, this.model)) {
      const path = LwM2mPath.parse(text);
      if (path.objectId !== undefined && PROTECTED.has(path.objectId)) throw new ClientError('4.01', `${path}`);
      if (path.level < 3) throw new ClientError('4.00', `Write-Composite names resources, not ${path}`);
      const slot = this.existingSlot(path);
      if (!slot.writable) throw new ClientError('4.05', `${path} is not writable`);
      if (node.kind === 'resourceInstance') {
        if (!slot.def.multiple) throw new ClientError('4.00', `${path.parent()} is a single resource`);
        const instances = new Map(slot.instances ?? []);
        instances.set(node.id, node.value);
        planned.push({ slot, path: path.parent(), content: instances });
      } else if (node.kind === 'resource' || node.kind === 'multipleResource') {
        planned.push({ slot, path, content: contentOf(slot, node, path, false) });
      } else throw new ClientError('4.00', `Write-Composite names resources, not ${path}`);
    }
    await this.applyWrites(planned, 'replace');
    return { code: '2.04' };
  }

  private compositeFormat(format: number | undefined, code: '4.06' | '4.15'): number {
    const chosen = format ?? ContentFormat.SENML_CBOR;
    if (
      (chosen !== ContentFormat.SENML_JSON && chosen !== ContentFormat.SENML_CBOR) ||
      !this.acceptedFormats.has(chosen)
    ) {
      throw new ClientError(code, `composite operations use SenML JSON or CBOR, not ${formatName(chosen)}`);
    }
    return chosen;
  }

  private async execute(request: IncomingRequest, path: LwM2mPath, slot: ResourceSlot): Promise<OutgoingResponse> {
    const args = request.payload.toString('utf8');
    if (args !== '' && !/^\d(='[^']*')?(,\d(='[^']*')?)*$/.test(args)) {
      throw new ClientError('4.00', `invalid Execute arguments "${args}"`);
    }
    await slot.execute?.(args, { path: path.toString() });
    this.emit('execute', { path: path.toString(), args });
    return { code: '2.04' };
  }

  private create(request: IncomingRequest, path: LwM2mPath): OutgoingResponse {
    const object = this.objects.get(path.objectId!);
    if (object === undefined) throw new ClientError('4.04', `${path} not found`);
    const impl = this.implementations.get(object.id)!;
    if (!(impl.creatable ?? object.definition.multiple) || !object.definition.multiple) {
      throw new ClientError('4.05', `instances of ${path} cannot be created`);
    }
    const created: LwM2mObjectInstance[] = [];
    if (request.payload.length === 0) {
      created.push({ kind: 'instance', id: object.freeInstanceId(), resources: new Map() });
    } else {
      const format = this.requestFormat(request, path);
      let node: LwM2mNode;
      try {
        node = decodeNode(request.payload, format, path, this.model);
      } catch (err) {
        // TLV without an instance wrapper: the resources of one new instance whose id we choose
        const id = object.freeInstanceId();
        try {
          node = decodeNode(request.payload, format, path.append(id), this.model);
        } catch {
          throw err;
        }
      }
      if (node.kind === 'object') created.push(...node.instances.values());
      else if (node.kind === 'instance') created.push(node);
      else throw new ClientError('4.00', `Create needs instance content, got a ${node.kind}`);
    }
    for (const instance of created) {
      if (object.instances.has(instance.id)) throw new ClientError('4.00', `${path}/${instance.id} already exists`);
      for (const id of instance.resources.keys()) {
        if (object.definition.resources[id] === undefined) throw new ClientError('4.04', `${path}/x/${id} not found`);
      }
    }
    for (const instance of created) {
      const spec: InstanceSpec = { ...impl.instance(instance.id) };
      for (const resource of instance.resources.values()) {
        const value = resource.kind === 'multipleResource' ? resource.instances : resource.value;
        const existing = spec[resource.id];
        spec[resource.id] = isResourceOptions(existing) ? { ...existing, value } : value;
      }
      object.instances.set(instance.id, this.buildInstance(object, instance.id, spec));
      this.emit('create', { path: `${path}/${instance.id}` });
    }
    this.markObjectsChanged();
    this.observations.changed(path);
    const first = created[0].id;
    return { code: '2.01', locationPath: [String(path.objectId), String(first)] };
  }

  private delete(path: LwM2mPath): OutgoingResponse {
    if (path.level === 2) {
      const object = this.objects.get(path.objectId!);
      this.existingInstance(path);
      const impl = this.implementations.get(path.objectId!)!;
      if (!(impl.creatable ?? object!.definition.multiple)) throw new ClientError('4.05', `${path} cannot be deleted`);
      object!.instances.delete(path.instanceId!);
      this.emit('delete', { path: path.toString() });
      this.markObjectsChanged();
      this.observations.changed(path);
      return { code: '2.02' };
    }
    if (path.level === 4 && this.options.lwm2mVersion === '1.2') {
      const slot = this.existingSlot(path);
      if (!slot.writable || !slot.def.multiple || !slot.instances?.has(path.resourceInstanceId!)) {
        throw new ClientError(slot.instances?.has(path.resourceInstanceId!) ? '4.05' : '4.04', `${path}`);
      }
      const instances = new Map(slot.instances);
      instances.delete(path.resourceInstanceId!);
      slot.store(instances);
      this.emit('delete', { path: path.toString() });
      this.observations.changed(path.parent());
      return { code: '2.02' };
    }
    throw new ClientError('4.05', `Delete is not allowed on ${path}`);
  }

  private writeAttributes(path: LwM2mPath, query: readonly string[]): OutgoingResponse {
    if (path.level === 0) throw new ClientError('4.05', 'Write-Attributes on / is not allowed');
    if (!this.objects.has(path.objectId!)) throw new ClientError('4.04', `${path} not found`);
    let resource: ResourceSlot | undefined;
    if (path.level >= 2) this.existingInstance(path);
    if (path.level >= 3) resource = this.existingSlot(path);
    if (path.level === 4 && this.options.lwm2mVersion === '1.0') {
      throw new ClientError('4.00', 'LwM2M 1.0 has no attributes on resource instances');
    }
    const key = path.toString();
    const next = applyAttributeQuery(
      this.attributes.get(key),
      query,
      this.options.lwm2mVersion,
      path,
      resource?.def ?? this.model.getResource(path.objectId!, path.resourceId ?? -1),
    );
    if (Object.keys(next).length === 0) this.attributes.delete(key);
    else this.attributes.set(key, next);
    this.observations.attributesChanged();
    return { code: '2.04' };
  }

  // ================================================================ notifications

  private nextSequence(): number {
    this.observeSeq = (this.observeSeq + 1) & 0xffffff;
    return this.observeSeq;
  }

  private sendNotification(observation: Observation, node: LwM2mNode | undefined, confirmable: boolean): Promise<void> {
    const endpoint = this.endpoint;
    if (endpoint === undefined) return Promise.reject(new Error('client stopped'));
    this.awake();
    const { peer, token } = observation;
    // an error notification ends the observation and carries no Observe option (RFC 7641 §4.2)
    if (node === undefined) return endpoint.notify(peer, token, { code: '4.04', observe: 0 }, { confirmable: false });
    let payload: Buffer;
    try {
      payload = encodeNode(node, observation.format, observation.path, this.model);
    } catch (err) {
      this.emitError(err as Error);
      return endpoint.notify(peer, token, { code: '5.00', observe: 0 }, { confirmable: false });
    }
    const sequence = this.nextSequence();
    this.counters.notifications++;
    this.emit('notification', {
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
    const pmin = this.get(`/1/${this.serverInstanceId}/2`);
    const pmax = this.get(`/1/${this.serverInstanceId}/3`);
    return effectiveAttributes(this.attributes, path, {
      pmin: typeof pmin === 'number' ? pmin : undefined,
      pmax: typeof pmax === 'number' ? pmax : undefined,
    });
  }

  // ================================================================ the object tree

  private chooseDefinition(id: number, wanted?: string): { definition: ObjectDefinition; announced?: string } {
    if (wanted !== undefined) {
      const definition = this.model.getObjectVersion(id, wanted);
      if (definition === undefined) throw new RangeError(`object ${id} version ${wanted} is not in the model`);
      return { definition, announced: definition.version };
    }
    const versions = this.model.versionsOf(id);
    if (versions.length === 0) throw new RangeError(`object ${id} is not in the model`);
    const mine = this.options.lwm2mVersion;
    let chosen: ObjectDefinition | undefined;
    for (const version of versions) {
      const definition = this.model.getObjectVersion(id, version)!;
      if (compareVersions(definition.lwm2mVersion, mine) <= 0) chosen = definition;
    }
    if (chosen !== undefined) return { definition: chosen, announced: chosen.version };
    // only versions written for a later LwM2M: use the oldest, announce no version (the implied one)
    return { definition: this.model.getObjectVersion(id, versions[0])! };
  }

  private builtin(definition: ObjectDefinition): ObjectImplementation {
    const o = this.options;
    const binding = o.queueMode && !o.binding.includes('Q') ? o.binding + 'Q' : o.binding;
    return builtinImplementation(this.context, definition, {
      shortServerId: o.shortServerId,
      defaultPmin: o.defaultPmin,
      defaultPmax: o.defaultPmax,
      supportedBinding: binding,
      firmware: o.firmware,
      device: {
        manufacturer: 'node-red-contrib-lwm2m',
        modelNumber: 'lwm2m-sim',
        serialNumber: `SN-${this.endpointName}`,
        firmwareVersion: '1.0.0',
        hardwareVersion: '1.0',
        softwareVersion: '1.0.0',
        deviceType: 'simulated device',
        ...o.device,
      },
    });
  }

  private buildInstance(object: ClientObject, id: number, spec: InstanceSpec): ClientInstance {
    const instance = new ClientInstance(object.id, id);
    for (const [key, entry] of Object.entries(spec)) {
      const resourceId = Number(key);
      const def = object.definition.resources[resourceId];
      if (def === undefined) throw new RangeError(`object ${object.id} has no resource ${key}`);
      const slot = new ResourceSlot(def);
      const path = new LwM2mPath(object.id, id, resourceId);
      if (isResourceOptions(entry)) {
        slot.read = entry.read;
        slot.write = entry.write;
        slot.execute = entry.execute;
        if (entry.value !== undefined) slot.store(coerceContent(def, entry.value, path));
      } else if (entry !== undefined && def.type !== 'none') {
        slot.store(coerceContent(def, entry, path));
      }
      instance.resources.set(resourceId, slot);
    }
    return instance;
  }

  private instanceAt(path: LwM2mPath): ClientInstance {
    if (path.level < 2) throw new ValueError(`${path} is not an instance or resource path`);
    const instance = this.objects.get(path.objectId!)?.instances.get(path.instanceId!);
    if (instance === undefined)
      throw new ValueError(`${path.toString().split('/').slice(0, 3).join('/')} does not exist`);
    return instance;
  }

  /** The slot of a resource; with `create`, made from the definition when the instance lacks it. */
  private slotFor(instance: ClientInstance, resourceId: number, create: boolean): ResourceSlot | undefined {
    let slot = instance.resources.get(resourceId);
    if (slot === undefined && create) {
      const def = this.objects.get(instance.objectId)!.definition.resources[resourceId];
      if (def === undefined) return undefined;
      slot = new ResourceSlot(def);
      instance.resources.set(resourceId, slot);
    }
    return slot;
  }

  private existingInstance(path: LwM2mPath): ClientInstance {
    const instance = this.objects.get(path.objectId!)?.instances.get(path.instanceId!);
    if (instance === undefined) throw new ClientError('4.04', `${path} not found`);
    return instance;
  }

  private existingSlot(path: LwM2mPath): ResourceSlot {
    const slot = this.existingInstance(path).resources.get(path.resourceId!);
    if (slot === undefined) throw new ClientError('4.04', `${path} not found`);
    return slot;
  }

  /** The node at a path as a server reads it: only readable resources; ClientError 4.04 / 4.05. */
  private readNode(path: LwM2mPath): LwM2mNode {
    if (path.level === 0) throw new ClientError('4.05', 'cannot read /');
    const object = this.objects.get(path.objectId!);
    if (object === undefined) throw new ClientError('4.04', `${path} not found`);
    if (path.level === 1) return object.node();
    const instance = this.existingInstance(path);
    if (path.level === 2) return instance.node();
    const slot = this.existingSlot(path);
    if (!slot.readable) throw new ClientError('4.05', `${path} is not readable`);
    const node = slot.node(path);
    if (node === undefined) throw new ClientError('4.04', `${path} has no value`);
    if (path.level === 3) return node;
    if (node.kind !== 'multipleResource') throw new ClientError('4.04', `${path} not found`);
    const value = node.instances.get(path.resourceInstanceId!);
    if (value === undefined) throw new ClientError('4.04', `${path} not found`);
    return { kind: 'resourceInstance', id: path.resourceInstanceId!, type: node.type, value };
  }

  /** Like readNode but for the device itself: every resource, readable or not. */
  private localNode(path: LwM2mPath): LwM2mNode | undefined {
    const object = this.objects.get(path.objectId!);
    if (object === undefined || path.level === 0) return undefined;
    const instanceNode = (instance: ClientInstance): LwM2mObjectInstance => {
      const resources = new Map<number, LwM2mResource>();
      for (const slot of sortedSlots(instance)) {
        const node = slot.node(instance.path.append(slot.id));
        if (node !== undefined) resources.set(slot.id, node);
      }
      return { kind: 'instance', id: instance.id, resources };
    };
    if (path.level === 1) {
      const instances = new Map<number, LwM2mObjectInstance>();
      for (const id of this.instanceIds(object.id)) instances.set(id, instanceNode(object.instances.get(id)!));
      return { kind: 'object', id: object.id, instances };
    }
    const instance = object.instances.get(path.instanceId!);
    if (instance === undefined) return undefined;
    if (path.level === 2) return instanceNode(instance);
    const node = instance.resources.get(path.resourceId!)?.node(path);
    if (node === undefined || path.level === 3) return node;
    if (node.kind !== 'multipleResource') return undefined;
    const value = node.instances.get(path.resourceInstanceId!);
    return value === undefined
      ? undefined
      : { kind: 'resourceInstance', id: path.resourceInstanceId!, type: node.type, value };
  }

  private responseFormat(node: LwM2mNode, accept: number | undefined): number {
    if (accept !== undefined) {
      if (!this.acceptedFormats.has(accept)) {
        throw new ClientError('4.06', `content format ${formatName(accept)} is not supported`);
      }
      return accept;
    }
    if (node.kind === 'resource' || node.kind === 'resourceInstance') {
      return node.type === 'opaque' ? ContentFormat.OPAQUE : ContentFormat.TEXT;
    }
    return this.multiFormat;
  }

  private requestFormat(request: IncomingRequest, path: LwM2mPath): number {
    let format = request.contentFormat;
    if (format === undefined) {
      const def =
        path.level >= 3 ? this.objects.get(path.objectId!)?.definition.resources[path.resourceId!] : undefined;
      const single = path.level === 4 || (path.level === 3 && def !== undefined && !def.multiple);
      format = single ? (def?.type === 'opaque' ? ContentFormat.OPAQUE : ContentFormat.TEXT) : this.multiFormat;
    }
    if (!this.acceptedFormats.has(format)) {
      throw new ClientError('4.15', `content format ${formatName(format)} is not supported`);
    }
    return format;
  }

  // ================================================================ plumbing

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
        return client.target.uri;
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
      triggerUpdate: () => client.deferUpdate(),
      reboot: (whileDown) => setImmediate(() => client.reboot(whileDown)),
      disable: (seconds) => setImmediate(() => void client.disable(seconds)),
      // After the 2.04 has gone out: the bootstrap begins with a De-register.
      triggerBootstrap:
        client.options.bootstrapUri === undefined
          ? undefined
          : () => setImmediate(() => void client.bootstrap().catch((err: Error) => client.emitError(err))),
      download: (uri, timeoutMs, maxSize, tls) => {
        const endpoint = client.requireEndpoint();
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

  private simulateTick(): void {
    if (this._state === 'registered') this.changeValues();
    this.setTimer('simulate', this.options.simulateEveryMs, () => this.simulateTick(), true);
  }

  private requireEndpoint(): CoapEndpoint {
    if (this.endpoint === undefined) throw new Error(`${this.endpointName} is not started`);
    return this.endpoint;
  }

  private setTimer(name: string, delayMs: number, fn: () => void, unref = false): void {
    const old = this.timers.get(name);
    if (old !== undefined) clearTimeout(old);
    const timer = setTimeout(
      () => {
        if (this.timers.get(name) === timer) this.timers.delete(name);
        try {
          fn();
        } catch (err) {
          this.emitError(err as Error);
        }
      },
      Math.min(0x7fffffff, Math.max(0, delayMs)),
    );
    if (unref) timer.unref();
    this.timers.set(name, timer);
  }

  private clearTimer(name: string): void {
    const timer = this.timers.get(name);
    if (timer !== undefined) clearTimeout(timer);
    this.timers.delete(name);
  }

  private clearTimers(keep: string[] = []): void {
    for (const [name, timer] of [...this.timers]) {
      if (keep.includes(name)) continue;
      clearTimeout(timer);
      this.timers.delete(name);
    }
  }

  private emitError(err: Error): void {
    if (this.listenerCount('error') > 0) this.emit('error', err);
  }
}

// ================================================================ helpers

function parseObjectChoice(choice: number | string | ObjectChoice): ObjectChoice {
  if (typeof choice === 'number') return { id: choice };
  if (typeof choice === 'object') return choice;
  const match = /^\s*(\d{1,5})(?:@(\d+\.\d+))?(?:[*x](\d{1,5}))?\s*$/.exec(choice);
  if (!match) throw new RangeError(`invalid object "${choice}" (expected 3303, 3303*2 or 3303@1.1)`);
  const out: ObjectChoice = { id: Number(match[1]) };
  if (match[2] !== undefined) out.version = match[2];
  if (match[3] !== undefined) out.instances = Number(match[3]);
  return out;
}

async function resolveServer(uri: string, customTransport: boolean): Promise<PeerAddress> {
  let url: URL;
  try {
    url = new URL(uri);
  } catch {
    throw new RangeError(`invalid server URI "${uri}"`);
  }
  if (url.protocol !== 'coap:' && !(url.protocol === 'coaps:' && customTransport)) {
    throw new RangeError(`server URI "${uri}": only coap:// is supported (coaps:// needs a DTLS transport)`);
  }
  const host = url.hostname.replace(/^\[|\]$/g, '');
  const port = url.port === '' ? (url.protocol === 'coaps:' ? 5684 : 5683) : Number(url.port);
  const address = isIP(host) !== 0 ? host : (await lookup(host)).address;
  return { address, port };
}

/** A bootstrap URI the client can use: coap://, or coaps:// with a PSK (or a transport of one's own). */
function checkBootstrapUri(o: Lwm2mClientOptions): void {
  let url: URL;
  try {
    url = new URL(o.bootstrapUri!);
  } catch {
    throw new RangeError(`invalid bootstrap URI "${o.bootstrapUri}"`);
  }
  if (url.protocol !== 'coap:' && url.protocol !== 'coaps:') {
    throw new RangeError(`bootstrap URI "${o.bootstrapUri}": only coap:// and coaps:// are supported`);
  }
  if (url.protocol === 'coaps:' && o.bootstrapPsk === undefined && o.transport === undefined) {
    throw new RangeError(`bootstrap URI "${o.bootstrapUri}": coaps:// needs bootstrapPsk`);
  }
  if (url.protocol === 'coap:' && o.bootstrapPsk !== undefined) {
    throw new RangeError(`bootstrap URI "${o.bootstrapUri}": a PSK needs a coaps:// URI`);
  }
}

function normaliseRoot(root: string): string {
  if (root === '' || root === '/') return '';
  return '/' + root.replace(/^\/+|\/+$/g, '');
}

/** Uri-Path segments below our alternate root path; undefined when outside it. */
function stripRoot(segments: string[], root: string): string[] | undefined {
  const prefix = normaliseRoot(root).split('/').filter(Boolean);
  if (prefix.length === 0) return segments;
  for (let i = 0; i < prefix.length; i++) if (segments[i] !== prefix[i]) return undefined;
  return segments.slice(prefix.length);
}

/** The content a write stores: one value, or the resource instances (merged with the old ones for an update). */
function contentOf(slot: ResourceSlot, resource: LwM2mResource, path: LwM2mPath, merge: boolean): ResourceContent {
  if (resource.kind === 'multipleResource') {
    if (!slot.def.multiple) throw new ClientError('4.00', `${path} is a single resource`);
    return merge ? new Map([...(slot.instances ?? []), ...resource.instances]) : resource.instances;
  }
  if (slot.def.multiple) throw new ClientError('4.00', `${path} is a multiple resource`);
  return resource.value;
}

function observationKey(peerKey: string, token: Buffer): string {
  return peerKey + '|' + token.toString('hex');
}

function diagnostic(message: string): Buffer {
  return Buffer.from(message.slice(0, 200), 'utf8');
}
