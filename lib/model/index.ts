/** The object model: paths, definitions (DDF XML and built-ins), the model registry and value conversion. */
export { LwM2mPath, InvalidPathError, ROOT } from './path';
export type {
  ResourceType,
  Operations,
  ResourceDefinition,
  ObjectDefinition,
  ObjectLink,
  ResourceValue,
  LwM2mSingleResource,
  LwM2mMultipleResource,
  LwM2mResource,
  LwM2mResourceInstance,
  LwM2mObjectInstance,
  LwM2mObject,
  LwM2mNode,
  ObjectModelLookup,
} from './types';
export { parseDdf, readDdf, ddfTypeToResourceType, DdfError } from './ddf';
export type { DdfDocument } from './ddf';
export {
  builtinDefinitions,
  parseDefinitionSet,
  isDefinitionSet,
  defaultUrn,
  compareVersions,
  DefinitionFormatError,
  DEFINITION_SET_FORMAT,
} from './builtins';
export { ObjectModel, findResourceByName, normaliseName } from './object-model';
export type { LoadFolderReport } from './object-model';
export { coerceValue, toPlain, fromPlain, ValueError } from './values';
export type {
  PlainValue,
  PlainResource,
  PlainMultipleResource,
  PlainInstance,
  PlainObject,
  ModelOptions,
} from './values';
