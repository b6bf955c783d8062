/**
 * The LwM2M object model: definitions (what a device's objects look like, from OMA DDF XML or our
 * built-in data) and the value tree (what a device returned or what we write to it).
 *
 * JavaScript shapes of resource values, per resource type:
 * - string, corelnk: string
 * - integer, unsigned: number when it is a safe integer (|v| <= 2^53-1), else bigint
 * - float: number
 * - boolean: boolean
 * - opaque: Buffer
 * - time: Date (LwM2M carries whole seconds since the Unix epoch)
 * - objlnk: ObjectLink `{ objectId, instanceId }` (65535:65535 is the null link)
 */

export type ResourceType =
  'string' | 'integer' | 'unsigned' | 'float' | 'boolean' | 'opaque' | 'time' | 'objlnk' | 'corelnk' | 'none';

/** R, W, RW, E, or '' (none, e.g. in the Security object where the server has no access). */
export type Operations = '' | 'R' | 'W' | 'RW' | 'E';

export interface ResourceDefinition {
  id: number;
  name: string;
  operations: Operations;
  multiple: boolean;
  mandatory: boolean;
  type: ResourceType;
  /** RangeEnumeration text as in the DDF, e.g. "0..100" or "1-255 bytes". */
  range?: string;
  units?: string;
  description?: string;
}

export interface ObjectDefinition {
  id: number;
  name: string;
  description?: string;
  /** The object's own version, "1.0" when the DDF gives none. */
  version: string;
  /** The LwM2M version the object was written for, "1.0" when the DDF gives none. */
  lwm2mVersion: string;
  urn?: string;
  multiple: boolean;
  mandatory: boolean;
  resources: Record<number, ResourceDefinition>;
}

export interface ObjectLink {
  objectId: number;
  instanceId: number;
}

export type ResourceValue = string | number | bigint | boolean | Buffer | Date | ObjectLink;

export interface LwM2mSingleResource {
  kind: 'resource';
  id: number;
  type: ResourceType;
  value: ResourceValue;
}

export interface LwM2mMultipleResource {
  kind: 'multipleResource';
  id: number;
  type: ResourceType;
  /** Resource instance id -> value. */
  instances: Map<number, ResourceValue>;
}

export type LwM2mResource = LwM2mSingleResource | LwM2mMultipleResource;

export interface LwM2mResourceInstance {
  kind: 'resourceInstance';
  /** The resource instance id. */
  id: number;
  type: ResourceType;
  value: ResourceValue;
}

export interface LwM2mObjectInstance {
  kind: 'instance';
  id: number;
  resources: Map<number, LwM2mResource>;
}

export interface LwM2mObject {
  kind: 'object';
  id: number;
  instances: Map<number, LwM2mObjectInstance>;
}

export type LwM2mNode = LwM2mObject | LwM2mObjectInstance | LwM2mResource | LwM2mResourceInstance;

/**
 * What the codecs and the server need of an object model (implemented by ObjectModel).
 * `version` is the object version a client announced (`</3303>;ver=1.1`); without it, or when that
 * version is unknown, the newest known definition of the object answers.
 */
export interface ObjectModelLookup {
  getObject(objectId: number, version?: string): ObjectDefinition | undefined;
  getResource(objectId: number, resourceId: number, version?: string): ResourceDefinition | undefined;
}
