/**
 * An LwM2M path: `/`, `/3`, `/3/0`, `/3/0/1` or `/3/0/7/1`.
 * Immutable; parse once at the edge (flow input, CoAP Uri-Path) and pass the object around.
 */
import { Lwm2mError } from '../errors';
export class LwM2mPath {
  readonly objectId?: number;
  readonly instanceId?: number;
  readonly resourceId?: number;
  readonly resourceInstanceId?: number;

  constructor(objectId?: number, instanceId?: number, resourceId?: number, resourceInstanceId?: number) {
    const ids = [objectId, instanceId, resourceId, resourceInstanceId];
    let seenUndefined = false;
    for (const id of ids) {
      if (id === undefined) {
        seenUndefined = true;
        continue;
      }
      if (seenUndefined) throw new InvalidPathError(`invalid LwM2M path: id after a missing level`);
      if (!Number.isInteger(id) || id < 0 || id > 65535) {
        throw new InvalidPathError(`invalid LwM2M path: id ${id} is not an integer in 0..65535`);
      }
    }
    this.objectId = objectId;
    this.instanceId = instanceId;
    this.resourceId = resourceId;
    this.resourceInstanceId = resourceInstanceId;
  }

  /**
   * Parses `/3/0/1`, `3/0/1` or `/`; throws InvalidPathError with the reason. Paths are immutable, so the
   * same text gives the same (cached) object: flows read the same few paths over and over.
   */
  static parse(text: string): LwM2mPath {
    if (typeof text !== 'string') throw new InvalidPathError(`invalid LwM2M path: expected a string`);
    const cached = PARSED.get(text);
    if (cached !== undefined) return cached;
    const path = LwM2mPath.parseUncached(text);
    if (PARSED.size >= PARSED_LIMIT) PARSED.clear();
    PARSED.set(text, path);
    return path;
  }

  private static parseUncached(text: string): LwM2mPath {
    const trimmed = text.trim();
    if (trimmed === '' || trimmed === '/') return ROOT;
    const body = trimmed.startsWith('/') ? trimmed.slice(1) : trimmed;
    const parts = (body.endsWith('/') ? body.slice(0, -1) : body).split('/');
    if (parts.length > 4) throw new InvalidPathError(`invalid LwM2M path "${text}": more than 4 levels`);
    const ids = parts.map((part) => {
      if (!/^\d{1,5}$/.test(part))
        throw new InvalidPathError(`invalid LwM2M path "${text}": "${part}" is not a number`);
      return Number(part);
    });
    try {
      return new LwM2mPath(ids[0], ids[1], ids[2], ids[3]);
    } catch (err) {
      throw new InvalidPathError(
        `invalid LwM2M path "${text}": ${(err as Error).message.replace(/^invalid LwM2M path: /, '')}`,
      );
    }
  }

  /** Builds a path from CoAP Uri-Path segments (strings), as received from the wire. */
  static fromSegments(segments: readonly string[]): LwM2mPath {
    return LwM2mPath.parse('/' + segments.join('/'));
  }

  /** 0 = root, 1 = object, 2 = instance, 3 = resource, 4 = resource instance. */
  get level(): 0 | 1 | 2 | 3 | 4 {
    if (this.objectId === undefined) return 0;
    if (this.instanceId === undefined) return 1;
    if (this.resourceId === undefined) return 2;
    if (this.resourceInstanceId === undefined) return 3;
    return 4;
  }

  isRoot(): boolean {
    return this.level === 0;
  }
  isObject(): boolean {
    return this.level === 1;
  }
  isObjectInstance(): boolean {
    return this.level === 2;
  }
  isResource(): boolean {
    return this.level === 3;
  }
  isResourceInstance(): boolean {
    return this.level === 4;
  }

  /** The ids present, in order. */
  get ids(): number[] {
    return [this.objectId, this.instanceId, this.resourceId, this.resourceInstanceId].filter(
      (id): id is number => id !== undefined,
    );
  }

  /** Uri-Path segments for a CoAP request. */
  toSegments(): string[] {
    return this.ids.map(String);
  }

  /** True when `other` is this path or below it. */
  contains(other: LwM2mPath): boolean {
    const mine = this.ids;
    const theirs = other.ids;
    if (theirs.length < mine.length) return false;
    return mine.every((id, index) => theirs[index] === id);
  }

  /** The path one level down. */
  append(id: number): LwM2mPath {
    const ids = this.ids;
    if (ids.length >= 4) throw new InvalidPathError(`cannot go below a resource instance path ${this}`);
    ids.push(id);
    return new LwM2mPath(ids[0], ids[1], ids[2], ids[3]);
  }

  /** The path one level up (root stays root). */
  parent(): LwM2mPath {
    const ids = this.ids.slice(0, -1);
    return new LwM2mPath(ids[0], ids[1], ids[2], ids[3]);
  }

  equals(other: LwM2mPath): boolean {
    return this.toString() === other.toString();
  }

  toString(): string {
    // Immutable: the text is computed once (paths key maps on the request and notification paths). It is
    // kept outside the object so two equal paths stay deep-equal.
    let text = TEXTS.get(this);
    if (text === undefined) TEXTS.set(this, (text = '/' + this.ids.join('/')));
    return text;
  }

  toJSON(): string {
    return this.toString();
  }
}

export class InvalidPathError extends Lwm2mError {
  override name = 'InvalidPathError';
}

export const ROOT = new LwM2mPath();

const TEXTS = new WeakMap<LwM2mPath, string>();

/** Parsed paths by text (bounded: cleared when full; a fleet uses a handful of paths). */
const PARSED = new Map<string, LwM2mPath>();
const PARSED_LIMIT = 4096;
