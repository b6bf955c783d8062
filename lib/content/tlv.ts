/**
 * LwM2M TLV (content formats 11542 and legacy 1542), LwM2M 1.1 Core §7.4.3.
 *
 * Type byte: bits 7-6 identifier type (00 object instance, 01 resource instance, 10 multiple
 * resource, 11 resource with value), bit 5 identifier length (0: 8 bits, 1: 16 bits), bits 4-3
 * length type (00: length in bits 2-0, 01/10/11: 8/16/24-bit length field follows the identifier).
 *
 * Decoding is bounds-checked at every step and only ever throws ContentCodecError; values are typed
 * by the model (resources the model does not know decode as opaque). Encoding measures first, then
 * writes into one Buffer.allocUnsafe of the exact size.
 */
import { isUtf8 } from 'node:buffer';
import type { LwM2mPath } from '../model/path';
import type {
  LwM2mMultipleResource,
  LwM2mNode,
  LwM2mObject,
  LwM2mObjectInstance,
  LwM2mResource,
  ObjectLink,
  ObjectModelLookup,
  ResourceDefinition,
  ResourceType,
  ResourceValue,
} from '../model/types';
import { ContentFormat, type NodeCodec } from './types';
import { checkNodeAtPath, encodeType } from './tree';
import { checkId, checkValue, dateFromSeconds, fail, normalizeBigInt, secondsFromDate, toBigInt } from './values';

export const TLV_OBJECT_INSTANCE = 0;
export const TLV_RESOURCE_INSTANCE = 1;
export const TLV_MULTIPLE_RESOURCE = 2;
export const TLV_RESOURCE = 3;

const TYPE_NAMES = ['object instance', 'resource instance', 'multiple resource', 'resource'];

/** One parsed TLV: its type, identifier and where its value lies in the buffer. */
export interface TlvEntry {
  type: number;
  id: number;
  /** Offset of the type byte, for messages. */
  at: number;
  start: number;
  end: number;
}

