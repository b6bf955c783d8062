/**
 * The client's side of the bootstrap interface (LwM2M 1.1/1.2 Core §6.1, Transport §6.1): the answers to
 * the Bootstrap-Server's Discover, Read, Write, Delete and Finish, and the check that the provisioned
 * configuration holds a usable LwM2M Server account. The bootstrap sequence that asks for them (attempts,
 * retries, Bootstrap-Pack) is bootstrap-handler.ts.
 */
import type { IncomingRequest, OutgoingResponse } from '../coap/types';
import { ContentFormat } from '../content/types';
import { decodeNode, encodeNode, formatName, isSupportedFormat } from '../content';
import type { ObjectModel } from '../model/object-model';
import { LwM2mPath } from '../model/path';
import type { LwM2mNode, LwM2mResource, ResourceValue } from '../model/types';
import type { DeviceObjects } from './device-objects';
import type { PskCredentials } from './dtls-transport';
import { ClientError, diagnostic } from './errors';
import type { ClientFormats } from './formats';
import { contentOf, type ClientInstance, type ClientObject } from './object-tree';
import type { ClientLwm2mVersion } from './attributes';

/** Security Mode (/0/x/2) values, LwM2M 1.1 Core Appendix E.1. */
export const SECURITY_MODES: Record<number, string> = {
  0: 'PSK',
  1: 'RPK',
  2: 'Certificate',
  3: 'NoSec',
  4: 'Certificate with EST',
};

/** An LwM2M Server account found in the Security (0) and Server (1) objects. */
export interface ServerAccount {
  /** Security instance id (/0/x). */
  securityInstance: number;
  /** Server instance id (/1/x), the one whose Short Server ID matches. */
  serverInstance: number;
  shortServerId: number;
  /** LwM2M Server URI (/0/x/0). */
  uri: string;
  /** Security Mode (/0/x/2): 0 PSK or 3 NoSec (the only ones this client speaks). */
  securityMode: number;
  /** PSK Identity (/0/x/3, as UTF-8) and key (/0/x/5) for mode 0. */
  psk?: PskCredentials;
}

/** One resource's single value (undefined when absent or a multiple resource). */
export function resourceValue(instance: ClientInstance, resourceId: number): ResourceValue | undefined {
  const slot = instance.resources.get(resourceId);
  if (slot === undefined) return undefined;
  const content = slot.content(instance.path.append(resourceId));
  return content instanceof Map ? undefined : content;
}

function sortedInstances(object: ClientObject | undefined): ClientInstance[] {
  if (object === undefined) return [];
  return [...object.instances.values()].sort((a, b) => a.id - b.id);
}

/** True for the Security instance of the LwM2M Bootstrap-Server account (/0/x/1 Bootstrap-Server = true). */
export function isBootstrapAccount(instance: ClientInstance): boolean {
  return resourceValue(instance, 1) === true;
}

function integer(value: ResourceValue | undefined): number | undefined {
  if (typeof value === 'number' && Number.isInteger(value)) return value;
  if (typeof value === 'bigint') return Number(value);
  return undefined;
}

/**
 * The first usable LwM2M Server account (lowest Security instance id), or the reasons there is none:
 * a Security instance with Bootstrap-Server false, a Short Server ID matched by a Server instance, a
 * coap:// or coaps:// URI, and a security mode this client speaks (0 PSK with identity and key, 3 NoSec).
 */
