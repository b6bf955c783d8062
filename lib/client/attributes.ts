/**
 * Notification attributes on the device side (LwM2M Core §5.1.2): what Write-Attributes stores per path
 * and how an observation finds the attributes that govern it.
 */
import type { LwM2mPath } from '../model/path';
import type { ResourceDefinition } from '../model/types';
import { ClientError } from './errors';

export type ClientLwm2mVersion = '1.0' | '1.1' | '1.2';

export interface ClientAttributes {
  pmin?: number;
  pmax?: number;
  gt?: number;
  lt?: number;
  st?: number;
  epmin?: number;
  epmax?: number;
  edge?: number;
  con?: number;
  hqmax?: number;
}

export type AttributeName = keyof ClientAttributes;

const BY_VERSION: Record<ClientLwm2mVersion, readonly AttributeName[]> = {
  '1.0': ['pmin', 'pmax', 'gt', 'lt', 'st'],
  '1.1': ['pmin', 'pmax', 'gt', 'lt', 'st', 'epmin', 'epmax'],
  '1.2': ['pmin', 'pmax', 'gt', 'lt', 'st', 'epmin', 'epmax', 'edge', 'con', 'hqmax'],
};
const INTEGER = new Set<AttributeName>(['pmin', 'pmax', 'epmin', 'epmax', 'hqmax', 'edge', 'con']);
/** Attributes that only make sense on a resource and are never inherited from an object or instance. */
const RESOURCE_ONLY = new Set<AttributeName>(['gt', 'lt', 'st', 'edge']);
const NUMERIC_TYPES = new Set(['integer', 'unsigned', 'float']);
/** The order attributes are listed in (Discover). */
const ORDER: readonly AttributeName[] = ['pmin', 'pmax', 'gt', 'lt', 'st', 'epmin', 'epmax', 'edge', 'con', 'hqmax'];

/**
 * Applies a Write-Attributes query (`pmin=10`, `gt=25.5`, `st` to remove st) to the attributes a path
 * has; returns the new set or throws ClientError('4.00') without changing anything.
 */
export function applyAttributeQuery(
  current: ClientAttributes | undefined,
  query: readonly string[],
  version: ClientLwm2mVersion,
  path: LwM2mPath,
  resource: ResourceDefinition | undefined,
): ClientAttributes {
  const next: ClientAttributes = { ...current };
  const allowed = BY_VERSION[version];
  if (query.length === 0) throw new ClientError('4.00', 'Write-Attributes without attributes');
  for (const item of query) {
    const eq = item.indexOf('=');
    const name = (eq < 0 ? item : item.slice(0, eq)) as AttributeName;
    if (!(allowed as readonly string[]).includes(name)) {
      throw new ClientError('4.00', `attribute "${name}" is not supported in LwM2M ${version}`);
    }
    if (RESOURCE_ONLY.has(name)) {
      if (path.level < 3) throw new ClientError('4.00', `attribute "${name}" applies to a resource, not ${path}`);
      const wanted = name === 'edge' ? resource?.type === 'boolean' : NUMERIC_TYPES.has(resource?.type ?? '');
      if (!wanted) throw new ClientError('4.00', `attribute "${name}" does not apply to ${path} (${resource?.type})`);
    }
    if (eq < 0) {
      delete next[name];
      continue;
    }
    const text = item.slice(eq + 1);
    const value = Number(text);
    if (text.trim() === '' || !Number.isFinite(value)) {
      throw new ClientError('4.00', `attribute ${name}=${text} is not a number`);
    }
    if (INTEGER.has(name) && (!Number.isInteger(value) || value < 0)) {
      throw new ClientError('4.00', `attribute ${name}=${text} must be a whole number >= 0`);
    }
    if ((name === 'edge' || name === 'con') && value > 1) throw new ClientError('4.00', `${name} must be 0 or 1`);
    if (name === 'st' && value < 0) throw new ClientError('4.00', 'st must be >= 0');
    next[name] = value;
  }
  if (next.pmin !== undefined && next.pmax !== undefined && next.pmax < next.pmin && next.pmax !== 0) {
    throw new ClientError('4.00', `pmax (${next.pmax}) is less than pmin (${next.pmin})`);
  }
  if (next.epmin !== undefined && next.epmax !== undefined && next.epmax < next.epmin && next.epmax !== 0) {
    throw new ClientError('4.00', `epmax (${next.epmax}) is less than epmin (${next.epmin})`);
  }
  if (next.lt !== undefined && next.gt !== undefined) {
    if (!(next.lt < next.gt)) throw new ClientError('4.00', `lt (${next.lt}) must be less than gt (${next.gt})`);
    if (next.st !== undefined && !(next.lt + 2 * next.st < next.gt)) {
      throw new ClientError('4.00', 'lt + 2*st must be less than gt');
    }
  }
  return next;
}

/**
 * The attributes that govern `path`: those of the object, then the instance, then the resource (and
 * resource instance), each level overriding the one above; pmin/pmax fall back to the Server object's
 * defaults. gt/lt/st/edge are taken from the observed path itself only.
 */
export function effectiveAttributes(
  stored: ReadonlyMap<string, ClientAttributes>,
  path: LwM2mPath,
  defaults: { pmin?: number; pmax?: number },
): ClientAttributes {
  const out: ClientAttributes = {};
  if (defaults.pmin !== undefined && defaults.pmin > 0) out.pmin = defaults.pmin;
  if (defaults.pmax !== undefined && defaults.pmax > 0) out.pmax = defaults.pmax;
  const ids = path.ids;
  let key = '';
  for (let level = 0; level < ids.length; level++) {
    key += '/' + ids[level];
    const attrs = stored.get(key);
    if (attrs === undefined) continue;
    const own = level === ids.length - 1;
    for (const name of ORDER) {
      const value = attrs[name];
      if (value === undefined) continue;
      if (RESOURCE_ONLY.has(name) && !own) continue;
      out[name] = value;
    }
  }
  return out;
}

/** Link-format parameters for Discover (`pmin=10`, ...). */
export function attributeParams(attrs: ClientAttributes | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  if (attrs === undefined) return out;
  for (const name of ORDER) {
    const value = attrs[name];
    if (value !== undefined) out[name] = String(value);
  }
  return out;
}
