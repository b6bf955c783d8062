// Device credentials: the SecurityInfo a device must authenticate with, the SecurityStore interface (memory one in
// memory-security-store.ts), parsing credentials from plain data, and the checks a Register passes against them.
import { Lwm2mError } from '../errors';
import { createHash, createPublicKey } from 'node:crypto';
import type { Peer } from '../transport/types';

/**
 * Device credentials (Leshan's SecurityInfo): how one endpoint must authenticate. An endpoint with an
 * entry here may only register over DTLS, with exactly this identity. X.509 devices need no entry when
 * their certificate chains to the trust store and its CN is the endpoint name; an entry pins the mode.
 */
export type SecurityInfo = PskSecurityInfo | RpkSecurityInfo | X509SecurityInfo;

export interface PskSecurityInfo {
  endpoint: string;
  mode: 'psk';
  /** PSK identity as the device sends it (UTF-8). */
  identity: string;
  key: Buffer;
}

export interface RpkSecurityInfo {
  endpoint: string;
  mode: 'rpk';
  /** The device's public key, SubjectPublicKeyInfo DER. */
  publicKey: Buffer;
}

export interface X509SecurityInfo {
  endpoint: string;
  mode: 'x509';
}

/**
 * Where device credentials live. Asynchronous like the other stores (a Redis store plugs in here).
 * A PSK identity and a public key belong to one endpoint at most.
 */
export interface SecurityStore {
  getByEndpoint(endpoint: string): Promise<SecurityInfo | undefined>;
  getByPskIdentity(identity: string): Promise<PskSecurityInfo | undefined>;
  getByPublicKey(spki: Buffer): Promise<RpkSecurityInfo | undefined>;
  /** Adds or replaces the entry of `info.endpoint`; returns the one replaced. Throws SecurityInfoError on a clash. */
  add(info: SecurityInfo): Promise<SecurityInfo | undefined>;
  remove(endpoint: string): Promise<SecurityInfo | undefined>;
  list(): Promise<SecurityInfo[]>;
}

export class SecurityInfoError extends Lwm2mError {
  override name = 'SecurityInfoError';
}

/** Identity clashes shared by every store: one PSK identity or public key per endpoint. */
export function clashMessage(info: SecurityInfo, holder: SecurityInfo): string {
  return info.mode === 'psk'
    ? `PSK identity "${info.identity}" already belongs to endpoint "${holder.endpoint}"`
    : `this public key already belongs to endpoint "${holder.endpoint}"`;
}

/** SHA-256 of the SubjectPublicKeyInfo, hex: how a raw public key is indexed and shown. */
export function publicKeyFingerprint(spki: Buffer): string {
  return createHash('sha256').update(spki).digest('hex');
}

// ---- from plain data (a msg, a JSON or CSV file) --------------------------------------------------

const MAX_PSK_IDENTITY_BYTES = 128; // RFC 4279 allows 2^16-1; device stacks use far less
const MIN_PSK_KEY_BYTES = 4;
const MAX_PSK_KEY_BYTES = 64;

/**
 * Builds a SecurityInfo from plain data: `{endpoint, mode: 'psk', identity, key}` (key as hex text or a
 * Buffer), `{endpoint, mode: 'rpk', publicKey}` (PEM, hex or base64 of the SPKI DER, or a Buffer), or
 * `{endpoint, mode: 'x509'}`. Throws SecurityInfoError saying what is wrong.
 */
export function parseSecurityInfo(input: unknown): SecurityInfo {
  if (input === null || typeof input !== 'object' || Array.isArray(input))
    throw new SecurityInfoError('device credentials must be an object {endpoint, mode, ...}');
  const record = input as Record<string, unknown>;
  const endpoint = record.endpoint;
  if (typeof endpoint !== 'string' || endpoint.length === 0)
    throw new SecurityInfoError('device credentials need an endpoint name');
  const mode = typeof record.mode === 'string' ? record.mode.toLowerCase() : record.mode;
  switch (mode) {
    case 'psk': {
      const identity = record.identity;
      if (typeof identity !== 'string' || identity.length === 0)
        throw new SecurityInfoError(`endpoint "${endpoint}": a PSK needs an identity`);
      if (Buffer.byteLength(identity, 'utf8') > MAX_PSK_IDENTITY_BYTES)
        throw new SecurityInfoError(`endpoint "${endpoint}": PSK identity longer than ${MAX_PSK_IDENTITY_BYTES} bytes`);
      const key = bytesOf(record.key, `endpoint "${endpoint}": the PSK key`);
      if (key.length < MIN_PSK_KEY_BYTES || key.length > MAX_PSK_KEY_BYTES)
        throw new SecurityInfoError(
          `endpoint "${endpoint}": the PSK key must be ${MIN_PSK_KEY_BYTES}-${MAX_PSK_KEY_BYTES} bytes, not ${key.length}`,
        );
      return { endpoint, mode: 'psk', identity, key };
    }
    case 'rpk':
      return { endpoint, mode: 'rpk', publicKey: spkiOf(record.publicKey, endpoint) };
    case 'x509':
      return { endpoint, mode: 'x509' };
    default:
      throw new SecurityInfoError(`endpoint "${endpoint}": mode must be psk, rpk or x509, not ${String(record.mode)}`);
  }
}

