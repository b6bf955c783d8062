/**
 * Notification attributes on the server side: checking what a flow asks to write against the device's LwM2M
 * version and the target (the rules are the model's attribute table), and the Write-Attributes query.
 */
import { Lwm2mError } from '../errors';
import {
  ATTRIBUTES_BY_VERSION,
  attributeSetProblem,
  attributeTargetProblem,
  attributeValueProblem,
  isAttributeOfVersion,
  notificationAttribute,
} from '../model/attributes';
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

export class AttributeError extends Lwm2mError {
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
  const query: string[] = [];
  const entries = Object.entries(attributes).filter(([, value]) => value !== undefined);
  if (entries.length === 0) throw new AttributeError('no attributes given');
  for (const [name, value] of entries) {
    const spec = notificationAttribute(name);
    if (spec === undefined) throw new AttributeError(`unknown attribute "${name}"`);
    if (!isAttributeOfVersion(spec, version)) {
      const allowed = ATTRIBUTES_BY_VERSION[version];
      throw new AttributeError(`attribute "${name}" is not part of LwM2M ${version} (allowed: ${allowed.join(', ')})`);
    }
    // where an attribute may be set holds for removing it too: the device refuses either with 4.00
    const targetProblem = attributeTargetProblem(spec, pathLevel, resource);
    if (targetProblem !== undefined) throw new AttributeError(`attribute "${name}" ${targetProblem}`);
    if (value === null) {
      query.push(name);
      continue;
    }
    if (typeof value !== 'number' || !Number.isFinite(value)) {
      throw new AttributeError(`attribute "${name}" must be a number, got ${JSON.stringify(value)}`);
    }
    const valueProblem = attributeValueProblem(spec, value);
    if (valueProblem !== undefined) throw new AttributeError(`attribute "${name}" ${valueProblem}`);
    query.push(`${name}=${value}`);
  }
  const setProblem = attributeSetProblem(attributes);
  if (setProblem !== undefined) throw new AttributeError(setProblem);
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
