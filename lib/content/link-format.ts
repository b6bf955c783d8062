/**
 * CoRE Link Format (RFC 6690, content format 40): parser, serializer and the LwM2M reading of a
 * Discover / Register link list (paths with their attributes).
 *
 * The parser is a single forward scan; it tolerates whitespace (including newlines) around links,
 * separators and "=" and a trailing comma, and rejects anything else that is not a link list with
 * ContentCodecError('4.00') naming the offset.
 */
import {
  attributeValueProblem,
  notificationAttribute,
  PROPERTY_RANGES,
  type NotificationAttributeSpec,
} from '../model/attributes';
import { LwM2mPath } from '../model/path';
import { fail, isDecimalNumber } from './values';

export interface Link {
  /** The URI-Reference between < and >. */
  uri: string;
  /** Parameters in order of appearance; quoted values are unquoted; a parameter without value is `true`. */
  params: Record<string, string | true>;
}

function isWhitespace(c: number): boolean {
  return c === 0x20 || c === 0x09 || c === 0x0a || c === 0x0d;
}

/** RFC 6690 parmname characters (plus "*" for RFC 8187 extended names). */
function isParmnameChar(c: number): boolean {
  return (
    (c >= 0x61 && c <= 0x7a) ||
    (c >= 0x41 && c <= 0x5a) ||
    (c >= 0x30 && c <= 0x39) ||
    c === 0x21 ||
    c === 0x23 ||
    c === 0x24 ||
    c === 0x26 ||
    c === 0x2a ||
    c === 0x2b ||
    c === 0x2d ||
    c === 0x2e ||
    c === 0x5e ||
    c === 0x5f ||
    c === 0x60 ||
    c === 0x7c ||
    c === 0x7e
  );
}

/** RFC 6690 ptokenchar. */
function isPtokenChar(c: number): boolean {
  return (
    (c >= 0x61 && c <= 0x7a) ||
    (c >= 0x41 && c <= 0x5a) ||
    (c >= 0x30 && c <= 0x3a) || // digits and ":"
    c === 0x21 ||
    (c >= 0x23 && c <= 0x2b) || // # $ % & ' ( ) * +
    c === 0x2d ||
    c === 0x2e ||
    c === 0x2f ||
    (c >= 0x3c && c <= 0x40) || // < = > ? @
    c === 0x5b ||
    c === 0x5d ||
    c === 0x5e ||
    c === 0x5f ||
    c === 0x60 ||
    (c >= 0x7b && c <= 0x7e) // { | } ~
  );
}

function setParam(params: Record<string, string | true>, name: string, value: string | true): void {
  if (Object.prototype.hasOwnProperty.call(params, name)) return; // the first occurrence wins
  if (name === '__proto__') {
    Object.defineProperty(params, name, { value, enumerable: true, writable: true, configurable: true });
  } else {
    params[name] = value;
  }
}

/** Parses a link list; an empty (or all-whitespace) payload gives []. */
export function parseLinkFormat(text: string): Link[] {
  if (typeof text !== 'string') fail('link format: expected a string');
  const length = text.length;
  const links: Link[] = [];
  let p = 0;
  const skip = (): void => {
    while (p < length && isWhitespace(text.charCodeAt(p))) p++;
  };
  const error = (reason: string): never => fail(`link format: ${reason} at offset ${p}`);
  skip();
  while (p < length) {
    if (text.charCodeAt(p) !== 0x3c) error('expected "<"');
    const close = text.indexOf('>', p + 1);
    if (close < 0) error('unterminated "<"');
    const uri = text.slice(p + 1, close);
    for (let i = 0; i < uri.length; i++) {
      const c = uri.charCodeAt(i);
      if (c <= 0x20 || c === 0x3c || c === 0x22 || c === 0x7f) {
        p += 1 + i;
        error('invalid character in URI');
      }
    }
    p = close + 1;
    const params: Record<string, string | true> = {};
    skip();
    while (p < length && text.charCodeAt(p) === 0x3b) {
      p++;
      skip();
      const nameStart = p;
      while (p < length && isParmnameChar(text.charCodeAt(p))) p++;
      if (p === nameStart) error('expected a parameter name');
      const name = text.slice(nameStart, p);
      skip();
      let value: string | true = true;
      if (p < length && text.charCodeAt(p) === 0x3d) {
        p++;
        skip();
        if (p < length && text.charCodeAt(p) === 0x22) {
          p++;
          let out = '';
          let runStart = p;
          for (;;) {
            if (p >= length) error('unterminated quoted string');
            const c = text.charCodeAt(p);
            if (c === 0x22) break;
            if (c === 0x5c) {
              out += text.slice(runStart, p);
              p++;
              if (p >= length) error('unterminated quoted string');
              runStart = p;
            }
            p++;
          }
          value = out + text.slice(runStart, p);
          p++;
        } else {
          const valueStart = p;
          while (p < length && isPtokenChar(text.charCodeAt(p))) p++;
          if (p === valueStart) error(`expected a value for parameter "${name}"`);
          value = text.slice(valueStart, p);
        }
        skip();
      }
      setParam(params, name, value);
    }
    links.push({ uri, params });
    if (p >= length) break;
    if (text.charCodeAt(p) !== 0x2c) error('expected "," or ";"');
    p++;
    skip();
  }
  return links;
}

