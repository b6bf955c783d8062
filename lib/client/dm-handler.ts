/**
 * The Device Management and Information Reporting interface of the client: answers a server's Read,
 * Write, Execute, Create, Delete, Discover, Write-Attributes, Observe and the composite operations.
 */
import { encodeUint } from '../coap/codec';
import type { IncomingRequest, OutgoingResponse } from '../coap/types';
import { ContentCodecError, ContentFormat } from '../content/types';
import { decodeNode, decodeNodes, decodePaths, encodeNode, encodeNodes } from '../content';
import type { ObjectModel } from '../model/object-model';
import { InvalidPathError, LwM2mPath } from '../model/path';
import { ValueError } from '../model/values';
import type { LwM2mNode, LwM2mObjectInstance, LwM2mResource } from '../model/types';
import type { DeviceObjects } from './device-objects';
import { ClientError, diagnostic } from './errors';
import type { ClientFormats } from './formats';
import { discoverLinks } from './links';
import type { Notifier } from './notifier';
import { ResourceSlot, contentOf, isResourceOptions, type InstanceSpec, type ResourceContent } from './object-tree';
import { emitError, normaliseRoot, type ClientEvents, type Lwm2mClientOptions } from './options';

/** Objects the server may not touch (LwM2M 1.1 §7.1: Security, OSCORE). */
const PROTECTED = new Set([0, 21]);

/** What the DM handler tells the rest of the client. */
export interface DmHandlerHost {
  /** Objects or instances came or went: the registration needs an Update. */
  objectsChanged(): void;
}

export class DmHandler {
  constructor(
    private readonly options: Lwm2mClientOptions,
    private readonly model: ObjectModel,
    private readonly objects: DeviceObjects,
    private readonly formats: ClientFormats,
    private readonly notifier: Notifier,
    private readonly events: ClientEvents,
    private readonly host: DmHandlerHost,
  ) {}

  /** Answers a request of the LwM2M server; refusals are thrown as ClientError (see errorResponse). */
  async dispatch(request: IncomingRequest): Promise<OutgoingResponse> {
    const segments = stripRoot(request.pathSegments, this.options.rootPath);
    if (segments === undefined) return { code: '4.04' };
    let path: LwM2mPath;
    try {
      path = LwM2mPath.fromSegments(segments);
    } catch {
      return { code: '4.04' };
    }
    if (path.objectId !== undefined && PROTECTED.has(path.objectId)) {
      return { code: '4.01', payload: diagnostic(`object ${path.objectId} is not accessible to a server`) };
    }
    if (request.method === 'FETCH' || request.method === 'iPATCH') {
      if (this.options.lwm2mVersion === '1.0' || path.level !== 0) {
        throw new ClientError('4.05', `${request.method} is not allowed on ${path}`);
      }
      if (request.method === 'iPATCH') return this.writeComposite(request);
      if (request.observe === 0) throw new ClientError('4.05', 'Observe-Composite is not supported');
      return this.readComposite(request);
    }
    switch (request.method) {
      case 'GET':
        if (request.accept === ContentFormat.LINK_FORMAT) return this.discover(path);
        if (request.observe === 0) return this.observe(request, path);
        if (request.observe === 1) this.notifier.cancel(request.peer, request.token, 'cancelled by the server');
        return this.read(path, request.accept);
      case 'PUT':
        if (request.query.length > 0) return this.writeAttributes(path, request.query);
        return this.write(request, path, 'replace');
      case 'POST':
        if (path.level === 1) return this.create(request, path);
        if (path.level === 2) return this.write(request, path, 'update');
        if (path.level === 3) {
          const slot = this.objects.existingSlot(path);
          if (slot.executable) return this.execute(request, path, slot);
          if (slot.def.multiple) return this.write(request, path, 'update');
          throw new ClientError('4.05', `${path} is not executable`);
        }
        throw new ClientError('4.05', `POST is not allowed on ${path}`);
      case 'DELETE':
        return this.delete(path);
      default:
        throw new ClientError('4.05', `${request.method} is not supported`);
    }
  }

