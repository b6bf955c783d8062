/**
 * Bootstrap configurations: what a bootstrap server provisions on a device, as plain data (a flow supplies it
 * as a msg, a file holds it as JSON), checked by `parseBootstrapConfig` with errors that name the field.
 */
import { Lwm2mError } from '../errors';
import { X509Certificate, createPrivateKey, createPublicKey } from 'node:crypto';
import { ContentFormat } from '../content/types';
import { ObjectModel } from '../model/object-model';
import { InvalidPathError, LwM2mPath } from '../model/path';
import type { ObjectModelLookup } from '../model/types';
import { ValueError, fromPlain } from '../model/values';

export type SecurityModeName = 'nosec' | 'psk' | 'rpk' | 'x509';

/** Security object (/0) Security Mode values (LwM2M Core, object 0 resource 2). */
export const SECURITY_MODE_VALUE: Record<SecurityModeName, number> = { psk: 0, rpk: 1, x509: 2, nosec: 3 };

/** How the device reaches a server: the Security object instance's credentials. */
export interface AccountSecurity {
  uri: string;
  securityMode: SecurityModeName;
  /** PSK identity (psk). */
  pskIdentity?: string;
  /** PSK key (psk). */
  pskKey?: Buffer;
  /** /0/x/3: the device's raw public key (rpk, SPKI DER) or certificate (x509, DER). */
  publicKeyOrIdentity?: Buffer;
  /** /0/x/4: the server's raw public key (rpk) or certificate (x509). */
  serverPublicKey?: Buffer;
  /** /0/x/5: the device's private key (rpk, x509; PKCS#8 DER). */
  secretKey?: Buffer;
}

/** One LwM2M (DM) server account to provision: a Security instance and a Server instance. */
export interface ServerAccountConfig extends AccountSecurity {
  /** 1..65534; /0/x/10 and /1/x/0. */
  shortServerId: number;
  /** Registration lifetime in s (/1/x/1), default 86400. */
  lifetime: number;
  /** /1/x/7, default 'U'. */
  binding: string;
  /** /1/x/2 and /1/x/3, written when given. */
  defaultMinPeriod?: number;
  defaultMaxPeriod?: number;
  /** /1/x/6, default true. */
  notificationStoring: boolean;
  /** /1/x/23 (LwM2M 1.1+), written only when given. */
  muteSend?: boolean;
  /** Security (/0) and Server (/1) instance ids; chosen by the session when absent. */
  securityInstanceId?: number;
  serverInstanceId?: number;
}

/** The bootstrap server account itself, when the configuration (re)writes it. */
export interface BootstrapAccountConfig extends AccountSecurity {
  /** Security instance id, default 0 (or the one BS-Discover found). */
  instanceId?: number;
  /** /0/x/11 Client Hold Off Time, s. */
  clientHoldOffTime?: number;
  /** /0/x/12 Bootstrap-Server Account Timeout, s. */
  accountTimeout?: number;
}

/** One ACL instance (/2): who may do what on one object instance (or create in an object: instance 65535). */
export interface AclEntry {
  /** `/3/0`, or `/3303` for the right to create instances of an object. */
  path: string;
  /** Short server id -> rights: a number (R=1, W=2, E=4, D=8, C=16) or letters ('RWE'). */
  rights: Record<string, number>;
  /** /2/x/3 Access Control Owner; default the first server. */
  owner?: number;
}

export type ContentFormatChoice =
  typeof ContentFormat.TLV | typeof ContentFormat.SENML_CBOR | typeof ContentFormat.SENML_JSON;

