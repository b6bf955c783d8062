import { ContentFormat } from '../content/types';
import type { LwM2mPath } from '../model/path';
import type { ResourceDefinition } from '../model/types';
import type { Registration } from './registration';

/** Formats we can decode and encode for whole nodes, in the order we prefer them for 1.1+ devices. */
const PREFERRED_1_1 = [ContentFormat.SENML_CBOR, ContentFormat.SENML_JSON, ContentFormat.TLV];

/**
 * The formats to try, in order, for a Read/Observe (Accept) or a Write (Content-Format) to a device.
 * A 1.0 device must support TLV; a 1.1+ device tells us with `ct` on its root link what it supports
 * (when it does not, TLV is the one most clients implement). A single resource falls back on
 * text/plain (or opaque), which every client answers. The caller moves to the next on 4.06/4.15.
 */
export function candidateFormats(
  registration: Registration,
  path: LwM2mPath,
  resource: ResourceDefinition | undefined,
  supported: (format: number) => boolean,
): number[] {
  let formats: number[];
  if (registration.lwm2mVersion === '1.0') {
    formats = [ContentFormat.TLV];
  } else if (registration.supportedContentFormats.length > 0) {
    const announced = registration.supportedContentFormats;
    formats = PREFERRED_1_1.filter((format) => announced.includes(format));
    for (const format of announced) if (!formats.includes(format) && isNodeFormat(format)) formats.push(format);
    if (formats.length === 0) formats = [ContentFormat.TLV];
  } else {
    formats = [...PREFERRED_1_1];
  }
  if ((path.isResource() && resource && !resource.multiple) || path.isResourceInstance()) {
    formats.push(resource?.type === 'opaque' ? ContentFormat.OPAQUE : ContentFormat.TEXT);
  }
  return formats.filter((format, index) => supported(format) && formats.indexOf(format) === index);
}

function isNodeFormat(format: number): boolean {
  return format !== ContentFormat.TEXT && format !== ContentFormat.OPAQUE && format !== ContentFormat.LINK_FORMAT;
}

/** Candidate lists for one kind of registration: [whole nodes, single value as text, single value as opaque]. */
type CandidateLists = readonly [readonly number[], readonly number[], readonly number[]];

const LISTS_BY_KEY = new Map<string, CandidateLists>();
const LISTS_BY_ANNOUNCED = new WeakMap<readonly number[], CandidateLists>();
const LISTS_BY_SHORT = new Map<number, CandidateLists>();

/** Up to three 16-bit content formats and their count as one number (under 2^50); -1 when one is out of range. */
function shortKey(announced: readonly number[]): number {
  let key = announced.length;
  for (let i = 0; i < announced.length; i++) {
    const format = announced[i];
    if (!(format >= 0 && format <= 0xffff && Number.isInteger(format))) return -1;
    key = key * 0x10000 + format;
  }
  return key;
}

function listsFor(
  registration: Registration,
  key: string,
  supported: (format: number) => boolean,
): CandidateLists | undefined {
  let lists = LISTS_BY_KEY.get(key);
  if (lists === undefined) {
    if (LISTS_BY_KEY.size >= 1000) return undefined; // unusual announcements: computed per request
    const build = (resource: ResourceDefinition | undefined, path: LwM2mPath) =>
      Object.freeze(candidateFormats(registration, path, resource, supported));
    lists = Object.freeze([
      build(undefined, OBJECT_PATH),
      build(TEXT_RESOURCE, RESOURCE_PATH),
      build(OPAQUE_RESOURCE, RESOURCE_PATH),
    ]) as CandidateLists;
    LISTS_BY_KEY.set(key, lists);
  }
  return lists;
}

// Stand-ins to build the three list kinds: what matters is a single value or not, and opaque or not.
const OBJECT_PATH = { isResource: () => false, isResourceInstance: () => false } as unknown as LwM2mPath;
const RESOURCE_PATH = { isResource: () => true, isResourceInstance: () => false } as unknown as LwM2mPath;
const TEXT_RESOURCE = { multiple: false, type: 'string' } as unknown as ResourceDefinition;
const OPAQUE_RESOURCE = { multiple: false, type: 'opaque' } as unknown as ResourceDefinition;

/**
 * `candidateFormats` memoised: the list depends only on the device's version and announced formats
 * and on the target being a single value (text or opaque) or not, so the few distinct lists are built
 * once and shared by every registration (found through its `supportedContentFormats` array). Read-only.
 * `supported` must not change between calls (the server passes `isSupportedFormat`).
 */
export function memoCandidateFormats(
  registration: Registration,
  path: LwM2mPath,
  resource: ResourceDefinition | undefined,
  supported: (format: number) => boolean,
): readonly number[] {
  const single = (path.isResource() && resource && !resource.multiple) || path.isResourceInstance();
  const kind = single ? (resource?.type === 'opaque' ? 2 : 1) : 0;
  const announced = registration.supportedContentFormats;
  let lists: CandidateLists | undefined;
  if (registration.lwm2mVersion === '1.0') lists = listsFor(registration, '1.0', supported);
  else if (announced.length === 0) lists = listsFor(registration, '1.x', supported);
  else {
    // One to three formats (the usual announcement): keyed by their values as one number, cheaper than a
    // WeakMap lookup. More: keyed by the array (registrations are replaced, never changed in place).
    const key = announced.length <= 3 ? shortKey(announced) : -1;
    lists = key >= 0 ? LISTS_BY_SHORT.get(key) : LISTS_BY_ANNOUNCED.get(announced);
    if (lists === undefined) {
      lists = listsFor(registration, '1.x:' + announced.join(','), supported);
      if (lists !== undefined) {
        if (key >= 0) LISTS_BY_SHORT.set(key, lists);
        else LISTS_BY_ANNOUNCED.set(announced, lists);
      }
    }
  }
  return lists !== undefined ? lists[kind] : candidateFormats(registration, path, resource, supported);
}

/**
 * The formats for a Create whose instance has no resources, from the device's candidates (in their order).
 * SenML cannot say it: a pack with no records names no instance, so its id is lost and Anjay answers 4.00.
 * TLV can (an instance TLV of length 0; an empty body when the device picks the id); so can LwM2M CBOR (1.2,
 * `{[3303,7]: {}}`) when the id is given. Without an id the SenML candidates stay as the last resort (an empty pack
 * still means "an instance with nothing in it, you pick the id"); with one they are dropped. An empty list: nothing
 * the device supports can carry it, and the caller says so.
 */
export function emptyInstanceFormats(candidates: readonly number[], withId: boolean): number[] {
  const carries = (format: number) =>
    format === ContentFormat.TLV || format === ContentFormat.OLD_TLV || (withId && format === ContentFormat.LWM2M_CBOR);
  const able = candidates.filter(carries);
  return withId ? able : [...able, ...candidates.filter((format) => !carries(format))];
}

/** True when a Create of an empty instance (with its id, or not) can go in `format` (see emptyInstanceFormats). */
export function carriesEmptyInstance(format: number, withId: boolean): boolean {
  return !withId || emptyInstanceFormats([format], true).length > 0;
}
