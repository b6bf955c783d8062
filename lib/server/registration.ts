/**
 * A device's registration as the server keeps it (plain data, storable as JSON), and the parsing of what a Register
 * or Update carries: its Uri-Query parameters and its object links.
 */
import { Lwm2mError } from '../errors';
import { checkLinkAttributes, parseLinkFormat } from '../content/link-format';
import type { SecurityIdentity } from '../transport/types';

export type Lwm2mVersion = '1.0' | '1.1' | '1.2';
export const SUPPORTED_VERSIONS: readonly Lwm2mVersion[] = ['1.0', '1.1', '1.2'];

/** What a device announced for one object in its registration links. */
export interface RegisteredObject {
  /** Object version from `ver=` (absent means the version the device's LwM2M version implies). */
  version?: string;
  /** Instance ids announced (`</3303/0>`); empty when only `</3303>` was sent. Shared between registrations: frozen. */
  readonly instances: readonly number[];
}

/** One device's registration, as the server and its store keep it. Plain data: storable as JSON. */
export interface Registration {
  /** Registration id: the last Location-Path segment (`/rd/<id>`). */
  id: string;
  endpoint: string;
  /** Seconds. */
  lifetime: number;
  lwm2mVersion: Lwm2mVersion;
  /** Binding letters (1.0: U, UQ, S, SQ, US, UQS; 1.1+: any of U, T, S, N). */
  binding: string;
  /** Queue mode: the 1.1 `Q` query flag, or a 1.0 binding with Q. */
  queueMode: boolean;
  smsNumber?: string;
  address: string;
  port: number;
  /** Transport peer key (`address:port`), how requests find the device. */
  peerKey: string;
  /** Alternate root path from `</path>;rt="oma.lwm2m"` ('' when the default root is used). */
  rootPath: string;
  /** Object id -> what was announced. Shared between registrations that announced the same links: frozen. */
  objects: Readonly<Record<number, RegisteredObject>>;
  /** Content formats the device announced with `ct` on the root link (1.1+), in its order. Frozen. */
  supportedContentFormats: readonly number[];
  /** Query parameters we do not interpret, kept for flows. */
  additionalAttributes: Record<string, string>;
  security?: SecurityIdentity;
  /** Epoch ms. */
  registeredAt: number;
  /** Epoch ms of the last Register or Update. */
  lastUpdateAt: number;
  /**
   * 'written' while `lifetime` is one this server wrote into its own account on the device (/1/x/1) and the device
   * has not stated a lifetime since (Wakaama sends its Updates without `lt`); absent when the device stated it in its
   * Register or Update (or stated none: the default). Optional: records stored before it existed read as absent.
   */
  lifetimeSource?: 'written';
  /** Epoch ms of that Write: the device answered it, so expiry counts from here at the earliest. */
  lifetimeWrittenAt?: number;
}

/** A Register/Update request that cannot be accepted: `code` is what the device is answered with. */
export class RegistrationError extends Lwm2mError {
  override name = 'RegistrationError';
  constructor(
    message: string,
    override readonly code: '4.00' | '4.03' | '4.04' | '4.12',
  ) {
    super(message, code);
  }
}

/** Uri-Query values `k=v` (or a bare flag `Q`) into a map; the first of a repeated key wins. */
export function parseQuery(query: readonly string[]): Map<string, string> {
  const params = new Map<string, string>();
  for (const item of query) {
    const eq = item.indexOf('=');
    const key = eq < 0 ? item : item.slice(0, eq);
    const value = eq < 0 ? '' : item.slice(eq + 1);
    if (!params.has(key)) params.set(key, value);
  }
  return params;
}

const VERSION_10_BINDINGS = new Set(['U', 'UQ', 'S', 'SQ', 'US', 'UQS']);
const VERSION_11_BINDING = /^[UTSN]{1,4}$/;

export interface ParsedRegisterQuery {
  endpoint?: string;
  lifetime?: number;
  lwm2mVersion?: Lwm2mVersion;
  binding?: string;
  queueMode?: boolean;
  smsNumber?: string;
  additionalAttributes: Record<string, string>;
}