/** A checked bootstrap configuration (what `parseBootstrapConfig` returns). */
export interface BootstrapConfig {
  servers: ServerAccountConfig[];
  bootstrapServer?: BootstrapAccountConfig;
  /** BS-Delete targets, in order; default ['/0', '/1'] (the device spares its bootstrap account). */
  deletePaths: string[];
  /** 'auto': ACL instances generated when several servers are provisioned; 'none'; or explicit entries. */
  acl: 'auto' | 'none' | AclEntry[];
  /** Other instances to write: path -> plain value (as `fromPlain` takes), e.g. `{ '/3303/0': { 5750: 'fridge' } }`. */
  objects: Record<string, unknown>;
  /** BS-Discover (GET / as link-format) before anything else: learns the device's version and bootstrap account. */
  discover: boolean;
  /** BS-Read of these paths (LwM2M 1.1+, only /1 and /2 below), reported in the summary. */
  read: string[];
  /** Write format to use whatever the device prefers. */
  contentFormat?: ContentFormatChoice;
  /** The device's LwM2M version when known beforehand ('1.0' forces TLV and no BS-Read). */
  lwm2mVersion?: '1.0' | '1.1' | '1.2';
}

export class BootstrapConfigError extends Lwm2mError {
  override name = 'BootstrapConfigError';
}

