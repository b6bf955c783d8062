/**
 * Reader for OMA LwM2M object definition files (DDF XML, schemas LWM2M.xsd 1.0 and LWM2M-v1_1.xsd).
 *
 * Two entry points:
 * - `readDdf(xml, sourceName)` tells object definitions apart from the other XML found next to them in a
 *   registry checkout (the `DDF.xml` index, `Common.xml` reusable resources, `LWM2M_senml_units.xml`,
 *   `.xsd` schemas, anything whose root is not `<LWM2M>` with `<Object>` definitions) and returns
 *   `{ objects }` or `{ skipped: reason }`. A folder loader uses it to skip those files.
 * - `parseDdf(xml, sourceName)` returns the definitions, `[]` for a file that is not an object definition.
 *
 * Both throw `DdfError` (naming the file and what is wrong) when the XML is not well formed or an object
 * definition is broken in a way that matters: missing or non-integer ObjectID / resource ID, missing name,
 * duplicate resource ids, unknown Type / Operations / MultipleInstances / Mandatory values, unreadable
 * versions. Everything else is tolerated: BOM, CDATA, surrounding whitespace, lowercase values, element
 * names in another case, missing optional elements (RangeEnumeration, Units, Description, versions).
 * A missing MultipleInstances means Single and a missing Mandatory means Optional, as a DDF editor would
 * have written them.
 */
import { Lwm2mError } from '../errors';
import { XMLParser, XMLValidator } from 'fast-xml-parser';
import type { ObjectDefinition, Operations, ResourceDefinition, ResourceType } from './types';

export class DdfError extends Lwm2mError {
  override name = 'DdfError';
  constructor(
    /** The file (or other source name) the XML came from. */
    readonly source: string,
    /** What is wrong, without the file name. */
    readonly reason: string,
  ) {
    super(`${source}: ${reason}`);
  }
}

/** What a DDF XML document holds: object definitions, or the reason it is not an object definition file. */
export type DdfDocument = { objects: ObjectDefinition[] } | { skipped: string };

const ATTRIBUTE_PREFIX = '@_';
const TEXT_KEY = '#text';

const parser = new XMLParser({
  ignoreAttributes: false,
  attributeNamePrefix: ATTRIBUTE_PREFIX,
  textNodeName: TEXT_KEY,
  // Keep every value a string: "1.0" must not become 1, and ids are checked by us, not guessed by the parser.
  parseTagValue: false,
  parseAttributeValue: false,
  trimValues: true,
  ignoreDeclaration: true,
  ignorePiTags: true,
  // Object and Item repeat; everything else is read through `child()`, which tolerates arrays too.
  isArray: (tagName) => localName(tagName).toLowerCase() === 'object' || localName(tagName).toLowerCase() === 'item',
});

/** Parses one DDF document; `[]` when it is not an object definition file (see `readDdf`). */
export function parseDdf(xml: string, sourceName = '<ddf>'): ObjectDefinition[] {
  const document = readDdf(xml, sourceName);
  return 'objects' in document ? document.objects : [];
}

/**
 * Parses one DDF document and says whether it holds object definitions.
 * Throws DdfError for XML that is not well formed and for broken object definitions.
 */
export function readDdf(xml: string, sourceName = '<ddf>'): DdfDocument {
  if (typeof xml !== 'string') throw new DdfError(sourceName, 'expected the XML text as a string');
  const text = xml.replace(/^\uFEFF/, '');
  if (text.trim() === '') throw new DdfError(sourceName, 'file is empty');
  const validation = XMLValidator.validate(text);
  if (validation !== true) {
    const { msg, line, col } = validation.err;
    throw new DdfError(sourceName, `not well-formed XML at line ${line}, column ${col}: ${msg}`);
  }
  let tree: Record<string, unknown>;
  try {
    tree = parser.parse(text) as Record<string, unknown>;
  } catch (err) {
    throw new DdfError(sourceName, `not readable XML: ${(err as Error).message}`);
  }

  const rootNames = Object.keys(tree).filter((key) => !key.startsWith('?') && !key.startsWith('#'));
  if (rootNames.length !== 1) return { skipped: 'no single root element' };
  const rootName = rootNames[0];
  if (localName(rootName).toLowerCase() !== 'lwm2m') {
    return { skipped: `root element is <${rootName}>, not <LWM2M>` };
  }
  const root = tree[rootName];
  const objectElements = isRecord(root) ? (childList(root, 'Object') ?? []) : [];
  if (objectElements.length === 0) return { skipped: '<LWM2M> holds no <Object> element' };

  const definitions: ObjectElement[] = [];
  const otherKinds = new Set<string>();
  for (const element of objectElements) {
    if (!isRecord(element)) {
      throw new DdfError(sourceName, '<Object> element is empty');
    }
    // Common.xml uses <Object ObjectType="CommonResources"> for the reusable resource catalogue; object
    // definitions say "MODefinition" or (in hand-written files) nothing at all.
    const objectType = attribute(element, 'ObjectType')?.trim();
    if (objectType !== undefined && objectType !== '' && objectType.toLowerCase() !== 'modefinition') {
      otherKinds.add(objectType);
      continue;
    }
    definitions.push(element);
  }
  if (definitions.length === 0) {
    return { skipped: `not an object definition (ObjectType="${[...otherKinds].join('", "')}")` };
  }
  return { objects: definitions.map((element, index) => readObject(element, sourceName, index, definitions.length)) };
}

