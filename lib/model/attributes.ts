/**
 * The LwM2M attribute table (Core §5.1.2 in 1.0/1.1, §7.3.2 in 1.2): for each attribute the version that
 * brought it, its value type and range, and the levels it may be set at. Write-Attributes validation on the
 * server, the device side of Write-Attributes and Discover, and link-format parsing all read this one table.
 *
 * What the spec says and this table keeps:
 * - <NOTIFICATION> class: pmin, pmax, gt, lt, st (1.0); epmin, epmax (1.1); edge, con, hqmax (1.2).
 *   pmin/pmax/epmin/epmax are whole seconds >= 0, hqmax a whole count >= 0, edge and con 0 or 1;
 *   gt and lt are any number (the 1.2.1 grammar's lack of a sign is a known erratum, OMA
 *   LwM2M_for_Developers #563), st a number >= 0.
 * - gt/lt/st need a numeric resource, edge a boolean one; these four attach to a resource or resource
 *   instance only and are never inherited from the object or instance above. The others may be set on an
 *   object, an instance, a resource or a resource instance.
 * - pmax 0 (likewise epmax 0) means "no maximum" (1.1 §5.1.2: "The value of 0, means pmax MUST be
 *   ignored"), so it never conflicts with pmin; otherwise pmax must not be below pmin, lt must be below gt
 *   and lt + 2*st below gt.
 * - <PROPERTIES> class, as a device states them in a Register payload or Discover answer: dim 0-255,
 *   ssid 1-65534 (0 and 65535 are reserved).
 */
import type { ResourceType } from './types';

/** The LwM2M versions whose attribute sets differ. */
export type AttributeVersion = '1.0' | '1.1' | '1.2';

export type NotificationAttributeName =
  'pmin' | 'pmax' | 'gt' | 'lt' | 'st' | 'epmin' | 'epmax' | 'edge' | 'con' | 'hqmax';

/** One notification attribute of the table. */
export interface NotificationAttributeSpec {
  readonly name: NotificationAttributeName;
  /** The first LwM2M version that defines it. */
  readonly since: AttributeVersion;
  /** 'integer': a whole number; 'float': any finite number. */
  readonly type: 'integer' | 'float';
  /** Smallest allowed value (every notification attribute but gt and lt has one). */
  readonly min?: number;
  /** Largest allowed value (edge and con: 1). */
  readonly max?: number;
  /** What the number counts, where it is a duration (pmin, pmax, epmin, epmax: seconds); named in its errors. */
  readonly unit?: 'seconds';
  /**
   * The resource types it applies to, when it is limited to some (gt/lt/st: numeric, edge: boolean). Such an
   * attribute attaches to a resource or resource instance only and is not inherited from above.
   */
  readonly resourceTypes?: ReadonlySet<ResourceType>;
}

const NUMERIC: ReadonlySet<ResourceType> = new Set<ResourceType>(['integer', 'unsigned', 'float']);
const BOOLEAN: ReadonlySet<ResourceType> = new Set<ResourceType>(['boolean']);

/** Every notification attribute, in the order they are listed (Discover answers, Write-Attributes queries). */
export const NOTIFICATION_ATTRIBUTES: readonly NotificationAttributeSpec[] = [
  { name: 'pmin', since: '1.0', type: 'integer', min: 0, unit: 'seconds' },
  { name: 'pmax', since: '1.0', type: 'integer', min: 0, unit: 'seconds' },
  { name: 'gt', since: '1.0', type: 'float', resourceTypes: NUMERIC },
  { name: 'lt', since: '1.0', type: 'float', resourceTypes: NUMERIC },
  { name: 'st', since: '1.0', type: 'float', min: 0, resourceTypes: NUMERIC },
  { name: 'epmin', since: '1.1', type: 'integer', min: 0, unit: 'seconds' },
  { name: 'epmax', since: '1.1', type: 'integer', min: 0, unit: 'seconds' },
  { name: 'edge', since: '1.2', type: 'integer', min: 0, max: 1, resourceTypes: BOOLEAN },
  { name: 'con', since: '1.2', type: 'integer', min: 0, max: 1 },
  { name: 'hqmax', since: '1.2', type: 'integer', min: 0 },
];

/** The attribute names in listing order. */
export const NOTIFICATION_ATTRIBUTE_NAMES: readonly NotificationAttributeName[] = NOTIFICATION_ATTRIBUTES.map(
  (spec) => spec.name,
);

const SPEC_BY_NAME = new Map<string, NotificationAttributeSpec>(
  NOTIFICATION_ATTRIBUTES.map((spec) => [spec.name, spec]),
);
const VERSION_ORDER: Record<AttributeVersion, number> = { '1.0': 0, '1.1': 1, '1.2': 2 };