const MAX_PSK_IDENTITY_BYTES = 128;
const DEFAULT_LIFETIME = 86400;
const URI = /^(coaps?|coaps?\+tcp):\/\/(\[[0-9a-fA-F:.]+\]|[^\s/:?#[\]]+)(:\d{1,5})?\/?$/;
const ACL_LETTERS: Record<string, number> = { R: 1, W: 2, E: 4, D: 8, C: 16 };

let defaultModel: ObjectModel | undefined;

/**
 * Checks plain data and returns a BootstrapConfig; throws BootstrapConfigError naming the field. Accepted
 * (keys as below; Buffers may be given as hex, base64 or PEM text):
 * ```
 * { servers: [{ shortServerId, uri, securityMode?: 'nosec'|'psk'|'rpk'|'x509', pskIdentity?, pskKey?,
 *               publicKeyOrIdentity?, serverPublicKey?, secretKey?, lifetime?, binding?, defaultMinPeriod?,
 *               defaultMaxPeriod?, notificationStoring?, muteSend?, securityInstanceId?, serverInstanceId? }],
 *   bootstrapServer?: { uri, securityMode?, ..., instanceId?, clientHoldOffTime?, accountTimeout? },
 *   deletePaths?: ['/0', '/1'], acl?: 'auto'|'none'|[{ path, rights: { '101': 'RWE' }, owner? }],
 *   objects?: { '/3303/0': { 5750: 'fridge' } }, discover?: false, read?: ['/1'],
 *   contentFormat?: 'tlv'|'senml-cbor'|'senml-json'|11542|112|110, lwm2mVersion?: '1.0'|'1.1'|'1.2' }
 * ```
 * A single server may be given as `server` instead of `servers`.
 */
export function parseBootstrapConfig(input: unknown, model: ObjectModelLookup = builtinModel()): BootstrapConfig {
  const record = objectOf(input, 'a bootstrap configuration');
  known(
    record,
    [
      'servers',
      'server',
      'bootstrapServer',
      'deletePaths',
      'acl',
      'objects',
      'discover',
      'read',
      'contentFormat',
      'lwm2mVersion',
    ],
    '',
  );
  const lwm2mVersion = optionalEnum(record.lwm2mVersion, ['1.0', '1.1', '1.2'] as const, 'lwm2mVersion');
  let serversInput = record.servers;
  if (serversInput === undefined && record.server !== undefined) serversInput = [record.server];
  if (!Array.isArray(serversInput) || serversInput.length === 0)
    throw new BootstrapConfigError('servers: give at least one LwM2M server account to provision');
  const servers = serversInput.map((entry, i) => parseServer(entry, `servers[${i}]`, lwm2mVersion));
  unique(
    servers.map((s) => s.shortServerId),
    'shortServerId',
  );
  unique(
    servers.flatMap((s) => (s.securityInstanceId === undefined ? [] : [s.securityInstanceId])),
    'securityInstanceId',
  );
  unique(
    servers.flatMap((s) => (s.serverInstanceId === undefined ? [] : [s.serverInstanceId])),
    'serverInstanceId',
  );
  const bootstrapServer =
    record.bootstrapServer === undefined ? undefined : parseBootstrapAccount(record.bootstrapServer, 'bootstrapServer');
  if (
    bootstrapServer?.instanceId !== undefined &&
    servers.some((s) => s.securityInstanceId === bootstrapServer.instanceId)
  )
    throw new BootstrapConfigError(
      `bootstrapServer.instanceId: /0/${bootstrapServer.instanceId} is also a server's securityInstanceId`,
    );

  const deletePaths = record.deletePaths === undefined ? ['/0', '/1'] : pathList(record.deletePaths, 'deletePaths', 2);
  const read = record.read === undefined ? [] : pathList(record.read, 'read', 4);
  for (const path of read) {
    const objectId = LwM2mPath.parse(path).objectId;
    if (objectId !== 1 && objectId !== 2)
      throw new BootstrapConfigError(`read: BS-Read may only read /1 and /2 (below), not ${path}`);
  }
  if (read.length > 0 && lwm2mVersion === '1.0')
    throw new BootstrapConfigError('read: BS-Read is LwM2M 1.1; this device is configured as 1.0');
  const discover = optionalBoolean(record.discover, 'discover') ?? false;
  const contentFormat = parseContentFormat(record.contentFormat);
  if (contentFormat !== undefined && contentFormat !== ContentFormat.TLV && lwm2mVersion === '1.0')
    throw new BootstrapConfigError('contentFormat: a 1.0 device takes TLV only');
  const acl = parseAcl(record.acl, servers);
  const objects = parseObjects(record.objects, model);
  return {
    servers,
    ...(bootstrapServer ? { bootstrapServer } : {}),
    deletePaths,
    acl,
    objects,
    discover,
    read,
    ...(contentFormat !== undefined ? { contentFormat } : {}),
    ...(lwm2mVersion !== undefined ? { lwm2mVersion } : {}),
  };
}

function builtinModel(): ObjectModel {
  defaultModel ??= ObjectModel.withBuiltins();
  return defaultModel;
}

function parseSecurity(record: Record<string, unknown>, where: string): AccountSecurity {
  const uri = record.uri;
  if (typeof uri !== 'string' || !URI.test(uri))
    throw new BootstrapConfigError(`${where}.uri: must be coap://host[:port] or coaps://host[:port], not ${show(uri)}`);
  const secure = uri.startsWith('coaps');
  const mode =
    optionalEnum(
      typeof record.securityMode === 'string' ? record.securityMode.toLowerCase() : record.securityMode,
      ['nosec', 'psk', 'rpk', 'x509'] as const,
      `${where}.securityMode`,
    ) ?? (secure ? undefined : 'nosec');
  if (mode === undefined)
    throw new BootstrapConfigError(`${where}.securityMode: a coaps:// server needs psk, rpk or x509`);
  if (secure && mode === 'nosec')
    throw new BootstrapConfigError(`${where}.securityMode: nosec does not go with a coaps:// URI`);
  if (!secure && mode !== 'nosec')
    throw new BootstrapConfigError(`${where}.securityMode: ${mode} needs a coaps:// URI, not ${uri}`);
  const security: AccountSecurity = { uri, securityMode: mode };
  switch (mode) {
    case 'psk': {
      const identity = record.pskIdentity;
      if (typeof identity !== 'string' || identity.length === 0)
        throw new BootstrapConfigError(`${where}.pskIdentity: a PSK account needs an identity`);
      if (Buffer.byteLength(identity) > MAX_PSK_IDENTITY_BYTES)
        throw new BootstrapConfigError(`${where}.pskIdentity: longer than ${MAX_PSK_IDENTITY_BYTES} bytes`);
      const key = hexOrBuffer(record.pskKey, `${where}.pskKey`);
      if (key.length < 4 || key.length > 64)
        throw new BootstrapConfigError(`${where}.pskKey: must be 4-64 bytes, not ${key.length}`);
      security.pskIdentity = identity;
      security.pskKey = key;
      break;
    }
    case 'rpk':
      security.publicKeyOrIdentity = keyBytes(record.publicKeyOrIdentity, `${where}.publicKeyOrIdentity`, 'public');
      security.serverPublicKey = keyBytes(record.serverPublicKey, `${where}.serverPublicKey`, 'public');
      security.secretKey = keyBytes(record.secretKey, `${where}.secretKey`, 'private');
      break;
    case 'x509':
      security.publicKeyOrIdentity = keyBytes(
        record.publicKeyOrIdentity,
        `${where}.publicKeyOrIdentity`,
        'certificate',
      );
      security.serverPublicKey = keyBytes(record.serverPublicKey, `${where}.serverPublicKey`, 'certificate');
      security.secretKey = keyBytes(record.secretKey, `${where}.secretKey`, 'private');
      break;
    case 'nosec':
      break;
  }
  return security;
}

const SECURITY_KEYS = [
  'uri',
  'securityMode',
  'pskIdentity',
  'pskKey',
  'publicKeyOrIdentity',
  'serverPublicKey',
  'secretKey',
];

function parseServer(input: unknown, where: string, version: string | undefined): ServerAccountConfig {
  const record = objectOf(input, where);
  known(
    record,
    [
      ...SECURITY_KEYS,
      'shortServerId',
      'lifetime',
      'binding',
      'defaultMinPeriod',
      'defaultMaxPeriod',
      'notificationStoring',
      'muteSend',
      'securityInstanceId',
      'serverInstanceId',
    ],
    where,
  );
  const shortServerId = integer(record.shortServerId, `${where}.shortServerId`, 1, 65534);
  if (shortServerId === undefined) throw new BootstrapConfigError(`${where}.shortServerId: missing (1..65534)`);
  const security = parseSecurity(record, where);
  const binding = record.binding === undefined ? 'U' : record.binding;
  if (typeof binding !== 'string' || !/^[UMHTSNQ]+$/.test(binding) || new Set(binding).size !== binding.length)
    throw new BootstrapConfigError(
      `${where}.binding: letters from U, M, H, T, S, N, Q (each once), not ${show(binding)}`,
    );
  const defaultMinPeriod = integer(record.defaultMinPeriod, `${where}.defaultMinPeriod`, 0, 2 ** 31 - 1);
  const defaultMaxPeriod = integer(record.defaultMaxPeriod, `${where}.defaultMaxPeriod`, 1, 2 ** 31 - 1);
  if (defaultMinPeriod !== undefined && defaultMaxPeriod !== undefined && defaultMaxPeriod < defaultMinPeriod)
    throw new BootstrapConfigError(`${where}.defaultMaxPeriod: smaller than defaultMinPeriod`);
  const muteSend = optionalBoolean(record.muteSend, `${where}.muteSend`);
  if (muteSend !== undefined && version === '1.0')
    throw new BootstrapConfigError(`${where}.muteSend: Mute Send (/1/x/23) is LwM2M 1.1; this device is 1.0`);
  const securityInstanceId = integer(record.securityInstanceId, `${where}.securityInstanceId`, 0, 65534);
  const serverInstanceId = integer(record.serverInstanceId, `${where}.serverInstanceId`, 0, 65534);
  return {
    ...security,
    shortServerId,
    lifetime: integer(record.lifetime, `${where}.lifetime`, 1, 2 ** 31 - 1) ?? DEFAULT_LIFETIME,
    binding,
    ...(defaultMinPeriod !== undefined ? { defaultMinPeriod } : {}),
    ...(defaultMaxPeriod !== undefined ? { defaultMaxPeriod } : {}),
    notificationStoring: optionalBoolean(record.notificationStoring, `${where}.notificationStoring`) ?? true,
    ...(muteSend !== undefined ? { muteSend } : {}),
    ...(securityInstanceId !== undefined ? { securityInstanceId } : {}),
    ...(serverInstanceId !== undefined ? { serverInstanceId } : {}),
  };
}

function parseBootstrapAccount(input: unknown, where: string): BootstrapAccountConfig {
  const record = objectOf(input, where);
  known(record, [...SECURITY_KEYS, 'instanceId', 'clientHoldOffTime', 'accountTimeout'], where);
  const account: BootstrapAccountConfig = parseSecurity(record, where);
  const instanceId = integer(record.instanceId, `${where}.instanceId`, 0, 65534);
  const clientHoldOffTime = integer(record.clientHoldOffTime, `${where}.clientHoldOffTime`, 0, 2 ** 31 - 1);
  const accountTimeout = integer(record.accountTimeout, `${where}.accountTimeout`, 0, 2 ** 31 - 1);
  if (instanceId !== undefined) account.instanceId = instanceId;
  if (clientHoldOffTime !== undefined) account.clientHoldOffTime = clientHoldOffTime;
  if (accountTimeout !== undefined) account.accountTimeout = accountTimeout;
  return account;
}

function parseContentFormat(value: unknown): ContentFormatChoice | undefined {
  if (value === undefined) return undefined;
  const names: Record<string, ContentFormatChoice> = {
    tlv: ContentFormat.TLV,
    'senml-cbor': ContentFormat.SENML_CBOR,
    'senml-json': ContentFormat.SENML_JSON,
    '11542': ContentFormat.TLV,
    '112': ContentFormat.SENML_CBOR,
    '110': ContentFormat.SENML_JSON,
  };
  const format = names[String(value).toLowerCase()];
  if (format === undefined)
    throw new BootstrapConfigError(
      `contentFormat: tlv (11542), senml-cbor (112) or senml-json (110), not ${show(value)}`,
    );
  return format;
}

function parseAcl(value: unknown, servers: ServerAccountConfig[]): BootstrapConfig['acl'] {
  if (value === undefined || value === 'auto') return 'auto';
  if (value === 'none' || value === false) return 'none';
  if (!Array.isArray(value))
    throw new BootstrapConfigError(`acl: 'auto', 'none' or a list of entries, not ${show(value)}`);
  const ssids = new Set(servers.map((s) => s.shortServerId));
  const seen = new Set<string>();
  return value.map((entry, i) => {
    const where = `acl[${i}]`;
    const record = objectOf(entry, where);
    known(record, ['path', 'rights', 'owner'], where);
    let path: LwM2mPath;
    try {
      path = LwM2mPath.parse(String(record.path));
    } catch (err) {
      throw new BootstrapConfigError(`${where}.path: ${(err as Error).message}`);
    }
    if (path.level !== 1 && path.level !== 2)
      throw new BootstrapConfigError(`${where}.path: an object (/3303: create) or an instance (/3/0), not ${path}`);
    if (path.objectId === 0 || path.objectId === 2)
      throw new BootstrapConfigError(`${where}.path: objects 0 and 2 have no ACL`);
    const key = path.toString();
    if (seen.has(key)) throw new BootstrapConfigError(`${where}.path: ${key} given twice`);
    seen.add(key);
    const rightsInput = objectOf(record.rights, `${where}.rights`);
    const rights: Record<string, number> = {};
    for (const [ssid, granted] of Object.entries(rightsInput)) {
      const id = Number(ssid);
      if (!ssids.has(id) && id !== 0)
        throw new BootstrapConfigError(`${where}.rights: ${ssid} is not the short server id of a provisioned server`);
      rights[ssid] = aclBits(granted, `${where}.rights.${ssid}`);
    }
    const owner = integer(record.owner, `${where}.owner`, 0, 65535);
    return { path: key, rights, ...(owner !== undefined ? { owner } : {}) };
  });
}

function aclBits(value: unknown, where: string): number {
  if (typeof value === 'number' && Number.isInteger(value) && value >= 0 && value <= 31) return value;
  if (typeof value === 'string' && /^[RWEDC]*$/i.test(value))
    return [...value.toUpperCase()].reduce((bits, letter) => bits | ACL_LETTERS[letter], 0);
  throw new BootstrapConfigError(`${where}: letters from R, W, E, D, C or a number 0..31, not ${show(value)}`);
}

function parseObjects(value: unknown, model: ObjectModelLookup): Record<string, unknown> {
  if (value === undefined) return {};
  const record = objectOf(value, 'objects');
  const out: Record<string, unknown> = {};
  for (const [pathText, plain] of Object.entries(record)) {
    let path: LwM2mPath;
    try {
      path = LwM2mPath.parse(pathText);
    } catch (err) {
      throw new BootstrapConfigError(`objects: ${(err as InvalidPathError).message}`);
    }
    if (path.isRoot()) throw new BootstrapConfigError('objects: "/" is not something to write');
    if (path.objectId! <= 2)
      throw new BootstrapConfigError(
        `objects["${pathText}"]: objects 0, 1 and 2 come from servers, bootstrapServer and acl`,
      );
    try {
      fromPlain(plain, path, model);
    } catch (err) {
      if (err instanceof ValueError) throw new BootstrapConfigError(`objects["${pathText}"]: ${err.message}`);
      throw err;
    }
    out[path.toString()] = plain;
  }
  return out;
}

// ---- small checks --------------------------------------------------------------------------------

function objectOf(value: unknown, what: string): Record<string, unknown> {
  if (value === null || typeof value !== 'object' || Array.isArray(value) || Buffer.isBuffer(value))
    throw new BootstrapConfigError(`${what}: must be an object, not ${show(value)}`);
  return value as Record<string, unknown>;
}

function known(record: Record<string, unknown>, keys: string[], where: string): void {
  for (const key of Object.keys(record)) {
    if (!keys.includes(key))
      throw new BootstrapConfigError(`${where ? where + '.' : ''}${key}: unknown field (known: ${keys.join(', ')})`);
  }
}

function integer(value: unknown, where: string, min: number, max: number): number | undefined {
  if (value === undefined || value === null || value === '') return undefined;
  const n = typeof value === 'string' && /^\d+$/.test(value.trim()) ? Number(value) : value;
  if (typeof n !== 'number' || !Number.isInteger(n) || n < min || n > max)
    throw new BootstrapConfigError(`${where}: an integer in ${min}..${max}, not ${show(value)}`);
  return n;
}

function optionalBoolean(value: unknown, where: string): boolean | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== 'boolean') throw new BootstrapConfigError(`${where}: true or false, not ${show(value)}`);
  return value;
}

