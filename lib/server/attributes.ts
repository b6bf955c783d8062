import type { ResourceDefinition } from '../model/types';
import type { Lwm2mVersion } from './registration';

/**
 * Notification attributes (LwM2M Core §5.1.2 / 7.3): written with Write-Attributes, they govern when a
 * device sends notifications. A value of `null` removes the attribute (`?pmin` with no value).
 */
export interface NotificationAttributes {
  pmin?: number | null;
  pmax?: number | null;
  gt?: number | null;
  lt?: number | null;
  st?: number | null;
  /** 1.1+ */
  epmin?: number | null;
  /** 1.1+ */
  epmax?: number | null;
  /** 1.2+: notify on a boolean's rising (1) or falling (0) edge. */
  edge?: 0 | 1 | null;
  /** 1.2+: 1 = confirmable notifications, 0 = non-confirmable. */
  con?: 0 | 1 | null;
  /** 1.2+: max time in queue (seconds). */
  hqmax?: number | null;
}

const ATTRIBUTES_BY_VERSION: Record<Lwm2mVersion, readonly (keyof NotificationAttributes)[]> = {
  '1.0': ['pmin', 'pmax', 'gt', 'lt', 'st'],
  '1.1': ['pmin', 'pmax', 'gt', 'lt', 'st', 'epmin', 'epmax'],
  '1.2': ['pmin', 'pmax', 'gt', 'lt', 'st', 'epmin', 'epmax', 'edge', 'con', 'hqmax'],
};

const NUMERIC_RESOURCE_TYPES = new Set(['integer', 'unsigned', 'float']);
const INTEGER_ATTRIBUTES = new Set(['pmin', 'pmax', 'epmin', 'epmax', 'hqmax']);

export class AttributeError extends Error {
  override name = 'AttributeError';
}

/**
 * Checks attributes against the device's LwM2M version and the target, and returns the Uri-Query
 * items of the Write-Attributes request (`pmin=10`, `gt=25.5`, `st` to remove st).
 * `resource` is the definition when the path is a resource (gt/lt/st need a numeric resource).
 */
export function attributesToQuery(
  attributes: NotificationAttributes,
  version: Lwm2mVersion,
  pathLevel: number,
  resource?: ResourceDefinition,
): string[] {
  const allowed = ATTRIBUTES_BY_VERSION[version];
  const query: string[] = [];
  const entries = Object.entries(attributes).filter(([, value]) => value !== undefined);
  if (entries.length === 0) throw new AttributeError('no attributes given');
  for (const [name, value] of entries) {
    if (!(allowed as readonly string[]).includes(name)) {
      const known = Object.values(ATTRIBUTES_BY_VERSION).some((list) => (list as readonly string[]).includes(name));
      throw new AttributeError(
        known
          ? `attribute "${name}" is not part of LwM2M ${version} (allowed: ${allowed.join(', ')})`
          : `unknown attribute "${name}"`,
      );
    }
    if (value === null) {
      query.push(name);
      continue;
    }
    if (typeof value !== 'number' || !Number.isFinite(value)) {
      throw new AttributeError(`attribute "${name}" must be a number, got ${JSON.stringify(value)}`);
    }
    if (INTEGER_ATTRIBUTES.has(name) && (!Number.isInteger(value) || value < 0)) {
      throw new AttributeError(`attribute "${name}" must be a whole number of seconds >= 0, got ${value}`);
    }
    if ((name === 'edge' || name === 'con') && value !== 0 && value !== 1) {
      throw new AttributeError(`attribute "${name}" must be 0 or 1, got ${value}`);
    }
    if (name === 'st' && value < 0) throw new AttributeError(`attribute "st" must be >= 0, got ${value}`);
    if (name === 'gt' || name === 'lt' || name === 'st') {
      if (pathLevel < 3)
        throw new AttributeError(`attribute "${name}" applies to a resource, not to an object or instance`);
      if (resource && !NUMERIC_RESOURCE_TYPES.has(resource.type)) {
        throw new AttributeError(`attribute "${name}" needs a numeric resource; ${resource.name} is ${resource.type}`);
      }
    }
    if (name === 'edge' && pathLevel < 3) throw new AttributeError('attribute "edge" applies to a resource');
    if (name === 'edge' && resource && resource.type !== 'boolean') {
      throw new AttributeError(`attribute "edge" needs a boolean resource; ${resource.name} is ${resource.type}`);
    }
    query.push(`${name}=${value}`);
  }

  const { pmin, pmax, gt, lt, st, epmin, epmax } = attributes;
  if (typeof pmin === 'number' && typeof pmax === 'number' && pmax < pmin) {
    throw new AttributeError(`pmax (${pmax}) must not be less than pmin (${pmin})`);
  }
  if (typeof epmin === 'number' && typeof epmax === 'number' && epmax < epmin) {
    throw new AttributeError(`epmax (${epmax}) must not be less than epmin (${epmin})`);
  }
  if (typeof lt === 'number' && typeof gt === 'number') {
    if (!(lt < gt)) throw new AttributeError(`lt (${lt}) must be less than gt (${gt})`);
    if (typeof st === 'number' && !(lt + 2 * st < gt)) {
      throw new AttributeError(`lt + 2*st (${lt + 2 * st}) must be less than gt (${gt})`);
    }
  }
  return query;
}

/** Parses attributes from a msg (strings from a form are accepted); unknown keys are reported. */
export function normaliseAttributes(input: unknown): NotificationAttributes {
  if (input === undefined || input === null) return {};
  if (typeof input !== 'object' || Array.isArray(input)) {
    throw new AttributeError('attributes must be an object like { "pmin": 10, "pmax": 60 }');
  }
  const result: Record<string, number | null> = {};
  for (const [name, raw] of Object.entries(input as Record<string, unknown>)) {
    if (raw === undefined || raw === '') continue;
    if (raw === null) {
      result[name] = null;
      continue;
    }
    const value = typeof raw === 'string' ? Number(raw.trim()) : raw;
    if (typeof value !== 'number' || Number.isNaN(value)) {
      throw new AttributeError(`attribute "${name}" must be a number, got ${JSON.stringify(raw)}`);
    }
    result[name] = value;
  }
  return result as NotificationAttributes;
}