export function findServerAccount(
  security: ClientObject | undefined,
  server: ClientObject | undefined,
): { account: ServerAccount } | { error: string } {
  const candidates = sortedInstances(security).filter((instance) => !isBootstrapAccount(instance));
  if (candidates.length === 0) {
    return { error: 'no LwM2M Server account: no Security instance with Bootstrap-Server (/0/x/1) false' };
  }
  const problems: string[] = [];
  for (const instance of candidates) {
    const where = `/0/${instance.id}`;
    const ssid = integer(resourceValue(instance, 10));
    if (ssid === undefined) {
      problems.push(`${where} has no Short Server ID (${where}/10)`);
      continue;
    }
    const serverInstance = sortedInstances(server).find((s) => integer(resourceValue(s, 0)) === ssid);
    if (serverInstance === undefined) {
      problems.push(`no Server instance with Short Server ID ${ssid} (/1/x/0) for ${where}`);
      continue;
    }
    const uri = resourceValue(instance, 0);
    let scheme: string;
    try {
      scheme = new URL(String(uri)).protocol;
    } catch {
      problems.push(`${where}/0 is not a server URI: "${String(uri ?? '')}"`);
      continue;
    }
    const mode = integer(resourceValue(instance, 2)) ?? 0;
    if (mode !== 0 && mode !== 3) {
      const name = SECURITY_MODES[mode] ?? 'unknown';
      problems.push(`${where}: security mode ${mode} (${name}) is not supported (only 0 PSK and 3 NoSec)`);
      continue;
    }
    const wanted = mode === 0 ? 'coaps:' : 'coap:';
    if (scheme !== wanted) {
      problems.push(`${where}: security mode ${mode} (${SECURITY_MODES[mode]}) needs a ${wanted}// URI, not ${uri}`);
      continue;
    }
    const account: ServerAccount = {
      securityInstance: instance.id,
      serverInstance: serverInstance.id,
      shortServerId: ssid,
      uri: String(uri),
      securityMode: mode,
    };
    if (mode === 0) {
      const identity = resourceValue(instance, 3);
      const key = resourceValue(instance, 5);
      if (!Buffer.isBuffer(identity) || identity.length === 0 || !Buffer.isBuffer(key) || key.length === 0) {
        problems.push(`${where}: PSK mode needs an identity (${where}/3) and a key (${where}/5)`);
        continue;
      }
      account.psk = { identity: identity.toString('utf8'), key: Buffer.from(key) };
    }
    return { account };
  }
  return { error: problems.join('; ') };
}

/**
 * The Bootstrap-Discover answer (LwM2M 1.1 Core §5.2.7.3): `</>;lwm2m="1.1"`, then every object (with
 * `ver` when not 1.0) or its instances; Security instances of LwM2M Servers carry `ssid` and (1.1+) `uri`,
 * Server instances `ssid`; the Bootstrap-Server account carries neither.
 */
export function bootstrapDiscoverLinks(
  objects: Iterable<ClientObject>,
  objectId: number | undefined,
  lwm2mVersion: '1.0' | '1.1' | '1.2',
): string {
  const links = [`</>;lwm2m="${lwm2mVersion}"`];
  const sorted = [...objects].filter((o) => objectId === undefined || o.id === objectId).sort((a, b) => a.id - b.id);
  for (const object of sorted) {
    const version = object.announcedVersion;
    const instances = sortedInstances(object);
    if (version !== undefined && version !== '1.0') links.push(`</${object.id}>;ver=${version}`);
    else if (instances.length === 0) links.push(`</${object.id}>`);
    for (const instance of instances) {
      let link = `</${object.id}/${instance.id}>`;
      if (object.id === 0 && !isBootstrapAccount(instance)) {
        const ssid = integer(resourceValue(instance, 10));
        if (ssid !== undefined) link += `;ssid=${ssid}`;
        const uri = resourceValue(instance, 0);
        if (lwm2mVersion !== '1.0' && typeof uri === 'string' && uri !== '') {
          link += `;uri="${uri.replace(/["\\]/g, '\\$&')}"`;
        }
      } else if (object.id === 1) {
        const ssid = integer(resourceValue(instance, 0));
        if (ssid !== undefined) link += `;ssid=${ssid}`;
      }
      links.push(link);
    }
  }
  return links.join(',');
}

/** What the bootstrap interface tells the bootstrap sequence. */
export interface BootstrapInterfaceHost {
  /** Objects or instances came or went. */
  objectsChanged(): void;
  /** Bootstrap-Finish (or a Bootstrap-Pack) left a usable account: the bootstrap is done. */
  finished(account: ServerAccount): void;
}

/** Answers the Bootstrap-Server's requests on the device's object tree. */
export class BootstrapInterface {
  constructor(
    private readonly lwm2mVersion: ClientLwm2mVersion,
    private readonly model: ObjectModel,
    private readonly objects: DeviceObjects,
    private readonly formats: ClientFormats,
    private readonly host: BootstrapInterfaceHost,
  ) {}