/** Plain data for a msg or a listing; keys only when asked for (they do not belong in debug output). */
export function securityInfoToPlain(info: SecurityInfo, withSecrets = false): Record<string, unknown> {
  switch (info.mode) {
    case 'psk':
      return withSecrets
        ? { endpoint: info.endpoint, mode: 'psk', identity: info.identity, key: info.key.toString('hex') }
        : { endpoint: info.endpoint, mode: 'psk', identity: info.identity };
    case 'rpk':
      return {
        endpoint: info.endpoint,
        mode: 'rpk',
        publicKey: info.publicKey.toString('base64'),
        fingerprint: publicKeyFingerprint(info.publicKey),
      };
    case 'x509':
      return { endpoint: info.endpoint, mode: 'x509' };
  }
}

/**
 * A credentials file: a JSON array of entries (as parseSecurityInfo takes), or CSV with a header line
 * naming the columns (`endpoint,mode,identity,key` or `endpoint,mode,publicKey`). Errors name the line.
 */
export function parseSecurityFile(text: string): SecurityInfo[] {
  const trimmed = text.trim();
  if (trimmed.length === 0) return [];
  if (trimmed.startsWith('[')) {
    let entries: unknown;
    try {
      entries = JSON.parse(trimmed);
    } catch (err) {
      throw new SecurityInfoError(`credentials file is not valid JSON: ${(err as Error).message}`);
    }
    return (entries as unknown[]).map((entry, i) => withLocation(() => parseSecurityInfo(entry), `entry ${i + 1}`));
  }
  const lines = trimmed.split(/\r?\n/);
  const header = lines[0].split(',').map((name) => name.trim());
  if (!header.includes('endpoint'))
    throw new SecurityInfoError('a CSV credentials file needs a header line naming its columns (endpoint,mode,...)');
  const infos: SecurityInfo[] = [];
  for (let i = 1; i < lines.length; i++) {
    const line = lines[i].trim();
    if (line.length === 0 || line.startsWith('#')) continue;
    const cells = line.split(',').map((cell) => cell.trim());
    const record: Record<string, string> = {};
    header.forEach((name, column) => (record[name] = cells[column] ?? ''));
    infos.push(withLocation(() => parseSecurityInfo(record), `line ${i + 1}`));
  }
  return infos;
}

function withLocation<T>(parse: () => T, where: string): T {
  try {
    return parse();
  } catch (err) {
    if (err instanceof SecurityInfoError) throw new SecurityInfoError(`${where}: ${err.message}`);
    throw err;
  }
}

function bytesOf(value: unknown, what: string): Buffer {
  if (Buffer.isBuffer(value)) return Buffer.from(value);
  if (typeof value === 'string') {
    const hex = value.replace(/^0x/i, '');
    if (hex.length > 0 && hex.length % 2 === 0 && /^[0-9a-fA-F]+$/.test(hex)) return Buffer.from(hex, 'hex');
    throw new SecurityInfoError(`${what} must be hex text (e.g. "0a1b2c...") or a Buffer`);
  }
  throw new SecurityInfoError(`${what} is missing`);
}