function optionalEnum<T extends string>(value: unknown, allowed: readonly T[], where: string): T | undefined {
  if (value === undefined) return undefined;
  if (typeof value === 'string' && (allowed as readonly string[]).includes(value)) return value as T;
  throw new BootstrapConfigError(`${where}: one of ${allowed.join(', ')}, not ${show(value)}`);
}

function unique(values: number[], what: string): void {
  const seen = new Set<number>();
  for (const value of values) {
    if (seen.has(value)) throw new BootstrapConfigError(`servers: ${what} ${value} is used twice`);
    seen.add(value);
  }
}

function pathList(value: unknown, where: string, maxLevel: number): string[] {
  if (!Array.isArray(value)) throw new BootstrapConfigError(`${where}: a list of paths, not ${show(value)}`);
  return value.map((text, i) => {
    try {
      const path = LwM2mPath.parse(String(text));
      if (path.level > maxLevel)
        throw new InvalidPathError(`${path} is deeper than ${maxLevel === 2 ? 'an instance' : 'allowed'}`);
      return path.toString();
    } catch (err) {
      throw new BootstrapConfigError(`${where}[${i}]: ${(err as Error).message}`);
    }
  });
}

function hexOrBuffer(value: unknown, where: string): Buffer {
  if (Buffer.isBuffer(value)) return Buffer.from(value);
  if (typeof value === 'string') {
    const hex = value.replace(/^0x/i, '');
    if (hex.length > 0 && hex.length % 2 === 0 && /^[0-9a-fA-F]+$/.test(hex)) return Buffer.from(hex, 'hex');
  }
  throw new BootstrapConfigError(`${where}: hex text (e.g. "0a1b2c...") or a Buffer`);
}