/**
 * Reads the Register/Update query. `isRegister` applies the Register-only rules (version, endpoint
 * required); `version` is the registration's version on Update (so binding rules stay consistent).
 */
export function parseRegistrationQuery(
  query: readonly string[],
  isRegister: boolean,
  versionOnUpdate?: Lwm2mVersion,
): ParsedRegisterQuery {
  const params = parseQuery(query);
  const result: ParsedRegisterQuery = { additionalAttributes: {} };

  let version = versionOnUpdate;
  if (isRegister) {
    const announced = params.get('lwm2m');
    if (announced === undefined) version = '1.0';
    // the constant, not the query's text: every registration keeps its version (24 bytes each otherwise)
    else version = SUPPORTED_VERSIONS.find((known) => known === announced);
    if (version === undefined) throw new RegistrationError(`unsupported LwM2M version "${announced}"`, '4.12');
    result.lwm2mVersion = version;
  }

  const endpoint = params.get('ep');
  if (endpoint !== undefined) {
    if (!isRegister) throw new RegistrationError('the endpoint name cannot change in an Update', '4.00');
    if (endpoint.length === 0 || endpoint.length > 256) throw new RegistrationError('invalid endpoint name', '4.00');
    result.endpoint = endpoint;
  }

  const lifetime = params.get('lt');
  if (lifetime !== undefined) {
    if (!/^\d{1,10}$/.test(lifetime) || Number(lifetime) < 1 || Number(lifetime) > 0xffffffff) {
      throw new RegistrationError(`invalid lifetime "${lifetime}"`, '4.00');
    }
    result.lifetime = Number(lifetime);
  }

  const binding = params.get('b');
  const queueFlag = params.has('Q');
  if (binding !== undefined) {
    if (version === '1.0') {
      if (!VERSION_10_BINDINGS.has(binding)) throw new RegistrationError(`invalid binding "${binding}"`, '4.00');
      result.binding = binding;
      result.queueMode = binding.includes('Q');
    } else {
      // 1.1 moved the queue flag to its own parameter; the 1.0 forms are still seen in the field.
      if (VERSION_11_BINDING.test(binding) && new Set(binding).size === binding.length) {
        result.binding = binding;
      } else if (VERSION_10_BINDINGS.has(binding)) {
        result.binding = binding.replace('Q', '');
        result.queueMode = true;
      } else {
        throw new RegistrationError(`invalid binding "${binding}"`, '4.00');
      }
    }
  }
  if (queueFlag) {
    if (version === '1.0') throw new RegistrationError('the Q parameter is not part of LwM2M 1.0', '4.00');
    if (params.get('Q') !== '') throw new RegistrationError('the Q parameter takes no value', '4.00');
    result.queueMode = true;
  } else if (isRegister && result.queueMode === undefined) {
    result.queueMode = false;
  }

  const sms = params.get('sms');
  if (sms !== undefined) result.smsNumber = sms;

  for (const [key, value] of params) {
    if (!['ep', 'lt', 'lwm2m', 'b', 'Q', 'sms'].includes(key)) result.additionalAttributes[key] = value;
  }
  return result;
}

export interface ParsedObjectLinks {
  readonly rootPath: string;
  readonly objects: Readonly<Record<number, RegisteredObject>>;
  readonly supportedContentFormats: readonly number[];
}

/**
 * Reads the registration's link-format payload: `</1/0>,</3/0>,</3303>;ver=1.1` or, with an
 * alternate root, `</lwm2m>;rt="oma.lwm2m";ct="60 110",</lwm2m/3/0>`.
 */
export function parseObjectLinks(payload: Buffer): ParsedObjectLinks {
  const text = payload.toString('utf8').trim();
  const known = PARSED_LINKS.get(text);
  if (known !== undefined) return known;
  const parsed = deepFreeze(parseLinkText(text));
  if (PARSED_LINKS.size >= MAX_PARSED_LINKS) PARSED_LINKS.delete(PARSED_LINKS.keys().next().value!);
  PARSED_LINKS.set(text, parsed);
  return parsed;
}

