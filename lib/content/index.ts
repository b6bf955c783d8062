/**
 * The one face of the content formats: encode / decode a value tree for a path in a CoAP
 * Content-Format, plus the multi-path functions used by composite operations, Notify and Send.
 *
 * Every function here throws only ContentCodecError (coapCode '4.00' for malformed content or a
 * value that does not fit the model, '4.06' when a node cannot be represented in the format,
 * '4.15' for a format we do not support or that cannot carry what was asked).
 * Byte counts in this file's comments are garbage per operation, from `node build/bench/read-allocs.js --profile`.
 */
import type { LwM2mPath } from '../model/path';
import type { LwM2mNode, ObjectModelLookup } from '../model/types';
import { ContentCodecError, ContentFormat, type NodeCodec, type TimestampedNode } from './types';
import { textCodec } from './text';
import { opaqueCodec } from './opaque';
import { tlvCodec11542, tlvCodec1542 } from './tlv';
import { parseSenmlJson, senmlJsonCodec, serializeSenmlJson } from './senml-json';
import { parseSenmlCbor, senmlCborCodec, serializeSenmlCbor } from './senml-cbor';
import { omaJsonCodec11543, omaJsonCodec1543, parseOmaJson } from './oma-json';
import { cborCodec } from './cbor';
import {
  decodeLwm2mCborNodes,
  decodeLwm2mCborPatch,
  decodeLwm2mCborTimestamped,
  encodeLwm2mCborNodes,
  encodeLwm2mCborPatch,
  lwm2mCborCodec,
} from './lwm2m-cbor';
import { checkDeletionPaths, deletionRecords, nodesToRecords, type OutRecord } from './senml-encode';
import {
  recordsToNodes,
  recordsToPatch,
  recordsToPaths,
  recordsToTimestamped,
  type JsonFlavor,
  type PatchContent,
  type SenmlRecord,
} from './senml';

export { ContentCodecError, ContentFormat } from './types';
export type { ContentFormatNumber, NodeCodec, TimestampedNode } from './types';
export {
  parseLinkFormat,
  serializeLinkFormat,
  decodeDiscover,
  decodeAttributes,
  parseContentFormats,
  isLwm2mRootLink,
} from './link-format';
export type { Link, LinkAttributes, DiscoveredLink } from './link-format';
export { parseSenmlJson } from './senml-json';
export { parseSenmlCbor } from './senml-cbor';
export type { PatchContent, SenmlRecord } from './senml';

const CODECS = new Map<number, NodeCodec>();
for (const codec of [
  textCodec,
  opaqueCodec,
  cborCodec,
  senmlJsonCodec,
  senmlCborCodec,
  tlvCodec1542,
  tlvCodec11542,
  omaJsonCodec1543,
  omaJsonCodec11543,
  lwm2mCborCodec,
]) {
  CODECS.set(codec.format, codec);
}

const NAMES = new Map<number, string>([
  [ContentFormat.TEXT, 'text/plain'],
  [ContentFormat.LINK_FORMAT, 'application/link-format'],
  [ContentFormat.OPAQUE, 'application/octet-stream'],
  [ContentFormat.CBOR, 'application/cbor'],
  [ContentFormat.SENML_JSON, 'application/senml+json'],
  [ContentFormat.SENML_CBOR, 'application/senml+cbor'],
  [ContentFormat.SENML_ETCH_JSON, 'application/senml-etch+json'],
  [ContentFormat.SENML_ETCH_CBOR, 'application/senml-etch+cbor'],
  [ContentFormat.OLD_TLV, 'application/vnd.oma.lwm2m+tlv (1542)'],
  [ContentFormat.OLD_JSON, 'application/vnd.oma.lwm2m+json (1543)'],
  [ContentFormat.TLV, 'application/vnd.oma.lwm2m+tlv'],
  [ContentFormat.JSON, 'application/vnd.oma.lwm2m+json'],
  [ContentFormat.LWM2M_CBOR, 'application/vnd.oma.lwm2m+cbor'],
]);

/** True when encodeNode/decodeNode handle `format` (link format 40 is separate: see link-format.ts). */
export function isSupportedFormat(format: number): boolean {
  return CODECS.has(format);
}

/** Media type of a content format, e.g. 'application/senml+json'; 'content-format 1234' when unknown. */
export function formatName(format: number): string {
  return NAMES.get(format) ?? `content-format ${format}`;
}

/** The codec for `format`; ContentCodecError('4.15') when there is none. */
export function codecFor(format: number): NodeCodec {
  const codec = CODECS.get(format);
  if (!codec) throw new ContentCodecError(`unsupported content format ${formatName(format)}`, '4.15');
  return codec;
}

/** Runs `fn`, turning anything but a ContentCodecError into one (with the reason kept). */
function guard<T>(what: string, fn: () => T): T {
  try {
    return fn();
  } catch (err) {
    throw guarded(what, err);
  }
}

/** What `guard` throws for `err`: a ContentCodecError as is, anything else as one prefixed with `what`. */
function guarded(what: string, err: unknown): ContentCodecError {
  if (err instanceof ContentCodecError) return err;
  return new ContentCodecError(`${what}: ${(err as Error)?.message ?? String(err)}`);
}