type ObjectElement = Record<string, unknown>;

function readObject(element: ObjectElement, source: string, index: number, count: number): ObjectDefinition {
  const where = count > 1 ? `<Object> #${index + 1}` : '<Object>';
  const fail = (reason: string): never => {
    throw new DdfError(source, reason);
  };

  const idText = textOf(child(element, 'ObjectID'));
  if (idText === undefined || idText === '') throw new DdfError(source, `${where} has no <ObjectID>`);
  const id = parseId(idText);
  if (id === undefined) {
    throw new DdfError(source, `${where} has ObjectID "${idText}", expected an integer in 0..65535`);
  }
  const what = `object ${id}`;

  const name = nameOf(child(element, 'Name'));
  if (!name) throw new DdfError(source, `${what} has no <Name>`);

  const version = readVersion(textOf(child(element, 'ObjectVersion')), `${what} <ObjectVersion>`, fail);
  const lwm2mVersion = readVersion(textOf(child(element, 'LWM2MVersion')), `${what} <LWM2MVersion>`, fail);
  const multiple = readMultiple(textOf(child(element, 'MultipleInstances')), what, fail);
  const mandatory = readMandatory(textOf(child(element, 'Mandatory')), what, fail);
  const urn = textOf(child(element, 'ObjectURN')) || undefined;
  const description = (textOf(child(element, 'Description1')) ?? textOf(child(element, 'Description'))) || undefined;

  const resources: Record<number, ResourceDefinition> = {};
  const resourcesElement = child(element, 'Resources');
  const items = isRecord(resourcesElement) ? (childList(resourcesElement, 'Item') ?? []) : [];
  items.forEach((item, itemIndex) => {
    const resource = readResource(item, `${what} resource <Item> #${itemIndex + 1}`, what, fail);
    if (resources[resource.id] !== undefined) {
      throw new DdfError(source, `${what} defines resource ${resource.id} twice`);
    }
    resources[resource.id] = resource;
  });

  const definition: ObjectDefinition = {
    id,
    name,
    version,
    lwm2mVersion,
    multiple,
    mandatory,
    resources,
  };
  if (urn !== undefined) definition.urn = urn;
  if (description !== undefined) definition.description = description;
  return definition;
}

function readResource(item: unknown, where: string, what: string, fail: (reason: string) => never): ResourceDefinition {
  if (!isRecord(item)) return fail(`${where} is empty`);
  const idText = attribute(item, 'ID') ?? textOf(child(item, 'ID'));
  if (idText === undefined || idText.trim() === '') return fail(`${where} has no ID attribute`);
  const id = parseId(idText);
  if (id === undefined) return fail(`${where} has ID "${idText}", expected an integer in 0..65535`);
  const resourceWhere = `${what} resource ${id}`;

  const name = nameOf(child(item, 'Name'));
  if (!name) return fail(`${resourceWhere} has no <Name>`);

  const resource: ResourceDefinition = {
    id,
    name,
    operations: readOperations(textOf(child(item, 'Operations')), resourceWhere, fail),
    multiple: readMultiple(textOf(child(item, 'MultipleInstances')), resourceWhere, fail),
    mandatory: readMandatory(textOf(child(item, 'Mandatory')), resourceWhere, fail),
    type: readType(textOf(child(item, 'Type')), resourceWhere, fail),
  };
  const range = textOf(child(item, 'RangeEnumeration'));
  if (range) resource.range = range;
  const units = textOf(child(item, 'Units'));
  if (units) resource.units = units;
  const description = textOf(child(item, 'Description'));
  if (description) resource.description = description;
  return resource;
}

/** DDF Type text -> ResourceType. Spaces, case and "-"/"_" are ignored ("Unsigned Integer", "unsignedInteger"). */
const TYPE_NAMES: Record<string, ResourceType> = {
  string: 'string',
  integer: 'integer',
  int: 'integer',
  unsignedinteger: 'unsigned',
  unsignedint: 'unsigned',
  unsigned: 'unsigned',
  float: 'float',
  boolean: 'boolean',
  bool: 'boolean',
  opaque: 'opaque',
  time: 'time',
  objlnk: 'objlnk',
  objectlink: 'objlnk',
  corelnk: 'corelnk',
  corelink: 'corelnk',
  none: 'none',
  '': 'none',
};