  /** A request of the Bootstrap-Server (the bootstrap interface: Discover, Read, Write, Delete, Finish). */
  async answer(request: IncomingRequest): Promise<OutgoingResponse> {
    const segments = request.pathSegments;
    if (segments.length === 1 && segments[0] === 'bs') {
      if (request.method !== 'POST') throw new ClientError('4.05', `${request.method} /bs is not allowed`);
      return this.bootstrapFinish();
    }
    let path: LwM2mPath;
    try {
      path = LwM2mPath.fromSegments(segments);
    } catch {
      return { code: '4.04' };
    }
    switch (request.method) {
      case 'GET':
        if (request.accept === ContentFormat.LINK_FORMAT) return this.bootstrapDiscover(path);
        return this.bootstrapRead(path, request.accept);
      case 'PUT':
        return this.bootstrapWrite(request, path);
      case 'DELETE':
        return this.bootstrapDelete(path);
      default:
        throw new ClientError('4.05', `${request.method} is not a bootstrap operation`);
    }
  }

  private bootstrapFinish(): OutgoingResponse {
    const found = findServerAccount(this.objects.object(0), this.objects.object(1));
    // LwM2M 1.1 §6.1.7.6: an inconsistent configuration is refused with 4.06 Not Acceptable
    if ('error' in found) return { code: '4.06', payload: diagnostic(found.error) };
    this.host.finished(found.account);
    return { code: '2.04' };
  }

  private bootstrapDiscover(path: LwM2mPath): OutgoingResponse {
    if (path.level > 1) throw new ClientError('4.00', `Bootstrap-Discover targets / or an object, not ${path}`);
    if (path.level === 1 && !this.objects.has(path.objectId!)) throw new ClientError('4.04', `${path} not found`);
    const text = bootstrapDiscoverLinks(this.objects.values(), path.objectId, this.lwm2mVersion);
    return { code: '2.05', contentFormat: ContentFormat.LINK_FORMAT, payload: Buffer.from(text, 'utf8') };
  }

  /** Bootstrap-Read (1.1+): the Server (1) and Access Control (2) objects only. */
  private bootstrapRead(path: LwM2mPath, accept: number | undefined): OutgoingResponse {
    if (this.lwm2mVersion === '1.0') throw new ClientError('4.05', 'LwM2M 1.0 has no Bootstrap-Read');
    if (path.level === 0 || (path.objectId !== 1 && path.objectId !== 2)) {
      throw new ClientError('4.01', `Bootstrap-Read is allowed on /1 and /2 only, not ${path}`);
    }
    const node = this.objects.readNode(path);
    const format = this.formats.responseFormat(node, accept);
    return { code: '2.05', contentFormat: format, payload: encodeNode(node, format, path, this.model) };
  }

  private bootstrapWrite(request: IncomingRequest, path: LwM2mPath): OutgoingResponse {
    if (path.level === 0 || path.level === 4) {
      throw new ClientError('4.00', `Bootstrap-Write targets an object, instance or resource, not ${path}`);
    }
    const object = this.bootstrapObject(path.objectId!);
    let format = request.contentFormat;
    if (format === undefined) {
      const def = path.level === 3 ? object.definition.resources[path.resourceId!] : undefined;
      if (path.level === 3 && def !== undefined && !def.multiple) {
        format = def.type === 'opaque' ? ContentFormat.OPAQUE : ContentFormat.TEXT;
      } else format = this.formats.multiFormat;
    }
    // every format lib/content decodes (TLV, SenML JSON/CBOR, LwM2M JSON/CBOR, text, opaque, CBOR)
    if (!isSupportedFormat(format))
      throw new ClientError('4.15', `content format ${formatName(format)} is not supported`);
    const node = decodeNode(request.payload, format, path, this.model);
    this.writeNode(path, node);
    return { code: '2.04' };
  }

  /** The object a Bootstrap-Write names, added (without instances) when the model knows it. */
  private bootstrapObject(objectId: number): ClientObject {
    let object = this.objects.object(objectId);
    if (object === undefined) {
      if (this.model.versionsOf(objectId).length === 0) throw new ClientError('4.04', `object ${objectId} not found`);
      this.objects.addObject({ id: objectId, instances: 0 });
      object = this.objects.object(objectId)!;
    }
    return object;
  }