/** Parameters always written quoted (RFC 6690 defines them as quoted-string or relation-types). */
const ALWAYS_QUOTED = new Set(['rt', 'if', 'title', 'anchor', 'rel', 'rev']);

function needsQuotes(name: string, value: string): boolean {
  if (value === '' || ALWAYS_QUOTED.has(name)) return true;
  for (let i = 0; i < value.length; i++) if (!isPtokenChar(value.charCodeAt(i))) return true;
  return false;
}

/** Serializes links: `</3/0>;ver=1.1,</1/0>;rt="oma.lwm2m"`. */
export function serializeLinkFormat(links: readonly Link[]): string {
  let out = '';
  for (let l = 0; l < links.length; l++) {
    const { uri, params } = links[l];
    for (let i = 0; i < uri.length; i++) {
      const c = uri.charCodeAt(i);
      if (c <= 0x20 || c === 0x3c || c === 0x3e || c === 0x22 || c === 0x7f) {
        fail(`link format: invalid character in URI ${JSON.stringify(uri)}`);
      }
    }
    if (l > 0) out += ',';
    out += '<' + uri + '>';
    for (const name of Object.keys(params)) {
      for (let i = 0; i < name.length; i++) {
        if (!isParmnameChar(name.charCodeAt(i))) fail(`link format: invalid parameter name ${JSON.stringify(name)}`);
      }
      if (name === '') fail('link format: empty parameter name');
      const value = params[name];
      if (value === true) out += ';' + name;
      else if (needsQuotes(name, String(value))) {
        out += ';' + name + '="' + String(value).replace(/["\\]/g, '\\$&') + '"';
      } else out += ';' + name + '=' + value;
    }
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// LwM2M reading

/** LwM2M attributes of a Discover / Register link (LwM2M 1.1/1.2 Core §5.1.2, §6.2.x). */
export interface LinkAttributes {
  /** Number of resource instances of a multiple resource. */
  dim?: number;
  /** Object version, e.g. "1.1". */
  ver?: string;
  ssid?: number;
  pmin?: number;
  pmax?: number;
  gt?: number;
  lt?: number;
  st?: number;
  epmin?: number;
  epmax?: number;
  edge?: number;
  con?: number;
  hqmax?: number;
  /** Any other parameter, as given. */
  other?: Record<string, string | true>;
}

export interface DiscoveredLink {
  path: LwM2mPath;
  /** The link's URI as given (with the alternate root path, if any). */
  uri: string;
  attributes: LinkAttributes;
}

/**
 * The value of a ranged attribute (dim, ssid) of `link`; ContentCodecError('4.00') naming the link
 * when it is not an integer in its range. One exception: `ssid=0` on a Security object instance
 * (`objectId` 0) is read as 0, since some devices mark their Bootstrap-Server account so in a
 * Bootstrap-Discover answer (no LwM2M server has that id).
 */
function rangedAttribute(
  link: Link,
  name: keyof typeof PROPERTY_RANGES,
  value: string | true,
  objectId: number | undefined,
): number {
  const [min, max] = PROPERTY_RANGES[name];
  const n = value === true ? undefined : parseNonNegativeInteger(value);
  if (n === 0 && name === 'ssid' && objectId === 0) return 0;
  if (n === undefined || n < min || n > max) {
    fail(`link format: <${link.uri}> attribute ${name}=${value} is not an integer from ${min} to ${max}`);
  }
  return n;
}

/**
 * Checks the attributes of a link that have a defined range (dim 0-255, ssid 1-65534), as Register
 * payloads and Discover answers carry them; ContentCodecError('4.00') naming the link otherwise.
 * `objectId` is the object the link names (see rangedAttribute); by default read from a URI that
 * starts with it (`/0/1`).
 */
export function checkLinkAttributes(link: Link, objectId = leadingObjectId(link.uri)): void {
  const params = link.params;
  if (params.dim !== undefined) rangedAttribute(link, 'dim', params.dim, objectId);
  if (params.ssid !== undefined) rangedAttribute(link, 'ssid', params.ssid, objectId);
}

/** True when a link is the LwM2M root link (`rt="oma.lwm2m"`, possibly among other types). */
export function isLwm2mRootLink(link: Link): boolean {
  const rt = link.params.rt;
  if (typeof rt !== 'string') return false;
  for (const type of rt.split(' ')) if (type === 'oma.lwm2m') return true;
  return false;
}

/** Content formats listed in a `ct` parameter: `ct=110` or `ct="60 110"`. */
export function parseContentFormats(value: string | true | undefined): number[] {
  if (value === undefined) return [];
  if (value === true) fail('link format: "ct" without a value');
  const out: number[] = [];
  for (const part of value.split(' ')) {
    if (part === '') continue;
    const n = parseNonNegativeInteger(part);
    if (n === undefined || n > 65535) fail(`link format: invalid content format ${JSON.stringify(part)} in ct`);
    out.push(n);
  }
  return out;
}

/** The first path segment of `uri` as a number (`/3/0/7` -> 3), when it is one. */
function leadingObjectId(uri: string): number | undefined {
  if (uri.charCodeAt(0) !== 0x2f) return undefined;
  const end = uri.indexOf('/', 1);
  return parseNonNegativeInteger(end < 0 ? uri.slice(1) : uri.slice(1, end));
}

function parseNonNegativeInteger(text: string): number | undefined {
  if (text.length === 0 || text.length > 15) return undefined;
  let n = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i) - 48;
    if (c < 0 || c > 9) return undefined;
    n = n * 10 + c;
  }
  return n;
}

/**
 * Reads a Discover response or Register payload as LwM2M paths with attributes. A root link
 * (`rt="oma.lwm2m"`) is not returned; its URI is the alternate root path stripped from the other
 * links unless `rootPath` is given. Links that are not LwM2M paths are an error.
 */
export function decodeDiscover(text: string, rootPath?: string): DiscoveredLink[] {
  const links = parseLinkFormat(text);
  let root = rootPath;
  if (root === undefined) {
    const rootLink = links.find(isLwm2mRootLink);
    root = rootLink ? rootLink.uri : '';
  }
  if (root.endsWith('/')) root = root.slice(0, -1);
  const out: DiscoveredLink[] = [];
  for (const link of links) {
    if (isLwm2mRootLink(link)) continue;
    let uri = link.uri;
    if (root !== '') {
      if (uri === root) uri = '/';
      else if (uri.startsWith(root + '/')) uri = uri.slice(root.length);
      else fail(`link format: <${link.uri}> is outside the root path ${root}`);
    }
    let path: LwM2mPath;
    try {
      path = LwM2mPath.parse(uri);
    } catch {
      return fail(`link format: <${link.uri}> is not an LwM2M path`);
    }
    out.push({ path, uri: link.uri, attributes: decodeAttributes(link, path.objectId) });
  }
  return out;
}

/**
 * The LwM2M attributes of one link, numbers parsed and dim/ssid checked against their ranges.
 * `objectId` is the object the link names, when known (ssid=0 is let through on object 0 only).
 */
export function decodeAttributes(link: Link, objectId?: number): LinkAttributes {
  const attributes: LinkAttributes = {};
  for (const name of Object.keys(link.params)) {
    const value = link.params[name];
    const spec = notificationAttribute(name);
    if (name === 'dim' || name === 'ssid') {
      attributes[name] = rangedAttribute(link, name, value, objectId);
    } else if (spec !== undefined) {
      attributes[spec.name] = notificationValue(link, spec, value);
    } else if (name === 'ver') {
      if (value === true || !isVersion(value))
        fail(`link format: <${link.uri}> attribute ver=${value} is not a version`);
      attributes.ver = value;
    } else {
      if (attributes.other === undefined) attributes.other = {};
      setParam(attributes.other, name, value);
    }
  }
  return attributes;
}

/**
 * The value of a notification attribute (pmin, gt, edge, ...) of `link`, as the attribute table types and
 * bounds it: whole numbers as plain digits, the others as decimal numbers; ContentCodecError('4.00') naming
 * the link otherwise.
 */
function notificationValue(link: Link, spec: NotificationAttributeSpec, value: string | true): number {
  const where = `link format: <${link.uri}> attribute ${spec.name}=${value}`;
  let n: number | undefined;
  if (spec.type === 'integer') {
    n = value === true ? undefined : parseNonNegativeInteger(value);
    if (n === undefined) fail(`${where} is not a non-negative integer`);
  } else {
    n = value === true || !isDecimalNumber(value) ? Number.NaN : Number(value);
    if (!Number.isFinite(n)) fail(`${where} is not a number`);
  }
  const problem = attributeValueProblem(spec, n);
  if (problem !== undefined) fail(`${where} ${problem}`);
  return n;
}

function isVersion(text: string): boolean {
  const dot = text.indexOf('.');
  return (
    dot > 0 &&
    dot < text.length - 1 &&
    parseNonNegativeInteger(text.slice(0, dot)) !== undefined &&
    parseNonNegativeInteger(text.slice(dot + 1)) !== undefined
  );
}