/** Key or certificate bytes: a Buffer, hex, base64, or PEM (converted to DER: SPKI, PKCS#8 or the certificate). */
function keyBytes(value: unknown, where: string, kind: 'public' | 'private' | 'certificate'): Buffer {
  if (Buffer.isBuffer(value)) return Buffer.from(value);
  if (typeof value !== 'string' || value.trim().length === 0)
    throw new BootstrapConfigError(`${where}: missing (a Buffer, hex, base64 or PEM)`);
  const text = value.trim();
  if (text.includes('-----BEGIN')) {
    try {
      if (kind === 'certificate') return new X509Certificate(text).raw;
      if (kind === 'private') return createPrivateKey(text).export({ type: 'pkcs8', format: 'der' });
      return createPublicKey(text).export({ type: 'spki', format: 'der' });
    } catch (err) {
      throw new BootstrapConfigError(`${where}: the PEM cannot be read: ${(err as Error).message}`);
    }
  }
  if (/^[0-9a-fA-F]+$/.test(text) && text.length % 2 === 0) return Buffer.from(text, 'hex');
  if (/^[A-Za-z0-9+/]+={0,2}$/.test(text)) return Buffer.from(text, 'base64');
  throw new BootstrapConfigError(`${where}: not hex, base64 or PEM`);
}