  private read(path: LwM2mPath, accept: number | undefined): OutgoingResponse {
    if (path.level === 0) throw new ClientError('4.05', 'Read on / is not a Device Management operation');
    const node = this.objects.readNode(path);
    const format = this.formats.responseFormat(node, accept);
    return { code: '2.05', contentFormat: format, payload: encodeNode(node, format, path, this.model) };
  }

  private observe(request: IncomingRequest, path: LwM2mPath): OutgoingResponse {
    const response = this.read(path, request.accept);
    const sequence = this.notifier.observe(request, path, response.contentFormat!);
    return { ...response, options: [{ name: 'Observe', value: encodeUint(sequence) }] };
  }

  private discover(path: LwM2mPath): OutgoingResponse {
    if (path.level === 0 || path.level === 4) {
      throw new ClientError('4.00', `Discover needs an object, instance or resource path, not ${path}`);
    }
    const object = this.objects.object(path.objectId!);
    if (object === undefined) throw new ClientError('4.04', `${path} not found`);
    if (path.level >= 2) this.objects.existingInstance(path);
    if (path.level === 3) this.objects.existingSlot(path);
    const text = discoverLinks(object, path, this.notifier.attributes, this.options.lwm2mVersion);
    return { code: '2.05', contentFormat: ContentFormat.LINK_FORMAT, payload: Buffer.from(text, 'utf8') };
  }

  private async write(
    request: IncomingRequest,
    path: LwM2mPath,
    mode: 'replace' | 'update',
  ): Promise<OutgoingResponse> {
    if (path.level < 2) throw new ClientError('4.05', `Write is not allowed on ${path}`);
    const instance = this.objects.existingInstance(path);
    if (path.level >= 3) {
      const slot = this.objects.existingSlot(path);
      if (!slot.writable) throw new ClientError('4.05', `${path} is not writable`);
      if (path.level === 4 && !slot.def.multiple) throw new ClientError('4.04', `${path} not found`);
    }
    const format = this.formats.requestFormat(request.contentFormat, path, this.objects.resourceDefinition(path));
    const node = decodeNode(request.payload, format, path, this.model);
    const changes: Array<{ slot: ResourceSlot; resource: LwM2mResource; path: LwM2mPath }> = [];
    if (node.kind === 'instance') {
      for (const resource of node.resources.values()) {
        const slot = this.objects.slotFor(instance, resource.id, true);
        if (slot === undefined) throw new ClientError('4.04', `${path}/${resource.id} not found`);
        if (!slot.writable) throw new ClientError('4.05', `${path}/${resource.id} is not writable`);
        changes.push({ slot, resource, path: path.append(resource.id) });
      }
    } else if (node.kind === 'resource' || node.kind === 'multipleResource') {
      changes.push({ slot: this.objects.existingSlot(path), resource: node, path });
    } else if (node.kind === 'resourceInstance') {
      const slot = this.objects.existingSlot(path);
      const instances = new Map(slot.instances ?? []);
      instances.set(node.id, node.value);
      changes.push({
        slot,
        resource: { kind: 'multipleResource', id: slot.id, type: slot.def.type, instances },
        path,
      });
    } else throw new ClientError('4.00', `cannot write a ${node.kind} at ${path}`);

    const planned = changes.map((change) => ({
      ...change,
      content: contentOf(
        change.slot,
        change.resource,
        change.path,
        mode === 'update' && node.kind !== 'resourceInstance',
      ),
    }));
    await this.applyWrites(planned, mode);
    return { code: '2.04' };
  }

  /** Stores checked writes one by one, through each resource's write handler. */
  private async applyWrites(
    planned: Array<{ slot: ResourceSlot; path: LwM2mPath; content: ResourceContent }>,
    mode: 'replace' | 'update',
  ): Promise<void> {
    for (const { slot, path, content } of planned) {
      const keep = slot.write === undefined ? undefined : await slot.write(content, { path: path.toString(), mode });
      const changed = keep === false ? true : slot.store(content);
      if (changed) this.notifier.changed(path);
      this.events.emit('write', { path: path.toString(), value: this.objects.get(path.toString()), mode });
    }
  }

