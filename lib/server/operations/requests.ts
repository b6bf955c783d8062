/**
 * Building the requests of device operations and their results: a path's Uri-Path segments, the Execute
 * arguments, the path list and patch format of composite operations, the common result fields.
 */
import type { IncomingResponse } from '../../coap/types';
import { encodePaths } from '../../content';
import type { Link } from '../../content/link-format';
import { ContentFormat } from '../../content/types';
import type { LwM2mPath } from '../../model/path';
import type { LwM2mNode } from '../../model/types';
import type { Registration } from '../registration';
import type { OperationResult } from './results';

const SEGMENTS = new WeakMap<LwM2mPath, string[]>();

/**
 * A path's Uri-Path segments, built once per path (parsed paths are cached, so a flow reading the same
 * path reuses them) and shared by the requests and observations on it: frozen, never changed.
 */
export function segmentsOf(path: LwM2mPath): string[] {
  let segments = SEGMENTS.get(path);
  if (segments === undefined) {
    segments = Object.freeze(path.toSegments()) as string[];
    SEGMENTS.set(path, segments);
  }
  return segments;
}

export function result(
  registration: Registration,
  path: LwM2mPath,
  response: IncomingResponse,
  started: number,
  contentFormat?: number,
): OperationResult {
  return {
    endpoint: registration.endpoint,
    path: path.toString(),
    code: response.code,
    contentFormat,
    rttMs: Date.now() - started,
  };
}

/**
 * The path list of a Read-/Observe-Composite: SenML-ETCH in 1.2 (LwM2M CBOR cannot carry paths, so a
 * CBOR answer is asked with an ETCH CBOR list), SenML in 1.1.
 */
export function compositeRequestBody(
  registration: Registration,
  paths: LwM2mPath[],
  accept: number,
): { contentFormat: number; payload: Buffer } {
  const cbor = accept !== ContentFormat.SENML_JSON;
  const contentFormat =
    registration.lwm2mVersion === '1.2'
      ? cbor
        ? ContentFormat.SENML_ETCH_CBOR
        : ContentFormat.SENML_ETCH_JSON
      : cbor
        ? ContentFormat.SENML_CBOR
        : ContentFormat.SENML_JSON;
  return { contentFormat, payload: encodePaths(paths, contentFormat) };
}

/** Write-Composite body format: SenML-ETCH for a 1.2 device (SenML in 1.1; LwM2M CBOR as is). */
export function patchFormat(registration: Registration, format: number): number {
  if (registration.lwm2mVersion !== '1.2') return format;
  if (format === ContentFormat.SENML_JSON) return ContentFormat.SENML_ETCH_JSON;
  if (format === ContentFormat.SENML_CBOR) return ContentFormat.SENML_ETCH_CBOR;
  return format;
}

export function stripRoot(links: Link[], rootPath: string): Link[] {
  if (!rootPath) return links;
  return links.map((link) =>
    link.uri.startsWith(rootPath + '/') ? { ...link, uri: link.uri.slice(rootPath.length) } : link,
  );
}

export function isNode(value: unknown): value is LwM2mNode {
  if (typeof value !== 'object' || value === null) return false;
  const kind = (value as { kind?: unknown }).kind;
  return (
    (kind === 'object' ||
      kind === 'instance' ||
      kind === 'resource' ||
      kind === 'multipleResource' ||
      kind === 'resourceInstance') &&
    typeof (value as { id?: unknown }).id === 'number'
  );
}

/**
 * Execute arguments (LwM2M Core §5.4.5: `0='value',1`): a string as is, an array (index = digit),
 * or an object `{ "0": "value", "1": null }`.
 */
export function executeArguments(args: unknown): string {
  if (args === undefined || args === null || args === '') return '';
  if (typeof args === 'string') return args;
  if (typeof args === 'number') return String(args);
  const entries: [string, unknown][] = Array.isArray(args)
    ? args.map((value, index) => [String(index), value])
    : typeof args === 'object'
      ? Object.entries(args as Record<string, unknown>)
      : [];
  if (entries.length === 0 && typeof args !== 'object') {
    throw new Error(`Execute arguments must be a string, a list or an object, got ${typeof args}`);
  }
  return entries
    .map(([digit, value]) => {
      if (!/^\d$/.test(digit)) throw new Error(`Execute argument names are digits 0-9, got "${digit}"`);
      if (value === null || value === undefined || value === '') return digit;
      const text = String(value);
      if (text.includes("'")) throw new Error(`Execute argument ${digit} must not contain a quote (')`);
      return `${digit}='${text}'`;
    })
    .join(',');
}