function show(value: unknown): string {
  if (value === undefined) return 'nothing';
  if (typeof value === 'string') return JSON.stringify(value);
  if (Buffer.isBuffer(value)) return `a Buffer of ${value.length} bytes`;
  try {
    return JSON.stringify(value) ?? String(value);
  } catch {
    return String(value);
  }
}

// ---- store ---------------------------------------------------------------------------------------

/**
 * Where configurations live: per endpoint name, and defaults by pattern (`*`, `sensor-*`, `/^dev-\d+$/i`).
 * `get` resolves an endpoint: its own entry first, then the first pattern (in the order added) that matches, then `*`.
 * Asynchronous like the other stores (a file or Redis store plugs in here).
 */
export interface BootstrapConfigStore {
  get(endpoint: string): Promise<BootstrapConfig | undefined>;
  /** Adds or replaces the configuration of an endpoint name or pattern; plain data is checked (BootstrapConfigError). */
  set(endpointOrPattern: string, config: unknown): Promise<BootstrapConfig>;
  remove(endpointOrPattern: string): Promise<boolean>;
  list(): Promise<Array<{ key: string; config: BootstrapConfig }>>;
}

/** `*` and `?` globs, or `/regex/flags`; null for a plain endpoint name. */
export function endpointPattern(key: string): RegExp | null {
  const regex = /^\/(.+)\/([a-z]*)$/.exec(key);
  if (regex) {
    try {
      return new RegExp(regex[1], regex[2]);
    } catch (err) {
      throw new BootstrapConfigError(`endpoint pattern ${key}: ${(err as Error).message}`);
    }
  }
  if (!key.includes('*') && !key.includes('?')) return null;
  const body = key
    .replace(/[.+^${}()|[\]\\]/g, '\\$&')
    .replace(/\*/g, '.*')
    .replace(/\?/g, '.');
  return new RegExp(`^${body}$`);
}