  /** Read-Composite (FETCH /): the values at the paths listed in the payload, in SenML. */
  private readComposite(request: IncomingRequest): OutgoingResponse {
    const format = this.formats.compositeFormat(request.contentFormat, '4.15');
    const accept = request.accept === undefined ? format : this.formats.compositeFormat(request.accept, '4.06');
    const nodes = new Map<string, LwM2mNode>();
    for (const path of decodePaths(request.payload, format)) {
      if (path.objectId !== undefined && PROTECTED.has(path.objectId)) throw new ClientError('4.01', `${path}`);
      try {
        nodes.set(path.toString(), this.objects.readNode(path));
      } catch (err) {
        if (!(err instanceof ClientError && err.code === '4.04')) throw err;
      }
    }
    return { code: '2.05', contentFormat: accept, payload: encodeNodes(nodes, accept, this.model) };
  }

  /** Write-Composite (iPATCH /): resources and resource instances of several objects at once. */
  private async writeComposite(request: IncomingRequest): Promise<OutgoingResponse> {
    const format = this.formats.compositeFormat(request.contentFormat, '4.15');
    const planned: Array<{ slot: ResourceSlot; path: LwM2mPath; content: ResourceContent }> = [];
    for (const [text, node] of decodeNodes(request.payload, format, this.model)) {
      const path = LwM2mPath.parse(text);
      if (path.objectId !== undefined && PROTECTED.has(path.objectId)) throw new ClientError('4.01', `${path}`);
      if (path.level < 3) throw new ClientError('4.00', `Write-Composite names resources, not ${path}`);
      const slot = this.objects.existingSlot(path);
      if (!slot.writable) throw new ClientError('4.05', `${path} is not writable`);
      if (node.kind === 'resourceInstance') {
        if (!slot.def.multiple) throw new ClientError('4.00', `${path.parent()} is a single resource`);
        const instances = new Map(slot.instances ?? []);
        instances.set(node.id, node.value);
        planned.push({ slot, path: path.parent(), content: instances });
      } else if (node.kind === 'resource' || node.kind === 'multipleResource') {
        planned.push({ slot, path, content: contentOf(slot, node, path, false) });
      } else throw new ClientError('4.00', `Write-Composite names resources, not ${path}`);
    }
    await this.applyWrites(planned, 'replace');
    return { code: '2.04' };
  }

