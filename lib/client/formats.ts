/**
 * The content formats a client speaks: those it accepts and announces (`ct`), and which one answers a
 * Read, decodes a Write or carries a composite operation.
 */
import { ContentFormat } from '../content/types';
import { formatName, isSupportedFormat } from '../content';
import type { LwM2mPath } from '../model/path';
import type { LwM2mNode, ResourceDefinition } from '../model/types';
import type { ClientLwm2mVersion } from './attributes';
import { ClientError } from './errors';

const FORMATS_1_0 = [ContentFormat.TLV, ContentFormat.OLD_TLV, ContentFormat.JSON, ContentFormat.OLD_JSON];
const FORMATS_1_1 = [
  ContentFormat.SENML_JSON,
  ContentFormat.SENML_CBOR,
  ContentFormat.TLV,
  ContentFormat.JSON,
  ContentFormat.CBOR,
];
/** Formats that carry an instance or an object (the others carry one value). */
const MULTI_VALUE = new Set<number>([
  ContentFormat.TLV,
  ContentFormat.SENML_CBOR,
  ContentFormat.SENML_JSON,
  ContentFormat.JSON,
  ContentFormat.OLD_TLV,
  ContentFormat.OLD_JSON,
]);

export class ClientFormats {
  /** Content formats we accept in Write and answer in (Accept). */
  readonly accepted: ReadonlySet<number>;
  /** Content formats announced with `ct`. */
  readonly announced: readonly number[];
  /** The multi-value format that answers requests without Accept (and is the Bootstrap `pct`). */
  readonly multiFormat: number;

  /** @param contentFormats the `contentFormats` option (default per LwM2M version) */
  constructor(lwm2mVersion: ClientLwm2mVersion, contentFormats: number[] | undefined) {
    const announced = contentFormats ?? (lwm2mVersion === '1.0' ? FORMATS_1_0 : FORMATS_1_1);
    for (const format of announced) {
      if (!isSupportedFormat(format)) throw new RangeError(`content format ${format} is not supported`);
    }
    const preferred = announced.find((format) => MULTI_VALUE.has(format));
    this.multiFormat = preferred ?? ContentFormat.TLV;
    this.accepted = new Set([ContentFormat.TEXT, ContentFormat.OPAQUE, ...announced]);
    // 1.1 defines `ct` as the one format the client prefers (Wakaama's server accepts nothing else); 1.2 a list
    this.announced =
      lwm2mVersion === '1.1' ? [preferred ?? announced[0]].filter((f) => f !== undefined) : [...announced];
  }

  /** The format of an answer carrying `node`: the Accept asked for, else text/opaque for one value, else ours. */
  responseFormat(node: LwM2mNode, accept: number | undefined): number {
    if (accept !== undefined) {
      if (!this.accepted.has(accept)) {
        throw new ClientError('4.06', `content format ${formatName(accept)} is not supported`);
      }
      return accept;
    }
    if (node.kind === 'resource' || node.kind === 'resourceInstance') {
      return node.type === 'opaque' ? ContentFormat.OPAQUE : ContentFormat.TEXT;
    }
    return this.multiFormat;
  }

  /**
   * The format a request's payload is in: its Content-Format, else what the target implies.
   * @param def the definition of the resource at `path` (levels 3 and 4), when the object has it
   */
  requestFormat(contentFormat: number | undefined, path: LwM2mPath, def: ResourceDefinition | undefined): number {
    let format = contentFormat;
    if (format === undefined) {
      const single = path.level === 4 || (path.level === 3 && def !== undefined && !def.multiple);
      format = single ? (def?.type === 'opaque' ? ContentFormat.OPAQUE : ContentFormat.TEXT) : this.multiFormat;
    }
    if (!this.accepted.has(format)) {
      throw new ClientError('4.15', `content format ${formatName(format)} is not supported`);
    }
    return format;
  }

  /** The format of a composite operation (SenML JSON or CBOR, default CBOR); else ClientError `code`. */
  compositeFormat(format: number | undefined, code: '4.06' | '4.15'): number {
    const chosen = format ?? ContentFormat.SENML_CBOR;
    if ((chosen !== ContentFormat.SENML_JSON && chosen !== ContentFormat.SENML_CBOR) || !this.accepted.has(chosen)) {
      throw new ClientError(code, `composite operations use SenML JSON or CBOR, not ${formatName(chosen)}`);
    }
    return chosen;
  }
}
