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
