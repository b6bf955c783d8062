/**
 * Content negotiation with a device: which content formats to try, in order, for a Read, Observe, Write or Create
 * (and for composite operations), the one loop that tries them while the device refuses one (4.06/4.15), and the
 * format a response without Content-Format is taken to be in.
 * Byte counts in this file's comments are garbage per operation, from `node build/bench/read-allocs.js --profile`.
 */
import type { IncomingResponse } from '../coap/types';
import { isSupportedFormat } from '../content';
import { ContentFormat } from '../content/types';
import type { LwM2mPath } from '../model/path';
import type { ResourceDefinition } from '../model/types';
import { badRequest } from './operations/request-errors';
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
  return formatsForTarget(registration, targetKind(path, resource), supported);
}

/** What a target is, for the formats that can carry it: whole nodes, or a single value as text or as opaque. */
type TargetKind = 0 | 1 | 2;
const NODE: TargetKind = 0;
const TEXT: TargetKind = 1;
const OPAQUE: TargetKind = 2;

function targetKind(path: LwM2mPath, resource: ResourceDefinition | undefined): TargetKind {
  const single = (path.isResource() && resource && !resource.multiple) || path.isResourceInstance();
  if (!single) return NODE;
  return resource?.type === 'opaque' ? OPAQUE : TEXT;
}

function formatsForTarget(
  registration: Registration,
  kind: TargetKind,
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
  if (kind !== NODE) formats.push(kind === OPAQUE ? ContentFormat.OPAQUE : ContentFormat.TEXT);
  return formats.filter((format, index) => supported(format) && formats.indexOf(format) === index);
}

function isNodeFormat(format: number): boolean {
  return format !== ContentFormat.TEXT && format !== ContentFormat.OPAQUE && format !== ContentFormat.LINK_FORMAT;
}

/** Candidate lists for one kind of registration, by TargetKind: [whole nodes, single value as text, as opaque]. */
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
    const build = (kind: TargetKind) => Object.freeze(formatsForTarget(registration, kind, supported));
    lists = Object.freeze([build(NODE), build(TEXT), build(OPAQUE)] as const);
    LISTS_BY_KEY.set(key, lists);
  }
  return lists;
}

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
  const kind = targetKind(path, resource);
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
  return lists !== undefined ? lists[kind] : formatsForTarget(registration, kind, supported);
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

/**
 * The formats to try in order: the forced one, the given candidates, or the memoised candidates for the target;
 * each one checked to be one we can encode and decode. Never empty: a 'bad-request' error says there is none.
 */
export function formatsToTry(
  registration: Registration,
  path: LwM2mPath,
  resource: ResourceDefinition | undefined,
  forced: number | undefined,
  operation: string,
  candidates?: readonly number[],
): readonly number[] {
  if (forced !== undefined) {
    if (!isSupportedFormat(forced)) throw badRequest(`content format ${forced} is not supported`, registration, path);
    return [forced];
  }
  if (candidates !== undefined) {
    for (const format of candidates) {
      if (!isSupportedFormat(format)) throw badRequest(`content format ${format} is not supported`, registration, path);
    }
  }
  const formats = candidates ?? memoCandidateFormats(registration, path, resource, isSupportedFormat);
  if (formats.length === 0) throw badRequest(`no content format to ${operation} ${path} with`, registration, path);
  return formats;
}

/**
 * The formats of a composite operation: SenML CBOR or JSON (1.2 adds LwM2M CBOR as the compact answer), those the
 * device announced in that order, or the whole family when it announced none of them.
 */
export function compositeFormats(registration: Registration, forced: number | undefined): readonly number[] {
  // 1.2 adds LwM2M CBOR as the compact answer (no timestamps; SenML stays for the others).
  const family: readonly number[] =
    registration.lwm2mVersion === '1.2'
      ? [ContentFormat.LWM2M_CBOR, ContentFormat.SENML_CBOR, ContentFormat.SENML_JSON]
      : [ContentFormat.SENML_CBOR, ContentFormat.SENML_JSON];
  const announced = registration.supportedContentFormats.filter((format) => family.includes(format));
  return forced !== undefined ? [forced] : announced.length > 0 ? announced : family;
}

/** A response without Content-Format: text for a single value, TLV otherwise (what 1.0 clients send). */
export function defaultDecodeFormat(path: LwM2mPath, definition: ResourceDefinition | undefined): number {
  if (path.isResourceInstance() || (path.isResource() && definition && !definition.multiple)) {
    return definition?.type === 'opaque' ? ContentFormat.OPAQUE : ContentFormat.TEXT;
  }
  return ContentFormat.TLV;
}

/** 4.06 Not Acceptable or 4.15 Unsupported Content-Format: the device refuses the format; the next one is tried. */
export function refusesFormat(code: string): boolean {
  return code === '4.06' || code === '4.15';
}

/**
 * An operation tried in one content format after another (see negotiate): what it does in a format (`subject`
 * holds the call's own data, so that the steps can be shared by every call, allocated once), where the device's
 * answer is in its outcome, and what it makes of the outcome that ended the tries, in the format it was tried in.
 */
export interface FormatAttempts<S, T, R> {
  attempt(format: number, subject: S): Promise<T>;
  response(outcome: T): IncomingResponse;
  settle(outcome: T, format: number, subject: S): R;
}

/**
 * The one format-retry loop: tries `formats` (not empty, see formatsToTry) in order, moving on while the device
 * answers 4.06 or 4.15, and settles the last outcome (the device's error code, if it refused them all, is for the
 * operation to report).
 */
export function negotiate<S, T, R>(
  formats: readonly number[],
  subject: S,
  attempts: FormatAttempts<S, T, R>,
): Promise<R> {
  return attemptFrom(0, formats, subject, attempts);
}

/**
 * The tries from `formats[index]` on, chained with `.then` rather than an async function's awaits: a Read (one
 * try) pays one promise and one closure instead of the async function's frame, its promise and each await's
 * (about 250 bytes a call).
 */
function attemptFrom<S, T, R>(
  index: number,
  formats: readonly number[],
  subject: S,
  attempts: FormatAttempts<S, T, R>,
): Promise<R> {
  const format = formats[index];
  let attempt: Promise<T>;
  try {
    attempt = attempts.attempt(format, subject);
  } catch (err) {
    return Promise.reject(err); // as the async function did: a throw is a rejection
  }
  return attempt.then((outcome) =>
    index + 1 < formats.length && refusesFormat(attempts.response(outcome).code)
      ? attemptFrom(index + 1, formats, subject, attempts)
      : attempts.settle(outcome, format, subject),
  );
}