function asBuffer(bytes: Buffer | Uint8Array): Buffer {
  if (Buffer.isBuffer(bytes)) return bytes;
  if (bytes instanceof Uint8Array) return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  throw new ContentCodecError('payload must be a Buffer');
}

/** Encodes `node`, the node at `path`, in `format`. */
export function encodeNode(node: LwM2mNode, format: number, path: LwM2mPath, model: ObjectModelLookup): Buffer {
  const codec = codecFor(format);
  // Not through `guard`: its message (the path's text, the codec's name) and closure cost about 400 bytes a
  // call, and this runs for every value written; the message is built only when the encoding fails.
  try {
    return codec.encode(node, path, model);
  } catch (err) {
    throw guarded(`cannot encode ${path} as ${codec.name}`, err);
  }
}

/**
 * Decodes a payload that answers for `path`: an LwM2mObject for /3, an LwM2mObjectInstance for
 * /3/0, an LwM2mSingleResource or LwM2mMultipleResource for /3/0/7 (as the model defines it), an
 * LwM2mResourceInstance for /3/0/7/1.
 */
export function decodeNode(bytes: Buffer, format: number, path: LwM2mPath, model: ObjectModelLookup): LwM2mNode {
  const codec = codecFor(format);
  // Not through `guard` (see encodeNode): about 400 bytes less garbage per Read answer or notification decoded.
  try {
    return codec.decode(asBuffer(bytes), path, model);
  } catch (err) {
    throw guarded(`invalid ${codec.name} payload for ${path}`, err);
  }
}

interface MultiFormat {
  /** `allowNull`: accept `"v": null` (patch records). */
  parse(bytes: Buffer, allowNull?: boolean): SenmlRecord[];
  serialize?(records: readonly OutRecord[]): Buffer;
  flavor: JsonFlavor;
  what: string;
  /** Carries Write-Composite deletions (`"v": null`, LwM2M 1.2). */
  patch?: boolean;
}

const MULTI = new Map<number, MultiFormat>([
  [
    ContentFormat.SENML_JSON,
    { parse: parseSenmlJson, serialize: serializeSenmlJson, flavor: 'senml', what: 'SenML JSON', patch: true },
  ],
  [
    ContentFormat.SENML_CBOR,
    { parse: parseSenmlCbor, serialize: serializeSenmlCbor, flavor: 'senml', what: 'SenML CBOR', patch: true },
  ],
  // RFC 8790: the same records; in LwM2M 1.2 the bodies of FETCH (Read-/Observe-Composite) and iPATCH (Write-Composite)
  [
    ContentFormat.SENML_ETCH_JSON,
    { parse: parseSenmlJson, serialize: serializeSenmlJson, flavor: 'senml', what: 'SenML-ETCH JSON', patch: true },
  ],
  [
    ContentFormat.SENML_ETCH_CBOR,
    { parse: parseSenmlCbor, serialize: serializeSenmlCbor, flavor: 'senml', what: 'SenML-ETCH CBOR', patch: true },
  ],
  [ContentFormat.JSON, { parse: parseOmaJson, flavor: 'oma', what: 'LwM2M JSON' }],
  [ContentFormat.OLD_JSON, { parse: parseOmaJson, flavor: 'oma', what: 'LwM2M JSON' }],
]);

function multiFormat(format: number, operation: string): MultiFormat {
  const multi = MULTI.get(format);
  if (!multi) {
    throw new ContentCodecError(`${formatName(format)} cannot carry ${operation}`, '4.15');
  }
  return multi;
}

/**
 * Decodes values with their timestamps (Notify / Send with SenML or OMA JSON). Records are grouped
 * by absolute time, in order of first appearance (records without time form one group, `time`
 * undefined). With `basePath`, each group yields one entry holding the node at `basePath`; without,
 * one entry per group and record path (a resource or resource instance node).
 * Single-path formats (TLV, text, opaque, CBOR) need `basePath` and give one entry without time.
 * LwM2M CBOR has no time: one untimed entry at `basePath`, or one per value path without it.
 */
export function decodeTimestamped(
  bytes: Buffer,
  format: number,
  model: ObjectModelLookup,
  basePath?: LwM2mPath,
): TimestampedNode[] {
  if (format === ContentFormat.LWM2M_CBOR) {
    return guard(`invalid ${formatName(format)} payload`, () =>
      decodeLwm2mCborTimestamped(asBuffer(bytes), model, basePath),
    );
  }
  const multi = MULTI.get(format);
  if (!multi) {
    if (basePath && CODECS.has(format)) return [{ path: basePath, node: decodeNode(bytes, format, basePath, model) }];
    multiFormat(format, 'values for several paths');
  }
  const { parse, flavor, what } = multi as MultiFormat;
  return guard(`invalid ${formatName(format)} payload`, () =>
    recordsToTimestamped(parse(asBuffer(bytes)), model, flavor, what, basePath),
  );
}