/**
 * Object-link lists parsed before, by their text. The devices of a fleet register the same objects, so their
 * registrations share one frozen `objects` record, not one each: the record of `</1/0>,</3/0>,</3303/0>` alone
 * is about 350 bytes (its numeric keys make a dictionary, and each object an object and an array; measured with
 * bench/heap-per-device.ts). Bounded, oldest
 * first out: a server seeing endless different lists keeps at most this many.
 */
const PARSED_LINKS = new Map<string, ParsedObjectLinks>();
const MAX_PARSED_LINKS = 1024;
/** Shared by every registration that announced no content formats (an empty array literal costs 32 bytes each). */
const NO_CONTENT_FORMATS: readonly number[] = Object.freeze([]);

/** Frozen: shared between registrations, so nobody may change one in place (a change makes a new record). */
function deepFreeze(parsed: ParsedObjectLinks): ParsedObjectLinks {
  for (const object of Object.values(parsed.objects)) {
    Object.freeze(object.instances);
    Object.freeze(object);
  }
  Object.freeze(parsed.objects);
  Object.freeze(parsed.supportedContentFormats);
  return Object.freeze(parsed);
}

function parseLinkText(text: string): ParsedObjectLinks {
  const links = text === '' ? [] : parseLinkFormat(text);

  let rootPath = '';
  let supportedContentFormats: readonly number[] = NO_CONTENT_FORMATS;
  const rootLink = links.find((link) => link.params.rt === '"oma.lwm2m"' || link.params.rt === 'oma.lwm2m');
  if (rootLink) {
    rootPath = rootLink.uri === '/' ? '' : rootLink.uri.replace(/\/+$/, '');
    const ct = rootLink.params.ct;
    if (typeof ct === 'string') {
      supportedContentFormats = ct
        .replace(/"/g, '')
        .split(/\s+/)
        .filter((item) => item !== '')
        .map((item) => {
          if (!/^\d+$/.test(item)) throw new RegistrationError(`invalid ct "${ct}" on the root link`, '4.00');
          return Number(item);
        });
    }
  }

  // Collected first, then built with their final shape: adding `version` to `{ instances }` afterwards
  // would give each object an out-of-object property array (3 per device, about 40 bytes each).
  const found = new Map<number, { instances: number[]; version: string | undefined }>();
  for (const link of links) {
    if (link === rootLink) continue;
    let uri = link.uri;
    if (rootPath !== '') {
      if (!uri.startsWith(rootPath + '/')) continue; // a link outside the LwM2M root is not an object
      uri = uri.slice(rootPath.length);
    }
    const match = /^\/(\d{1,5})(?:\/(\d{1,5}))?\/?$/.exec(uri);
    if (!match) {
      if (/^\/\d/.test(uri)) throw new RegistrationError(`invalid object link <${link.uri}>`, '4.00');
      continue; // other resources a device may list (e.g. </>) are not objects
    }
    const objectId = Number(match[1]);
    if (objectId > 65535) throw new RegistrationError(`invalid object id in <${link.uri}>`, '4.00');
    checkLinkAttributes(link, objectId); // dim and ssid in range, else 4.00 naming the link
    let entry = found.get(objectId);
    if (entry === undefined) found.set(objectId, (entry = { instances: [], version: undefined }));
    if (match[2] !== undefined) {
      const instanceId = Number(match[2]);
      if (instanceId > 65535) throw new RegistrationError(`invalid instance id in <${link.uri}>`, '4.00');
      if (!entry.instances.includes(instanceId)) entry.instances.push(instanceId);
    }
    const ver = link.params.ver;
    if (typeof ver === 'string') entry.version = internVersion(ver.replace(/"/g, ''));
  }
  const objects: Record<number, RegisteredObject> = {};
  for (const [objectId, { instances, version }] of found) {
    // slice(): an array grown by push keeps room for 17 elements (about 130 bytes more each)
    objects[objectId] =
      version === undefined ? { instances: instances.slice() } : { instances: instances.slice(), version };
  }
  return { rootPath, objects, supportedContentFormats };
}

const VERSIONS = new Map<string, string>();

/** One string per object version ('1.1', '2.0' ...) shared by every registration, not one each. */
function internVersion(version: string): string {
  const known = VERSIONS.get(version);
  if (known !== undefined) return known;
  if (VERSIONS.size < 256) VERSIONS.set(version, version);
  return version;
}
