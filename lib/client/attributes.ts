/**
 * Notification attributes on the device side (LwM2M Core §5.1.2): what Write-Attributes stores per path
 * and how an observation finds the attributes that govern it.
 */
import {
  attributeSetProblem,
  attributeTargetProblem,
  attributeValueProblem,
  isAttributeOfVersion,
  isResourceOnly,
  notificationAttribute,
  NOTIFICATION_ATTRIBUTES,
  type AttributeVersion,
  type NotificationAttributeName,
} from '../model/attributes';
import type { LwM2mPath } from '../model/path';
import type { ResourceDefinition } from '../model/types';
import { isDecimalNumber } from '../content/values';
import { ClientError } from './errors';

/** The LwM2M version a simulated device speaks. */
export type ClientLwm2mVersion = AttributeVersion;

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

export type AttributeName = NotificationAttributeName;

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
  if (query.length === 0) throw new ClientError('4.00', 'Write-Attributes without attributes');
  for (const item of query) {
    const eq = item.indexOf('=');
    const name = eq < 0 ? item : item.slice(0, eq);
    const spec = notificationAttribute(name);
    if (spec === undefined || !isAttributeOfVersion(spec, version)) {
      throw new ClientError('4.00', `attribute "${name}" is not supported in LwM2M ${version}`);
    }
    const targetProblem = attributeTargetProblem(spec, path.level, resource);
    if (targetProblem !== undefined) throw new ClientError('4.00', `attribute "${name}" on ${path} ${targetProblem}`);
    if (eq < 0) {
      delete next[spec.name];
      continue;
    }
    const text = item.slice(eq + 1);
    // decimal numbers only (`1`, `-2.5`, `1e3`), as the link format writes them: not `0x10` nor ` 5`
    const value = isDecimalNumber(text) ? Number(text) : Number.NaN;
    if (!Number.isFinite(value)) throw new ClientError('4.00', `attribute ${name}=${text} is not a number`);
    const valueProblem = attributeValueProblem(spec, value);
    if (valueProblem !== undefined) throw new ClientError('4.00', `attribute ${name}=${text} ${valueProblem}`);
    next[spec.name] = value;
  }
  const setProblem = attributeSetProblem(next);
  if (setProblem !== undefined) throw new ClientError('4.00', setProblem);
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
    for (const spec of NOTIFICATION_ATTRIBUTES) {
      const value = attrs[spec.name];
      if (value === undefined) continue;
      if (!own && isResourceOnly(spec)) continue;
      out[spec.name] = value;
    }
  }
  return out;
}

/** Link-format parameters for Discover (`pmin=10`, ...). */
export function attributeParams(attrs: ClientAttributes | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  if (attrs === undefined) return out;
  for (const spec of NOTIFICATION_ATTRIBUTES) {
    const value = attrs[spec.name];
    if (value !== undefined) out[spec.name] = String(value);
  }
  return out;
}