  /** Stores a written node (object, instance, resource or resource instance), creating instances as needed. */
  writeNode(path: LwM2mPath, node: LwM2mNode): void {
    const object = this.bootstrapObject(path.objectId!);
    switch (node.kind) {
      case 'object':
        for (const instance of node.instances.values()) {
          this.bootstrapWriteInstance(object, instance.id, [...instance.resources.values()]);
        }
        return;
      case 'instance':
        this.bootstrapWriteInstance(object, node.id, [...node.resources.values()]);
        return;
      case 'resource':
      case 'multipleResource':
        this.bootstrapWriteInstance(object, path.instanceId!, [node]);
        return;
      case 'resourceInstance': {
        const instance = this.bootstrapInstance(object, path.instanceId!);
        const def = object.definition.resources[path.resourceId!];
        if (def === undefined || !def.multiple)
          throw new ClientError('4.00', `${path.parent()} is not a multiple resource`);
        const slot = this.objects.slotFor(instance, path.resourceId!, true)!;
        const instances = new Map(slot.instances ?? []);
        instances.set(node.id, node.value);
        slot.store(instances);
        return;
      }
      default:
        throw new ClientError('4.00', `cannot write ${path}`);
    }
  }

  private bootstrapWriteInstance(object: ClientObject, instanceId: number, resources: LwM2mResource[]): void {
    for (const resource of resources) {
      if (object.definition.resources[resource.id] === undefined) {
        throw new ClientError('4.04', `/${object.id}/${instanceId}/${resource.id} not found`);
      }
    }
    const instance = this.bootstrapInstance(object, instanceId);
    for (const resource of resources) {
      const slot = this.objects.slotFor(instance, resource.id, true)!;
      slot.store(contentOf(slot, resource, instance.path.append(resource.id), false));
    }
  }

  /** An instance, created when missing (Security from nothing, others with their built-in resources). */
  private bootstrapInstance(object: ClientObject, instanceId: number): ClientInstance {
    const existing = object.instances.get(instanceId);
    if (existing !== undefined) return existing;
    if (!object.definition.multiple && object.instances.size > 0) {
      throw new ClientError('4.00', `object ${object.id} is single-instance`);
    }
    const spec = object.id === 0 ? {} : this.objects.implementation(object.id).instance(instanceId);
    object.instances.set(instanceId, this.objects.buildInstance(object, instanceId, spec));
    this.host.objectsChanged();
    return object.instances.get(instanceId)!;
  }

  /**
   * Bootstrap-Delete (LwM2M 1.1 §6.1.7.5): `/` deletes every instance but the Bootstrap-Server account
   * and the Device object's; `/0` spares the Bootstrap-Server account; deleting that account or the
   * Device instance by name is refused (4.00).
   */
  private bootstrapDelete(path: LwM2mPath): OutgoingResponse {
    if (path.level === 0) {
      for (const id of this.objects.objectIds()) if (id !== 3) this.deleteInstances(id);
      return { code: '2.02' };
    }
    if (path.level > 2)
      throw new ClientError('4.00', `Bootstrap-Delete targets /, an object or an instance, not ${path}`);
    if (path.objectId === 3) throw new ClientError('4.00', 'the Device object cannot be deleted');
    const object = this.objects.object(path.objectId!);
    if (path.level === 1) {
      if (object !== undefined) this.deleteInstances(object.id);
      return { code: '2.02' };
    }
    const instance = object?.instances.get(path.instanceId!);
    if (instance !== undefined) {
      if (object!.id === 0 && isBootstrapAccount(instance)) {
        throw new ClientError('4.00', `${path} is the Bootstrap-Server account and cannot be deleted`);
      }
      object!.instances.delete(instance.id);
      this.host.objectsChanged();
    }
    return { code: '2.02' };
  }

  /** Deletes the instances of an object, but the Bootstrap-Server account. */
  deleteInstances(objectId: number): void {
    const object = this.objects.object(objectId);
    if (object === undefined) return;
    for (const instance of [...object.instances.values()]) {
      if (objectId === 0 && isBootstrapAccount(instance)) continue;
      object.instances.delete(instance.id);
      this.host.objectsChanged();
    }
  }
}