  private async execute(request: IncomingRequest, path: LwM2mPath, slot: ResourceSlot): Promise<OutgoingResponse> {
    const args = request.payload.toString('utf8');
    if (args !== '' && !/^\d(='[^']*')?(,\d(='[^']*')?)*$/.test(args)) {
      throw new ClientError('4.00', `invalid Execute arguments "${args}"`);
    }
    await slot.execute?.(args, { path: path.toString() });
    this.events.emit('execute', { path: path.toString(), args });
    return { code: '2.04' };
  }

  private create(request: IncomingRequest, path: LwM2mPath): OutgoingResponse {
    const object = this.objects.object(path.objectId!);
    if (object === undefined) throw new ClientError('4.04', `${path} not found`);
    const impl = this.objects.implementation(object.id);
    if (!(impl.creatable ?? object.definition.multiple) || !object.definition.multiple) {
      throw new ClientError('4.05', `instances of ${path} cannot be created`);
    }
    const created: LwM2mObjectInstance[] = [];
    if (request.payload.length === 0) {
      created.push({ kind: 'instance', id: object.freeInstanceId(), resources: new Map() });
    } else {
      const format = this.formats.requestFormat(request.contentFormat, path, this.objects.resourceDefinition(path));
      let node: LwM2mNode;
      try {
        node = decodeNode(request.payload, format, path, this.model);
      } catch (err) {
        // TLV without an instance wrapper: the resources of one new instance whose id we choose
        const id = object.freeInstanceId();
        try {
          node = decodeNode(request.payload, format, path.append(id), this.model);
        } catch {
          throw err;
        }
      }
      if (node.kind === 'object') created.push(...node.instances.values());
      else if (node.kind === 'instance') created.push(node);
      else throw new ClientError('4.00', `Create needs instance content, got a ${node.kind}`);
    }
    for (const instance of created) {
      if (object.instances.has(instance.id)) throw new ClientError('4.00', `${path}/${instance.id} already exists`);
      for (const id of instance.resources.keys()) {
        if (object.definition.resources[id] === undefined) throw new ClientError('4.04', `${path}/x/${id} not found`);
      }
    }
    for (const instance of created) {
      const spec: InstanceSpec = { ...impl.instance(instance.id) };
      for (const resource of instance.resources.values()) {
        const value = resource.kind === 'multipleResource' ? resource.instances : resource.value;
        const existing = spec[resource.id];
        spec[resource.id] = isResourceOptions(existing) ? { ...existing, value } : value;
      }
      object.instances.set(instance.id, this.objects.buildInstance(object, instance.id, spec));
      this.events.emit('create', { path: `${path}/${instance.id}` });
    }
    this.host.objectsChanged();
    this.notifier.changed(path);
    const first = created[0].id;
    return { code: '2.01', locationPath: [String(path.objectId), String(first)] };
  }

  private delete(path: LwM2mPath): OutgoingResponse {
    if (path.level === 2) {
      const object = this.objects.object(path.objectId!);
      this.objects.existingInstance(path);
      const impl = this.objects.implementation(path.objectId!);
      if (!(impl.creatable ?? object!.definition.multiple)) throw new ClientError('4.05', `${path} cannot be deleted`);
      object!.instances.delete(path.instanceId!);
      this.events.emit('delete', { path: path.toString() });
      this.host.objectsChanged();
      this.notifier.changed(path);
      return { code: '2.02' };
    }
    if (path.level === 4 && this.options.lwm2mVersion === '1.2') {
      const slot = this.objects.existingSlot(path);
      if (!slot.writable || !slot.def.multiple || !slot.instances?.has(path.resourceInstanceId!)) {
        throw new ClientError(slot.instances?.has(path.resourceInstanceId!) ? '4.05' : '4.04', `${path}`);
      }
      const instances = new Map(slot.instances);
      instances.delete(path.resourceInstanceId!);
      slot.store(instances);
      this.events.emit('delete', { path: path.toString() });
      this.notifier.changed(path.parent());
      return { code: '2.02' };
    }
    throw new ClientError('4.05', `Delete is not allowed on ${path}`);
  }

  private writeAttributes(path: LwM2mPath, query: readonly string[]): OutgoingResponse {
    if (path.level === 0) throw new ClientError('4.05', 'Write-Attributes on / is not allowed');
    if (!this.objects.has(path.objectId!)) throw new ClientError('4.04', `${path} not found`);
    let resource: ResourceSlot | undefined;
    if (path.level >= 2) this.objects.existingInstance(path);
    if (path.level >= 3) resource = this.objects.existingSlot(path);
    if (path.level === 4 && this.options.lwm2mVersion === '1.0') {
      throw new ClientError('4.00', 'LwM2M 1.0 has no attributes on resource instances');
    }
    this.notifier.writeAttributes(
      path,
      query,
      resource?.def ?? this.model.getResource(path.objectId!, path.resourceId ?? -1),
    );
    return { code: '2.04' };
  }
}

/** The answer to a request whose handling threw: the refusal's code, or 5.00 (reported as an error). */
export function errorResponse(err: unknown, events: ClientEvents): OutgoingResponse {
  if (err instanceof ClientError) return { code: err.code, payload: diagnostic(err.message) };
  if (err instanceof ContentCodecError) return { code: err.coapCode, payload: diagnostic(err.message) };
  if (err instanceof ValueError || err instanceof InvalidPathError) {
    return { code: '4.00', payload: diagnostic(err.message) };
  }
  emitError(events, err instanceof Error ? err : new Error(String(err)));
  return { code: '5.00', payload: diagnostic(String((err as Error)?.message ?? err)) };
}

/** Uri-Path segments below our alternate root path; undefined when outside it. */
function stripRoot(segments: string[], root: string): string[] | undefined {
  const prefix = normaliseRoot(root).split('/').filter(Boolean);
  if (prefix.length === 0) return segments;
  for (let i = 0; i < prefix.length; i++) if (segments[i] !== prefix[i]) return undefined;
  return segments.slice(prefix.length);
}