/** Parses the TLV sequence in bytes[start, end); each entry advances at least 2 bytes. */
export function readTlvs(bytes: Buffer, start: number, end: number): TlvEntry[] {
  const out: TlvEntry[] = [];
  let p = start;
  while (p < end) {
    const at = p;
    const t = bytes[p++];
    const idLength = t & 0x20 ? 2 : 1;
    const lengthType = (t >> 3) & 3;
    if (idLength + lengthType > end - p) {
      fail(`TLV at byte ${at}: header needs ${1 + idLength + lengthType} bytes, ${end - at} left`);
    }
    const id = idLength === 2 ? (bytes[p] << 8) | bytes[p + 1] : bytes[p];
    p += idLength;
    let length: number;
    switch (lengthType) {
      case 0:
        length = t & 7;
        break;
      case 1:
        length = bytes[p];
        break;
      case 2:
        length = (bytes[p] << 8) | bytes[p + 1];
        break;
      default:
        length = (bytes[p] << 16) | (bytes[p + 1] << 8) | bytes[p + 2];
    }
    p += lengthType;
    if (length > end - p) {
      fail(`TLV at byte ${at} (${TYPE_NAMES[t >> 6]} ${id}): length ${length} exceeds the ${end - p} bytes left`);
    }
    out.push({ type: t >> 6, id, at, start: p, end: p + length });
    p += length;
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Decoding

function decodeValue(bytes: Buffer, entry: TlvEntry, type: ResourceType, where: string): ResourceValue {
  const { start, end } = entry;
  const length = end - start;
  switch (type) {
    case 'string':
    case 'corelnk': {
      if (!isUtf8(bytes.subarray(start, end))) fail(`${where} (TLV at byte ${entry.at}): string is not valid UTF-8`);
      return bytes.toString('utf8', start, end);
    }
    case 'opaque':
      return bytes.subarray(start, end);
    case 'integer':
    case 'time': {
      let value: number | bigint;
      switch (length) {
        case 1:
          value = bytes.readInt8(start);
          break;
        case 2:
          value = bytes.readInt16BE(start);
          break;
        case 4:
          value = bytes.readInt32BE(start);
          break;
        case 8:
          value = normalizeBigInt(bytes.readBigInt64BE(start));
          break;
        default:
          return fail(`${where} (TLV at byte ${entry.at}): ${type} of ${length} bytes, expected 1, 2, 4 or 8`);
      }
      return type === 'time' ? dateFromSeconds(value, where) : value;
    }
    case 'unsigned':
      switch (length) {
        case 1:
          return bytes[start];
        case 2:
          return bytes.readUInt16BE(start);
        case 4:
          return bytes.readUInt32BE(start);
        case 8:
          return normalizeBigInt(bytes.readBigUInt64BE(start));
        default:
          return fail(`${where} (TLV at byte ${entry.at}): unsigned integer of ${length} bytes, expected 1, 2, 4 or 8`);
      }
    case 'float':
      if (length === 4) return bytes.readFloatBE(start);
      if (length === 8) return bytes.readDoubleBE(start);
      return fail(`${where} (TLV at byte ${entry.at}): float of ${length} bytes, expected 4 or 8`);
    case 'boolean':
      if (length === 1 && bytes[start] <= 1) return bytes[start] === 1;
      return fail(
        `${where} (TLV at byte ${entry.at}): boolean must be one byte 0 or 1, got ${length === 1 ? bytes[start] : length + ' bytes'}`,
      );
    case 'objlnk':
      if (length !== 4) fail(`${where} (TLV at byte ${entry.at}): object link of ${length} bytes, expected 4`);
      return { objectId: bytes.readUInt16BE(start), instanceId: bytes.readUInt16BE(start + 2) };
    case 'none':
      return fail(`${where} (TLV at byte ${entry.at}): resource is executable (type none) and has no value`);
  }
}

function decodeResource(
  bytes: Buffer,
  entry: TlvEntry,
  objectId: number,
  instanceId: number,
  model: ObjectModelLookup,
): LwM2mResource {
  const def = model.getResource(objectId, entry.id);
  const type = def ? def.type : 'opaque';
  const where = `/${objectId}/${instanceId}/${entry.id}`;
  if (entry.type === TLV_RESOURCE) {
    if (def?.multiple)
      fail(`${where} (TLV at byte ${entry.at}): the model defines a multiple resource, got a single value`);
    return { kind: 'resource', id: entry.id, type, value: decodeValue(bytes, entry, type, where) };
  }
  if (entry.type === TLV_MULTIPLE_RESOURCE) {
    if (def && !def.multiple)
      fail(`${where} (TLV at byte ${entry.at}): the model defines a single resource, got multiple`);
    return decodeInstances(bytes, readTlvs(bytes, entry.start, entry.end), entry.id, type, where);
  }
  return fail(`${where} (TLV at byte ${entry.at}): expected a resource, got a ${TYPE_NAMES[entry.type]}`);
}

function decodeInstances(
  bytes: Buffer,
  entries: TlvEntry[],
  resourceId: number,
  type: ResourceType,
  where: string,
): LwM2mMultipleResource {
  const instances = new Map<number, ResourceValue>();
  for (const entry of entries) {
    if (entry.type !== TLV_RESOURCE_INSTANCE) {
      fail(`${where} (TLV at byte ${entry.at}): expected a resource instance, got a ${TYPE_NAMES[entry.type]}`);
    }
    if (instances.has(entry.id)) fail(`${where} (TLV at byte ${entry.at}): duplicate resource instance ${entry.id}`);
    instances.set(entry.id, decodeValue(bytes, entry, type, `${where}/${entry.id}`));
  }
  return { kind: 'multipleResource', id: resourceId, type, instances };
}

function decodeInstance(
  bytes: Buffer,
  entries: TlvEntry[],
  objectId: number,
  instanceId: number,
  model: ObjectModelLookup,
): LwM2mObjectInstance {
  const resources = new Map<number, LwM2mResource>();
  for (const entry of entries) {
    if (resources.has(entry.id)) {
      fail(`/${objectId}/${instanceId} (TLV at byte ${entry.at}): duplicate resource ${entry.id}`);
    }
    resources.set(entry.id, decodeResource(bytes, entry, objectId, instanceId, model));
  }
  return { kind: 'instance', id: instanceId, resources };
}

function allOfType(entries: TlvEntry[], type: number): boolean {
  for (const entry of entries) if (entry.type !== type) return false;
  return true;
}

function noneOfType(entries: TlvEntry[], type: number): boolean {
  for (const entry of entries) if (entry.type === type) return false;
  return true;
}

/** Decodes a TLV payload for `path` (object, object instance, resource or resource instance). */
export function decodeTlv(bytes: Buffer, path: LwM2mPath, model: ObjectModelLookup): LwM2mNode {
  let entries = readTlvs(bytes, 0, bytes.length);
  const objectId = path.objectId as number;
  if (path.level >= 3 && entries.length === 1 && entries[0].type === TLV_OBJECT_INSTANCE) {
    // Some clients wrap a resource in its object instance; accept it when the instance matches.
    const entry = entries[0];
    if (entry.id !== path.instanceId) {
      fail(`${path} (TLV at byte ${entry.at}): object instance ${entry.id}, expected ${path.instanceId}`);
    }
    entries = readTlvs(bytes, entry.start, entry.end);
  }
  switch (path.level) {
    case 1: {
      const object: LwM2mObject = { kind: 'object', id: objectId, instances: new Map() };
      if (allOfType(entries, TLV_OBJECT_INSTANCE)) {
        for (const entry of entries) {
          if (object.instances.has(entry.id))
            fail(`${path} (TLV at byte ${entry.at}): duplicate object instance ${entry.id}`);
          object.instances.set(
            entry.id,
            decodeInstance(bytes, readTlvs(bytes, entry.start, entry.end), objectId, entry.id, model),
          );
        }
      } else if (noneOfType(entries, TLV_OBJECT_INSTANCE)) {
        // Some clients answer a read of a single-instance object with the resources of instance 0.
        if (model.getObject(objectId)?.multiple) {
          fail(`${path}: TLV holds resources without an object instance for multiple-instance object ${objectId}`);
        }
        object.instances.set(0, decodeInstance(bytes, entries, objectId, 0, model));
      } else {
        fail(`${path}: TLV mixes object instances with resources`);
      }
      return object;
    }
    case 2: {
      const instanceId = path.instanceId as number;
      if (entries.length === 1 && entries[0].type === TLV_OBJECT_INSTANCE) {
        const entry = entries[0];
        if (entry.id !== instanceId)
          fail(`${path} (TLV at byte ${entry.at}): object instance ${entry.id}, expected ${instanceId}`);
        return decodeInstance(bytes, readTlvs(bytes, entry.start, entry.end), objectId, instanceId, model);
      }
      return decodeInstance(bytes, entries, objectId, instanceId, model);
    }
    case 3: {
      const resourceId = path.resourceId as number;
      if (entries.length > 0 && allOfType(entries, TLV_RESOURCE_INSTANCE)) {
        const def = model.getResource(objectId, resourceId);
        if (def && !def.multiple) fail(`${path}: TLV holds resource instances for a single resource`);
        return decodeInstances(bytes, entries, resourceId, def ? def.type : 'opaque', path.toString());
      }
      if (entries.length === 0) {
        const def = model.getResource(objectId, resourceId);
        if (def?.multiple) return { kind: 'multipleResource', id: resourceId, type: def.type, instances: new Map() };
        return fail(`${path}: empty TLV payload`);
      }
      if (entries.length !== 1) fail(`${path}: expected one resource TLV, got ${entries.length}`);
      const entry = entries[0];
      if (entry.id !== resourceId)
        fail(`${path} (TLV at byte ${entry.at}): resource ${entry.id}, expected ${resourceId}`);
      return decodeResource(bytes, entry, objectId, path.instanceId as number, model);
    }
    case 4: {
      const resourceId = path.resourceId as number;
      const def = model.getResource(objectId, resourceId);
      if (def && !def.multiple) fail(`${path}: the model defines ${path.parent()} as a single resource`);
      let entry = entries.length === 1 ? entries[0] : undefined;
      if (entry?.type === TLV_MULTIPLE_RESOURCE && entry.id === resourceId) {
        const inner = readTlvs(bytes, entry.start, entry.end);
        entry = inner.length === 1 ? inner[0] : undefined;
      }
      if (entry === undefined || entry.type !== TLV_RESOURCE_INSTANCE) {
        return fail(`${path}: expected one resource instance TLV`);
      }
      if (entry.id !== path.resourceInstanceId) {
        fail(`${path} (TLV at byte ${entry.at}): resource instance ${entry.id}, expected ${path.resourceInstanceId}`);
      }
      const type = def ? def.type : 'opaque';
      return { kind: 'resourceInstance', id: entry.id, type, value: decodeValue(bytes, entry, type, path.toString()) };
    }
    default:
      return fail('TLV cannot be decoded for the root path');
  }
}

// ---------------------------------------------------------------------------------------------
// Encoding: measure (sizes and types per TLV, in write order), then write.

const MAX_TLV_LENGTH = 0xffffff;

function headerLength(id: number, length: number): number {
  return (id > 255 ? 3 : 2) + (length < 8 ? 0 : length < 0x100 ? 1 : length < 0x10000 ? 2 : 3);
}

function intWidth(value: number | bigint): number {
  if (typeof value === 'number') {
    if (value >= -128 && value <= 127) return 1;
    if (value >= -32768 && value <= 32767) return 2;
    if (value >= -2147483648 && value <= 2147483647) return 4;
    return 8;
  }
  if (value >= -128n && value <= 127n) return 1;
  if (value >= -32768n && value <= 32767n) return 2;
  if (value >= -2147483648n && value <= 2147483647n) return 4;
  return 8;
}

function uintWidth(value: number | bigint): number {
  if (typeof value === 'number') return value <= 0xff ? 1 : value <= 0xffff ? 2 : value <= 0xffffffff ? 4 : 8;
  return value <= 0xffn ? 1 : value <= 0xffffn ? 2 : value <= 0xffffffffn ? 4 : 8;
}

class TlvEncoder {
  /** Value or content length of every TLV, in write order. */
  private readonly lengths: number[] = [];
  /** Resource type of every value TLV (undefined for containers), same order. */
  private readonly types: (ResourceType | undefined)[] = [];
  /** Checked value of every value TLV (time as seconds), same order. */
  private readonly values: unknown[] = [];
  private cursor = 0;
  private buffer!: Buffer;
  private pos = 0;

  constructor(private readonly model: ObjectModelLookup) {}

  encode(node: LwM2mNode, path: LwM2mPath): Buffer {
    checkNodeAtPath(node, path);
    const o = path.objectId as number;
    let size = 0;
    switch (node.kind) {
      case 'object':
        for (const [id, instance] of node.instances) {
          if (instance?.kind !== 'instance' || instance.id !== id)
            fail(`${path}: instance keyed ${id} is not instance ${id}`);
          size += this.measureContainer(id, () => this.measureInstance(o, instance));
        }
        break;
      case 'instance':
        size = this.measureInstance(o, node);
        break;
      case 'resource':
      case 'multipleResource':
        size = this.measureResource(o, path.instanceId as number, node);
        break;
      case 'resourceInstance': {
        const r = path.resourceId as number;
        const where = path.toString();
        if (this.model.getResource(o, r)?.multiple === false)
          fail(`${where}: the model defines ${path.parent()} as a single resource`);
        size = this.measureValue(node.id, encodeType(this.model, o, r, node.type, where), node.value, where);
        break;
      }
    }
    this.buffer = Buffer.allocUnsafe(size);
    switch (node.kind) {
      case 'object':
        for (const instance of node.instances.values()) {
          this.writeContainer(TLV_OBJECT_INSTANCE, instance.id);
          this.writeInstance(instance);
        }
        break;
      case 'instance':
        this.writeInstance(node);
        break;
      case 'resource':
      case 'multipleResource':
        this.writeResource(node);
        break;
      case 'resourceInstance':
        this.writeValue(TLV_RESOURCE_INSTANCE, node.id);
        break;
    }
    if (this.pos !== size) throw new Error(`TLV encoder wrote ${this.pos} of ${size} bytes`);
    return this.buffer;
  }

  private measureContainer(id: number, measureContent: () => number): number {
    checkId(id, 'TLV identifier');
    const slot = this.lengths.length;
    this.lengths.push(0);
    this.types.push(undefined);
    this.values.push(undefined);
    const length = measureContent();
    if (length > MAX_TLV_LENGTH) fail(`TLV content of ${length} bytes exceeds the 24-bit length field`, '4.06');
    this.lengths[slot] = length;
    return headerLength(id, length) + length;
  }

  private measureInstance(o: number, instance: LwM2mObjectInstance): number {
    let size = 0;
    for (const [id, resource] of instance.resources) {
      if (resource?.id !== id) fail(`/${o}/${instance.id}: resource keyed ${id} has id ${resource?.id}`);
      size += this.measureResource(o, instance.id, resource);
    }
    return size;
  }

  private measureResource(o: number, i: number, resource: LwM2mResource): number {
    const where = `/${o}/${i}/${resource.id}`;
    const def: ResourceDefinition | undefined = this.model.getResource(o, resource.id);
    const type = encodeType(this.model, o, resource.id, resource.type, where);
    if (resource.kind === 'resource') {
      if (def?.multiple) fail(`${where}: the model defines a multiple resource, got a single value`);
      return this.measureValue(resource.id, type, resource.value, where);
    }
    if (resource.kind !== 'multipleResource') fail(`${where}: expected a resource node`);
    if (def && !def.multiple) fail(`${where}: the model defines a single resource, got multiple instances`);
    return this.measureContainer(resource.id, () => {
      let size = 0;
      for (const [ri, value] of resource.instances) {
        if (!Number.isInteger(ri) || ri < 0 || ri > 65535) fail(`${where}: invalid resource instance id ${ri}`);
        size += this.measureValue(ri, type, value, `${where}/${ri}`);
      }
      return size;
    });
  }

  private measureValue(id: number, type: ResourceType, value: unknown, where: string): number {
    checkId(id, 'TLV identifier');
    const checked = checkValue(type, value, where);
    let length: number;
    let stored: unknown = checked;
    switch (type) {
      case 'string':
      case 'corelnk':
        length = Buffer.byteLength(checked as string, 'utf8');
        break;
      case 'opaque':
        length = (checked as Uint8Array).length;
        break;
      case 'integer':
        length = intWidth(checked as number | bigint);
        break;
      case 'unsigned':
        length = uintWidth(checked as number | bigint);
        break;
      case 'time':
        stored = secondsFromDate(checked as Date);
        length = intWidth(stored as number);
        break;
      case 'float':
        length = Math.fround(checked as number) === checked ? 4 : 8;
        break;
      case 'boolean':
        length = 1;
        break;
      case 'objlnk':
        length = 4;
        break;
      default:
        return fail(`${where}: cannot encode type ${type}`);
    }
    if (length > MAX_TLV_LENGTH) fail(`${where}: value of ${length} bytes exceeds the 24-bit TLV length field`, '4.06');
    this.lengths.push(length);
    this.types.push(type);
    this.values.push(stored);
    return headerLength(id, length) + length;
  }

  private writeHeader(tlvType: number, id: number, length: number): void {
    const buffer = this.buffer;
    let p = this.pos;
    const wideId = id > 255;
    const lengthType = length < 8 ? 0 : length < 0x100 ? 1 : length < 0x10000 ? 2 : 3;
    buffer[p++] = (tlvType << 6) | (wideId ? 0x20 : 0) | (lengthType << 3) | (lengthType === 0 ? length : 0);
    if (wideId) buffer[p++] = id >> 8;
    buffer[p++] = id & 0xff;
    if (lengthType === 3) buffer[p++] = length >> 16;
    if (lengthType >= 2) buffer[p++] = (length >> 8) & 0xff;
    if (lengthType >= 1) buffer[p++] = length & 0xff;
    this.pos = p;
  }

  private writeContainer(tlvType: number, id: number): void {
    this.writeHeader(tlvType, id, this.lengths[this.cursor++]);
  }

  private writeInstance(instance: LwM2mObjectInstance): void {
    for (const resource of instance.resources.values()) this.writeResource(resource);
  }

  private writeResource(resource: LwM2mResource): void {
    if (resource.kind === 'resource') {
      this.writeValue(TLV_RESOURCE, resource.id);
      return;
    }
    this.writeContainer(TLV_MULTIPLE_RESOURCE, resource.id);
    for (const ri of resource.instances.keys()) this.writeValue(TLV_RESOURCE_INSTANCE, ri);
  }

  private writeValue(tlvType: number, id: number): void {
    const slot = this.cursor++;
    const length = this.lengths[slot];
    const type = this.types[slot] as ResourceType;
    const value = this.values[slot];
    this.writeHeader(tlvType, id, length);
    const buffer = this.buffer;
    const p = this.pos;
    switch (type) {
      case 'string':
      case 'corelnk':
        buffer.write(value as string, p, length, 'utf8');
        break;
      case 'opaque':
        buffer.set(value as Uint8Array, p);
        break;
      case 'integer':
      case 'time':
        writeInt(buffer, p, length, value as number | bigint, true);
        break;
      case 'unsigned':
        writeInt(buffer, p, length, value as number | bigint, false);
        break;
      case 'float':
        if (length === 4) buffer.writeFloatBE(value as number, p);
        else buffer.writeDoubleBE(value as number, p);
        break;
      case 'boolean':
        buffer[p] = value ? 1 : 0;
        break;
      case 'objlnk':
        buffer.writeUInt16BE((value as ObjectLink).objectId, p);
        buffer.writeUInt16BE((value as ObjectLink).instanceId, p + 2);
        break;
    }
    this.pos = p + length;
  }
}

function writeInt(buffer: Buffer, p: number, width: number, value: number | bigint, signed: boolean): void {
  if (width === 8) {
    if (signed) buffer.writeBigInt64BE(toBigInt(value), p);
    else buffer.writeBigUInt64BE(toBigInt(value), p);
    return;
  }
  const n = Number(value);
  if (width === 1) buffer[p] = n & 0xff;
  else if (width === 2) {
    buffer[p] = (n >> 8) & 0xff;
    buffer[p + 1] = n & 0xff;
  } else if (signed) buffer.writeInt32BE(n, p);
  else buffer.writeUInt32BE(n, p);
}

export function encodeTlv(node: LwM2mNode, path: LwM2mPath, model: ObjectModelLookup): Buffer {
  return new TlvEncoder(model).encode(node, path);
}

function tlvCodec(format: number): NodeCodec {
  return {
    format,
    name: 'application/vnd.oma.lwm2m+tlv',
    decode: decodeTlv,
    encode: encodeTlv,
  };
}

export const tlvCodec11542: NodeCodec = tlvCodec(ContentFormat.TLV);
export const tlvCodec1542: NodeCodec = tlvCodec(ContentFormat.OLD_TLV);
