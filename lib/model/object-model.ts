/** The object definitions a server knows (builtins plus a user's DDF folder), looked up by id and version. */
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { builtinDefinitions, compareVersions, isDefinitionSet, parseDefinitionSet } from './builtins';
import { readDdf } from './ddf';
import type { ObjectDefinition, ObjectModelLookup, ResourceDefinition } from './types';

/** What `ObjectModel.loadFolder` did: a bad file is reported here, it does not stop the others. */
export interface LoadFolderReport {
  /** Object definitions added (one per object version). */
  loaded: number;
  /** Files that are not object definitions (DDF index, Common.xml, schemas, READMEs...), with the reason. */
  skipped: { file: string; reason: string }[];
  /** Files that look like object definitions but could not be read, with the reason. */
  errors: { file: string; error: string }[];
}

/**
 * The object definitions a server knows: id -> version -> definition.
 *
 * Several versions of one object can live side by side (e.g. Server 1.1 and 1.2). Lookups take the version
 * a client announced; without one, or for a version we do not know, the newest definition answers (object
 * versions only add resources and never change a resource's type, so the newest decodes every version).
 * Adding a definition with an id and version already present replaces it: load builtins first, then the
 * user's folder, and the user wins.
 *
 * Definitions are treated as immutable and shared between clones; `clone()`/`extend()` copy only the index,
 * so a per-server model can grow without touching the shared built-in one.
 */
export class ObjectModel implements ObjectModelLookup {
  private readonly objects = new Map<number, Map<string, ObjectDefinition>>();

  constructor(definitions: Iterable<ObjectDefinition> = []) {
    this.add(definitions);
  }

  /** A new model holding the built-in definitions (objects 0-7 and common IPSO objects). */
  static withBuiltins(): ObjectModel {
    return new ObjectModel(builtinDefinitions());
  }

  /** Adds definitions; one with the id and version of an existing one replaces it. */
  add(definitions: ObjectDefinition | Iterable<ObjectDefinition>): this {
    const list = isIterable(definitions) ? definitions : [definitions];
    for (const definition of list) {
      let versions = this.objects.get(definition.id);
      if (versions === undefined) {
        versions = new Map();
        this.objects.set(definition.id, versions);
      }
      versions.set(definition.version, definition);
    }
    return this;
  }

  /** The requested version of an object, else its newest version; undefined for an unknown object. */
  getObject(objectId: number, version?: string): ObjectDefinition | undefined {
    const versions = this.objects.get(objectId);
    if (versions === undefined) return undefined;
    if (version !== undefined) {
      const exact = versions.get(version) ?? versions.get(normaliseVersion(version));
      if (exact !== undefined) return exact;
    }
    let newest: ObjectDefinition | undefined;
    for (const definition of versions.values()) {
      if (newest === undefined || compareVersions(definition.version, newest.version) > 0) newest = definition;
    }
    return newest;
  }

  /** Exactly this version of an object, without falling back to another one. */
  getObjectVersion(objectId: number, version: string): ObjectDefinition | undefined {
    const versions = this.objects.get(objectId);
    return versions?.get(version) ?? versions?.get(normaliseVersion(version));
  }

  getResource(objectId: number, resourceId: number, version?: string): ResourceDefinition | undefined {
    return this.getObject(objectId, version)?.resources[resourceId];
  }

  /**
   * A resource by name, case-insensitive and ignoring repeated spaces. Undefined when no resource has that
   * name; throws when several do (the registry has objects with duplicate resource names).
   */
  findResourceByName(objectId: number, name: string, version?: string): ResourceDefinition | undefined {
    return findResourceByName(this.getObject(objectId, version), name);
  }

  /** Known versions of an object, oldest first. */
  versionsOf(objectId: number): string[] {
    return [...(this.objects.get(objectId)?.keys() ?? [])].sort(compareVersions);
  }

  has(objectId: number, version?: string): boolean {
    return version === undefined ? this.objects.has(objectId) : this.getObjectVersion(objectId, version) !== undefined;
  }

  /** Known object ids, ascending. */
  objectIds(): number[] {
    return [...this.objects.keys()].sort((a, b) => a - b);
  }

  /** Every definition (all versions), by id then version. */
  definitions(): ObjectDefinition[] {
    return this.objectIds().flatMap((id) => this.versionsOf(id).map((version) => this.objects.get(id)!.get(version)!));
  }

