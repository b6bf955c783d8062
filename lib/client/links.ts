/** The link-format payloads a device sends: its Register / Update object list, and Discover answers. */
import { serializeLinkFormat, type Link } from '../content/link-format';
import type { LwM2mPath } from '../model/path';
import { attributeParams, type ClientAttributes } from './attributes';
import { sortedSlots, type ClientObject } from './object-tree';

/** Objects never listed at registration (LwM2M 1.1 §6.2.1: Security and OSCORE). */
const UNLISTED = new Set([0, 21]);

export interface RegistrationLinksOptions {
  lwm2mVersion: '1.0' | '1.1' | '1.2';
  /** Alternate root path ('' = none). */
  rootPath: string;
  /** Content formats announced with `ct` on the root link (1.1+). */
  contentFormats: readonly number[];
}

/**
 * `</>;rt="oma.lwm2m";ct=110,</1>;ver=1.1,</1/0>,</3/0>,</3303/0>,</3303/1>` (1.1+), or
 * `</1/0>,</3/0>,</3303/0>` (1.0, root link only with an alternate root path).
 */
export function registrationLinks(objects: Iterable<ClientObject>, options: RegistrationLinksOptions): string {
  const root = options.rootPath;
  const links: Link[] = [];
  if (options.lwm2mVersion !== '1.0' || root !== '') {
    const params: Record<string, string> = { rt: 'oma.lwm2m' };
    if (options.lwm2mVersion !== '1.0' && options.contentFormats.length > 0) {
      params.ct = options.contentFormats.join(' ');
    }
    links.push({ uri: root === '' ? '/' : root, params });
  }
  const sorted = [...objects].filter((o) => !UNLISTED.has(o.id)).sort((a, b) => a.id - b.id);
  for (const object of sorted) {
    const base = `${root}/${object.id}`;
    const version = object.announcedVersion;
    const instanceIds = [...object.instances.keys()].sort((a, b) => a - b);
    if (version !== undefined && version !== '1.0') links.push({ uri: base, params: { ver: version } });
    else if (instanceIds.length === 0) links.push({ uri: base, params: {} });
    for (const id of instanceIds) links.push({ uri: `${base}/${id}`, params: {} });
  }
  return serializeLinkFormat(links);
}

/**
 * Discover (LwM2M Core §5.4.2): the object / instance / resource with its attributes, what lies below
 * it, and `dim` for multiple resources: `</3>,</3/0>,</3/0/0>,...,</3/0/6>;dim=2`.
 */
export function discoverLinks(
  object: ClientObject,
  path: LwM2mPath,
  attributes: ReadonlyMap<string, ClientAttributes>,
  lwm2mVersion: '1.0' | '1.1' | '1.2',
): string {
  const links: Link[] = [];
  const withAttrs = (uri: string, extra: Record<string, string> = {}): void => {
    links.push({ uri, params: { ...extra, ...attributeParams(attributes.get(uri)) } });
  };
  if (path.level === 1) {
    const params: Record<string, string> = {};
    if (lwm2mVersion !== '1.0' && object.announcedVersion !== undefined && object.announcedVersion !== '1.0') {
      params.ver = object.announcedVersion;
    }
    withAttrs(`/${object.id}`, params);
  }
  const instances =
    path.level === 1
      ? [...object.instances.values()].sort((a, b) => a.id - b.id)
      : [object.instances.get(path.instanceId!)!];
  for (const instance of instances) {
    const base = `/${object.id}/${instance.id}`;
    if (path.level <= 2) withAttrs(base);
    for (const slot of sortedSlots(instance)) {
      if (path.level === 3 && slot.id !== path.resourceId) continue;
      const extra: Record<string, string> = {};
      const content = slot.def.multiple ? slot.content(instance.path.append(slot.id)) : undefined;
      const ids = content instanceof Map ? [...content.keys()].sort((a, b) => a - b) : [];
      if (slot.def.multiple) extra.dim = String(ids.length);
      withAttrs(`${base}/${slot.id}`, extra);
      if (path.level === 3 && lwm2mVersion === '1.2') for (const id of ids) withAttrs(`${base}/${slot.id}/${id}`);
    }
  }
  return serializeLinkFormat(links);
}