export function ddfTypeToResourceType(text: string | undefined): ResourceType | undefined {
  return TYPE_NAMES[(text ?? '').toLowerCase().replace(/[\s_-]+/g, '')];
}

function readType(text: string | undefined, where: string, fail: (reason: string) => never): ResourceType {
  // An empty Type is what executable resources carry; the registry also has one readable resource
  // (10482/5) with an empty Type, which we keep as 'none' rather than reject the whole object.
  const type = ddfTypeToResourceType(text);
  return type ?? fail(`${where} has unknown <Type> "${text}"`);
}

function readOperations(text: string | undefined, where: string, fail: (reason: string) => never): Operations {
  const normalised = (text ?? '').replace(/\s+/g, '').toUpperCase();
  switch (normalised) {
    case '':
    case 'NONE':
      return '';
    case 'R':
    case 'W':
    case 'RW':
    case 'E':
      return normalised;
    case 'WR':
      return 'RW';
    default:
      return fail(`${where} has unknown <Operations> "${text}", expected R, W, RW, E or empty`);
  }
}

function readMultiple(text: string | undefined, where: string, fail: (reason: string) => never): boolean {
  const normalised = (text ?? '').trim().toLowerCase();
  if (normalised === '' || normalised === 'single') return false;
  if (normalised === 'multiple') return true;
  return fail(`${where} has <MultipleInstances> "${text}", expected Single or Multiple`);
}

function readMandatory(text: string | undefined, where: string, fail: (reason: string) => never): boolean {
  const normalised = (text ?? '').trim().toLowerCase();
  if (normalised === '' || normalised === 'optional') return false;
  if (normalised === 'mandatory') return true;
  return fail(`${where} has <Mandatory> "${text}", expected Mandatory or Optional`);
}

/** "1.1" stays, "1" becomes "1.0", empty/missing is "1.0"; anything else is an error (versions are lookup keys). */
function readVersion(text: string | undefined, where: string, fail: (reason: string) => never): string {
  const trimmed = (text ?? '').trim();
  if (trimmed === '') return '1.0';
  const match = /^(\d{1,4})(?:\.(\d{1,4}))?$/.exec(trimmed);
  if (!match) return fail(`${where} is "${text}", expected a version like 1.0`);
  return `${Number(match[1])}.${Number(match[2] ?? 0)}`;
}

function parseId(text: string): number | undefined {
  const trimmed = text.trim();
  if (!/^\d{1,5}$/.test(trimmed)) return undefined;
  const id = Number(trimmed);
  return id <= 65535 ? id : undefined;
}

function localName(tagName: string): string {
  const colon = tagName.indexOf(':');
  return colon >= 0 ? tagName.slice(colon + 1) : tagName;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** The child element(s) named `name`, matched case-insensitively and without namespace prefix. */
function childList(element: Record<string, unknown>, name: string): unknown[] | undefined {
  const wanted = name.toLowerCase();
  for (const [key, value] of Object.entries(element)) {
    if (key.startsWith(ATTRIBUTE_PREFIX) || key === TEXT_KEY) continue;
    if (localName(key).toLowerCase() === wanted) return Array.isArray(value) ? value : [value];
  }
  return undefined;
}

/** A single child element; a repeated one (e.g. two <Name>) is ambiguous and read as its first occurrence. */
function child(element: Record<string, unknown>, name: string): unknown {
  return childList(element, name)?.[0];
}

function attribute(element: Record<string, unknown>, name: string): string | undefined {
  const wanted = (ATTRIBUTE_PREFIX + name).toLowerCase();
  for (const [key, value] of Object.entries(element)) {
    if (key.toLowerCase() === wanted) return typeof value === 'string' ? value : String(value);
  }
  return undefined;
}

/** A name with runs of whitespace collapsed: the registry has e.g. "LWM2M  Server URI" (0/0). */
function nameOf(node: unknown): string | undefined {
  return textOf(node)?.replace(/\s+/g, ' ');
}

/**
 * The trimmed text of an element. Elements that carry attributes or markup inside their text (e.g. HTML
 * in a description) come back from the parser as objects; their text parts are joined.
 */
function textOf(node: unknown): string | undefined {
  if (node === undefined || node === null) return undefined;
  if (typeof node === 'string') return node.trim();
  if (typeof node === 'number' || typeof node === 'boolean') return String(node);
  if (Array.isArray(node)) {
    return node
      .map(textOf)
      .filter((part) => part)
      .join(' ');
  }
  if (isRecord(node)) {
    const parts: string[] = [];
    for (const [key, value] of Object.entries(node)) {
      if (key.startsWith(ATTRIBUTE_PREFIX)) continue;
      const part = textOf(value);
      if (part) parts.push(part);
    }
    return parts.join(' ').trim();
  }
  return undefined;
}