/**
 * Composite decoding (Read-Composite response, Send): path string -> node. Without `paths`, one node
 * per record path ("/3/0/9" -> resource, "/3/0/7/0" -> resource instance); with `paths` (the request's),
 * the node at each requested path built from the records below it, paths without records left out.
 * A path given twice (time series) is an error: use decodeTimestamped.
 */
export function decodeNodes(
  bytes: Buffer,
  format: number,
  model: ObjectModelLookup,
  paths?: readonly LwM2mPath[],
): Map<string, LwM2mNode> {
  if (format === ContentFormat.LWM2M_CBOR) {
    return guard(`invalid ${formatName(format)} payload`, () => decodeLwm2mCborNodes(asBuffer(bytes), model, paths));
  }
  const { parse, flavor, what } = multiFormat(format, 'values for several paths');
  return guard(`invalid ${formatName(format)} payload`, () =>
    recordsToNodes(parse(asBuffer(bytes)), model, flavor, what, paths),
  );
}

/** Composite encoding (Write-Composite): path string -> node, each record naming its full path. */
export function encodeNodes(nodes: ReadonlyMap<string, LwM2mNode>, format: number, model: ObjectModelLookup): Buffer {
  if (format === ContentFormat.LWM2M_CBOR) {
    return guard(`cannot encode nodes as ${formatName(format)}`, () => encodeLwm2mCborNodes(nodes, model));
  }
  const multi = multiFormat(format, 'values for several paths');
  if (!multi.serialize)
    throw new ContentCodecError(`${formatName(format)} is not used for composite operations`, '4.15');
  const serialize = multi.serialize;
  return guard(`cannot encode nodes as ${formatName(format)}`, () => serialize(nodesToRecords(nodes, model)));
}

/**
 * The paths of a Read-Composite / Observe-Composite request body (records with names only): SenML
 * JSON/CBOR (110/112, LwM2M 1.1) or SenML-ETCH JSON/CBOR (320/322, LwM2M 1.2). LwM2M CBOR cannot
 * carry one (4.15); it is only an answer format (Accept).
 */
export function decodePaths(bytes: Buffer, format: number): LwM2mPath[] {
  const { parse, what } = multiFormat(format, 'a list of paths');
  return guard(`invalid ${formatName(format)} payload`, () => recordsToPaths(parse(asBuffer(bytes)), what));
}

/** A Read-Composite / Observe-Composite request body: `[{"n":"/3/0/1"},{"n":"/1"}]`. */
export function encodePaths(paths: readonly LwM2mPath[], format: number): Buffer {
  const multi = multiFormat(format, 'a list of paths');
  if (!multi.serialize)
    throw new ContentCodecError(`${formatName(format)} is not used for composite operations`, '4.15');
  const records: OutRecord[] = new Array(paths.length);
  for (let i = 0; i < paths.length; i++) records[i] = { n: paths[i].toString() };
  return multi.serialize(records);
}

function patchFormat(format: number): MultiFormat | undefined {
  if (format === ContentFormat.LWM2M_CBOR) return undefined;
  const multi = MULTI.get(format);
  if (!multi?.patch) throw new ContentCodecError(`${formatName(format)} cannot carry a Write-Composite patch`, '4.15');
  return multi;
}

/**
 * A Write-Composite (iPATCH) body that may delete resource instances (LwM2M 1.2): `updates` is
 * path string -> node, one per resource or resource instance path written; `deletions` the resource
 * instances to delete, named by records with `"v": null` (SenML JSON/CBOR 110/112, SenML-ETCH
 * 320/322, RFC 8790 §3.2) or by a null value (LwM2M CBOR 11544). A record without any value is
 * malformed (RFC 8790: every Patch Record carries a value), as is a deletion of anything but a
 * resource instance, or of a path also written.
 */
export function decodePatch(bytes: Buffer, format: number, model: ObjectModelLookup): PatchContent {
  const multi = patchFormat(format);
  return guard(`invalid ${formatName(format)} payload`, () => {
    const payload = asBuffer(bytes);
    if (!multi) return decodeLwm2mCborPatch(payload, model);
    return recordsToPatch(multi.parse(payload, true), model, multi.what);
  });
}

/**
 * Encodes a Write-Composite writing `updates` (path string -> node) and deleting `deletions`
 * (resource instance paths): records `{"n":"/3/0/7/1","v":null}` in the SenML formats, a null value
 * in LwM2M CBOR. With no deletions this is encodeNodes.
 */
export function encodePatch(
  updates: ReadonlyMap<string, LwM2mNode>,
  deletions: readonly LwM2mPath[],
  format: number,
  model: ObjectModelLookup,
): Buffer {
  const multi = patchFormat(format);
  return guard(`cannot encode a Write-Composite as ${formatName(format)}`, () => {
    if (!multi) return encodeLwm2mCborPatch(updates, checkDeletionPaths(deletions, model), model);
    const records = nodesToRecords(updates, model);
    const written = new Set<string>();
    for (const record of records) written.add(record.n as string);
    const checked = checkDeletionPaths(deletions, model, written);
    return (multi.serialize as (records: readonly OutRecord[]) => Buffer)(records.concat(deletionRecords(checked)));
  });
}