/** The notification attributes a version defines, in listing order. */
export const ATTRIBUTES_BY_VERSION: Readonly<Record<AttributeVersion, readonly NotificationAttributeName[]>> = {
  '1.0': namesUpTo('1.0'),
  '1.1': namesUpTo('1.1'),
  '1.2': namesUpTo('1.2'),
};

function namesUpTo(version: AttributeVersion): NotificationAttributeName[] {
  return NOTIFICATION_ATTRIBUTES.filter((spec) => VERSION_ORDER[spec.since] <= VERSION_ORDER[version]).map(
    (spec) => spec.name,
  );
}

/** The table entry of a notification attribute, or undefined for any other name. */
export function notificationAttribute(name: string): NotificationAttributeSpec | undefined {
  return SPEC_BY_NAME.get(name);
}

/** True when `spec` is part of LwM2M `version`. */
export function isAttributeOfVersion(spec: NotificationAttributeSpec, version: AttributeVersion): boolean {
  return VERSION_ORDER[spec.since] <= VERSION_ORDER[version];
}

/** True for gt/lt/st/edge: set on a resource (or resource instance) only, never inherited from above. */
export function isResourceOnly(spec: NotificationAttributeSpec): boolean {
  return spec.resourceTypes !== undefined;
}

/**
 * Why `value` is not a valid value of the attribute (`must be a whole number of seconds >= 0, got 1.5`), or undefined
 * when it is. `value` is a finite number (checking that is the caller's: it parses text or takes JSON).
 */
export function attributeValueProblem(spec: NotificationAttributeSpec, value: number): string | undefined {
  const { min, max } = spec;
  if (max !== undefined && min !== undefined && (value !== Math.trunc(value) || value < min || value > max)) {
    return `must be ${min} or ${max}, got ${value}`;
  }
  if (spec.type === 'integer' && (!Number.isInteger(value) || (min !== undefined && value < min))) {
    return `must be a whole number${spec.unit ? ' of ' + spec.unit : ''} >= ${min ?? 0}, got ${value}`;
  }
  if (min !== undefined && value < min) return `must be >= ${min}, got ${value}`;
  return undefined;
}

/**
 * Why the attribute cannot be set on a path of `level` (0 root .. 4 resource instance) whose resource is
 * `resource` (undefined when not known), or undefined when it can. The resource-only attributes need a
 * resource level and, when the resource is known, a type they apply to.
 */
export function attributeTargetProblem(
  spec: NotificationAttributeSpec,
  level: number,
  resource: { readonly name: string; readonly type: ResourceType } | undefined,
): string | undefined {
  const types = spec.resourceTypes;
  if (types === undefined) return undefined;
  if (level < 3) return 'applies to a resource, not to an object or instance';
  if (resource !== undefined && !types.has(resource.type)) {
    return `needs a ${types === BOOLEAN ? 'boolean' : 'numeric'} resource; ${resource.name} is ${resource.type}`;
  }
  return undefined;
}

/** Numeric notification attribute values of one path (or of one request), as the set rules read them. */
export type NotificationAttributeValues = Partial<Record<NotificationAttributeName, number | null | undefined>>;

/**
 * Why a set of attributes breaks the rules between attributes (pmax not below pmin unless 0, the same for
 * epmax and epmin, lt below gt, lt + 2*st below gt), or undefined when it does not. Absent attributes and
 * null (removed) are not compared.
 */
export function attributeSetProblem(values: NotificationAttributeValues): string | undefined {
  const { pmin, pmax, epmin, epmax, gt, lt, st } = values;
  if (typeof pmin === 'number' && typeof pmax === 'number' && pmax !== 0 && pmax < pmin) {
    return `pmax (${pmax}) must not be less than pmin (${pmin})`;
  }
  if (typeof epmin === 'number' && typeof epmax === 'number' && epmax !== 0 && epmax < epmin) {
    return `epmax (${epmax}) must not be less than epmin (${epmin})`;
  }
  if (typeof lt === 'number' && typeof gt === 'number') {
    if (!(lt < gt)) return `lt (${lt}) must be less than gt (${gt})`;
    if (typeof st === 'number' && !(lt + 2 * st < gt)) return `lt + 2*st (${lt + 2 * st}) must be less than gt (${gt})`;
  }
  return undefined;
}

/** The <PROPERTIES> class attributes with a defined range (a device states them about itself). */
export const PROPERTY_RANGES: Readonly<Record<'dim' | 'ssid', readonly [min: number, max: number]>> = {
  /** The number of instances of a multiple resource. */
  dim: [0, 255],
  /** A Short Server ID (0 and 65535 are reserved). */
  ssid: [1, 65534],
};