export class MemoryBootstrapConfigStore implements BootstrapConfigStore {
  private readonly exact = new Map<string, BootstrapConfig>();
  private readonly patterns = new Map<string, { pattern: RegExp; config: BootstrapConfig }>();

  constructor(private readonly model: ObjectModelLookup = builtinModel()) {}

  async get(endpoint: string): Promise<BootstrapConfig | undefined> {
    const own = this.exact.get(endpoint);
    if (own) return own;
    for (const [key, { pattern, config }] of this.patterns) {
      if (key === '*') continue;
      pattern.lastIndex = 0;
      if (pattern.test(endpoint)) return config;
    }
    return this.patterns.get('*')?.config;
  }

  async set(endpointOrPattern: string, config: unknown): Promise<BootstrapConfig> {
    if (typeof endpointOrPattern !== 'string' || endpointOrPattern.length === 0)
      throw new BootstrapConfigError('a configuration needs an endpoint name or pattern');
    const checked = parseBootstrapConfig(config, this.model);
    const pattern = endpointPattern(endpointOrPattern);
    if (pattern) {
      this.patterns.delete(endpointOrPattern);
      this.patterns.set(endpointOrPattern, { pattern, config: checked });
    } else this.exact.set(endpointOrPattern, checked);
    return checked;
  }

  async remove(endpointOrPattern: string): Promise<boolean> {
    return this.exact.delete(endpointOrPattern) || this.patterns.delete(endpointOrPattern);
  }

  async list(): Promise<Array<{ key: string; config: BootstrapConfig }>> {
    return [
      ...[...this.exact].map(([key, config]) => ({ key, config })),
      ...[...this.patterns].map(([key, { config }]) => ({ key, config })),
    ];
  }
}