  /** Number of object definitions (all versions). */
  get size(): number {
    let count = 0;
    for (const versions of this.objects.values()) count += versions.size;
    return count;
  }

  /** An independent model with the same definitions; adding to either leaves the other alone. */
  clone(): ObjectModel {
    const copy = new ObjectModel();
    for (const [id, versions] of this.objects) copy.objects.set(id, new Map(versions));
    return copy;
  }

  /** A clone with more definitions on top (they override same id+version). */
  extend(definitions: ObjectDefinition | Iterable<ObjectDefinition>): ObjectModel {
    return this.clone().add(definitions);
  }

  /**
   * Loads every object definition file of a folder (not recursive): DDF `*.xml` files and `*.json` files in
   * our definition format (see builtins.ts). Files are read in name order, so within the folder a later
   * file overrides an earlier one for the same id and version. Files that are not definitions are
   * skipped, files that fail to parse are reported in `errors`; neither stops the load. A file's
   * definitions are added only when the whole file is valid. Rejects only when the folder cannot be read.
   */
  async loadFolder(dir: string): Promise<LoadFolderReport> {
    const report: LoadFolderReport = { loaded: 0, skipped: [], errors: [] };
    let entries;
    try {
      entries = await fs.readdir(dir, { withFileTypes: true });
    } catch (err) {
      throw new Error(`cannot read object definition folder ${dir}: ${(err as Error).message}`);
    }
    entries.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    for (const entry of entries) {
      const file = entry.name;
      if (!entry.isFile()) {
        report.skipped.push({
          file,
          reason: entry.isDirectory() ? 'a folder (folders are not searched)' : 'not a file',
        });
        continue;
      }
      const extension = path.extname(file).toLowerCase();
      if (extension !== '.xml' && extension !== '.json') {
        report.skipped.push({ file, reason: `not a definition file (*.xml DDF or *.json definition set)` });
        continue;
      }
      try {
        const text = await fs.readFile(path.join(dir, file), 'utf8');
        const definitions = extension === '.xml' ? readXmlFile(text, file) : readJsonFile(text, file);
        if ('skipped' in definitions) {
          report.skipped.push({ file, reason: definitions.skipped });
          continue;
        }
        this.add(definitions.objects);
        report.loaded += definitions.objects.length;
      } catch (err) {
        report.errors.push({ file, error: (err as Error).message });
      }
    }
    return report;
  }
}

type FileDefinitions = { objects: ObjectDefinition[] } | { skipped: string };

function readXmlFile(text: string, file: string): FileDefinitions {
  return readDdf(text, file);
}

function readJsonFile(text: string, file: string): FileDefinitions {
  let data: unknown;
  try {
    data = JSON.parse(text.replace(/^\uFEFF/, ''));
  } catch (err) {
    throw new Error(`${file}: not valid JSON: ${(err as Error).message}`);
  }
  if (!isDefinitionSet(data)) return { skipped: 'JSON without "format": "lwm2m-objects@1"' };
  return { objects: parseDefinitionSet(data, file) };
}

/** See ObjectModel.findResourceByName; usable with any ObjectModelLookup's definitions. */
export function findResourceByName(
  definition: ObjectDefinition | undefined,
  name: string,
): ResourceDefinition | undefined {
  if (definition === undefined) return undefined;
  const wanted = normaliseName(name);
  const matches = Object.values(definition.resources).filter((resource) => normaliseName(resource.name) === wanted);
  if (matches.length > 1) {
    throw new Error(
      `object ${definition.id} (${definition.name}) has ${matches.length} resources named "${name}" ` +
        `(ids ${matches.map((resource) => resource.id).join(', ')}); use the resource id`,
    );
  }
  return matches[0];
}

/** Case-insensitive, whitespace-collapsed form of a resource name, for lookups by name. */
export function normaliseName(name: string): string {
  return name.trim().replace(/\s+/g, ' ').toLowerCase();
}

/** "1" -> "1.0"; other text unchanged. */
function normaliseVersion(version: string): string {
  return /^\d+$/.test(version.trim()) ? `${version.trim()}.0` : version.trim();
}

function isIterable(value: unknown): value is Iterable<ObjectDefinition> {
  return typeof value === 'object' && value !== null && Symbol.iterator in value;
}
