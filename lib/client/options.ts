/**
 * What an Lwm2mClient is configured with and what it reports: its options and their defaults, its
 * states, statistics and events, and the parsing of the object and URI options.
 */
import type { EventEmitter } from 'node:events';
import type { CoapEndpointOptions } from '../coap/types';
import type { ObjectModel } from '../model/object-model';
import type { DatagramTransport } from '../transport/types';
import type { ClientLwm2mVersion } from './attributes';
import type { PskCredentials } from './dtls-transport';
import type { InstanceSpec } from './object-tree';
import type { DeviceInfo, FirmwareOptions, ObjectImplementation } from './objects';

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

export const DEFAULTS: Omit<Lwm2mClientOptions, 'endpointName'> = {
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

/** The counters of ClientStats that the client's parts count up (observations are counted where they live). */
export type ClientCounters = Omit<ClientStats, 'observations'>;

/** The client's events, as its parts emit them. */
export type ClientEvents = EventEmitter<Lwm2mClientEvents>;

/** Reports an error on the client's 'error' event when someone listens (an EventEmitter throws otherwise). */
export function emitError(events: ClientEvents, err: Error): void {
  if (events.listenerCount('error') > 0) events.emit('error', err);
}

export function parseObjectChoice(choice: number | string | ObjectChoice): ObjectChoice {
  if (typeof choice === 'number') return { id: choice };
  if (typeof choice === 'object') return choice;
  const match = /^\s*(\d{1,5})(?:@(\d+\.\d+))?(?:[*x](\d{1,5}))?\s*$/.exec(choice);
  if (!match) throw new RangeError(`invalid object "${choice}" (expected 3303, 3303*2 or 3303@1.1)`);
  const out: ObjectChoice = { id: Number(match[1]) };
  if (match[2] !== undefined) out.version = match[2];
  if (match[3] !== undefined) out.instances = Number(match[3]);
  return out;
}

/** A bootstrap URI the client can use: coap://, or coaps:// with a PSK (or a transport of one's own). */
export function checkBootstrapUri(o: Lwm2mClientOptions): void {
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

export function normaliseRoot(root: string): string {
  if (root === '' || root === '/') return '';
  return '/' + root.replace(/^\/+|\/+$/g, '');
}