function spkiOf(value: unknown, endpoint: string): Buffer {
  let der: Buffer;
  if (Buffer.isBuffer(value)) der = value;
  else if (typeof value === 'string' && value.includes('-----BEGIN')) {
    try {
      der = createPublicKey(value).export({ type: 'spki', format: 'der' });
    } catch (err) {
      throw new SecurityInfoError(
        `endpoint "${endpoint}": the public key PEM cannot be read: ${(err as Error).message}`,
      );
    }
  } else if (typeof value === 'string' && /^[0-9a-fA-F]+$/.test(value) && value.length % 2 === 0) {
    der = Buffer.from(value, 'hex');
  } else if (typeof value === 'string' && value.length > 0) {
    der = Buffer.from(value, 'base64');
  } else throw new SecurityInfoError(`endpoint "${endpoint}": an RPK entry needs the device's publicKey`);
  try {
    const key = createPublicKey({ key: der, format: 'der', type: 'spki' });
    if (key.asymmetricKeyType !== 'ec' || key.asymmetricKeyDetails?.namedCurve !== 'prime256v1')
      throw new SecurityInfoError(`endpoint "${endpoint}": the public key must be EC P-256 (secp256r1)`);
    // Normalise (a PEM may carry explicit parameters; the handshake compares the DER byte for byte).
    return key.export({ type: 'spki', format: 'der' });
  } catch (err) {
    if (err instanceof SecurityInfoError) throw err;
    throw new SecurityInfoError(`endpoint "${endpoint}": not a SubjectPublicKeyInfo: ${(err as Error).message}`);
  }
}

// ---- who may register as what ---------------------------------------------------------------------

/** Why a device may not register, update or de-register as it asked: answered with 4.03 and this text. */
export class SecurityCheckError extends Lwm2mError {
  override name = 'SecurityCheckError';
  declare readonly code: '4.03';
  constructor(message: string) {
    super(message, '4.03');
  }
}

/**
 * The endpoint name a Register stands for, checked against the channel it came over (LwM2M 1.1 §7.1.9 and
 * Leshan's rules): over DTLS the identity must belong to that endpoint; a 1.1 Register without `ep` takes
 * its name from the identity; an endpoint with credentials may not register over plain CoAP.
 */
export async function authorizeRegister(
  store: SecurityStore,
  requestedEndpoint: string | undefined,
  peer: Peer,
): Promise<string | undefined> {
  const security = peer.security;
  if (security === undefined) {
    if (requestedEndpoint === undefined) return undefined;
    const info = await store.getByEndpoint(requestedEndpoint);
    if (info)
      throw new SecurityCheckError(`endpoint "${requestedEndpoint}" has ${info.mode} credentials: register over DTLS`);
    return requestedEndpoint;
  }
  switch (security.mode) {
    case 'psk': {
      const info = await store.getByPskIdentity(security.identity);
      const endpoint = requestedEndpoint ?? info?.endpoint ?? security.identity;
      if (!info) throw new SecurityCheckError(`PSK identity "${security.identity}" is no longer known`);
      if (info.endpoint !== endpoint)
        throw new SecurityCheckError(
          `PSK identity "${security.identity}" belongs to endpoint "${info.endpoint}", not "${endpoint}"`,
        );
      return endpoint;
    }
    case 'rpk': {
      // The DTLS layer names an RPK session by the endpoint whose key it is.
      const endpoint = requestedEndpoint ?? security.identity;
      if (endpoint !== security.identity)
        throw new SecurityCheckError(`this public key belongs to endpoint "${security.identity}", not "${endpoint}"`);
      return endpoint;
    }
    case 'x509': {
      const endpoint = requestedEndpoint ?? security.identity;
      const info = await store.getByEndpoint(endpoint);
      if (info && info.mode !== 'x509')
        throw new SecurityCheckError(`endpoint "${endpoint}" has ${info.mode} credentials, not a certificate`);
      if (security.identity !== endpoint)
        throw new SecurityCheckError(`certificate CN "${security.identity}" does not match endpoint "${endpoint}"`);
      return endpoint;
    }
  }
}

/**
 * Update and De-register must come over the channel the registration was made on: same security mode
 * and identity (a registration id alone must not let another device take over or remove it).
 */
export function checkSameChannel(
  registered: { security?: { mode: string; identity: string } },
  peer: Peer,
  endpoint: string,
): void {
  const before = registered.security;
  const now = peer.security;
  if (before === undefined && now === undefined) return;
  if (before === undefined || now === undefined)
    throw new SecurityCheckError(
      `endpoint "${endpoint}" registered over ${before ? 'DTLS' : 'plain CoAP'}: use the same channel`,
    );
  if (before.mode !== now.mode || before.identity !== now.identity)
    throw new SecurityCheckError(`endpoint "${endpoint}" registered with another ${before.mode} identity`);
}
