/**
 * The device's object tree as the client reaches it: which objects and instances exist (built from the
 * model and each object's implementation), the device's own get / set, and the lookups of a path that
 * the server's requests go through (4.04 / 4.05 when absent or not readable).
 */
import { compareVersions } from '../model/builtins';
import { findResourceByName, type ObjectModel } from '../model/object-model';
import { LwM2mPath } from '../model/path';
import { ValueError, toPlain } from '../model/values';
import type {
  LwM2mNode,
  LwM2mObjectInstance,
  LwM2mResource,
  ObjectDefinition,
  ResourceDefinition,
  ResourceValue,
} from '../model/types';
import { ClientError } from './errors';
import {
  ClientInstance,
  ClientObject,
  ResourceSlot,
  coerceContent,
  isResourceOptions,
  sortedSlots,
  type InstanceSpec,
} from './object-tree';
import { builtinImplementation, type ObjectContext, type ObjectImplementation } from './objects';
import { parseObjectChoice, type Lwm2mClientOptions, type ObjectChoice } from './options';

/** What the object tree tells the rest of the client. */
export interface DeviceObjectsHost {
  /** What built-in object implementations may do with the device. */
  readonly context: ObjectContext;
  /** A value changed, or an instance came or went, at `path`: observers may be notified. */
  changed(path: LwM2mPath): void;
  /** Objects or instances came or went: the registration needs an Update. */
  objectsChanged(): void;
}

export class DeviceObjects {
  private readonly objects = new Map<number, ClientObject>();
  private readonly implementations = new Map<number, ObjectImplementation>();

  constructor(
    private readonly model: ObjectModel,
    private readonly options: Lwm2mClientOptions,
    private readonly host: DeviceObjectsHost,
  ) {}

  /** The objects exposed, in the order they were added. */
  values(): IterableIterator<ClientObject> {
    return this.objects.values();
  }

  object(objectId: number): ClientObject | undefined {
    return this.objects.get(objectId);
  }

  has(objectId: number): boolean {
    return this.objects.has(objectId);
  }

  /** The behaviour of an object that exists. */
  implementation(objectId: number): ObjectImplementation {
    return this.implementations.get(objectId)!;
  }

  /** The definition of the resource a path (level 3 or 4) names, when its object has one. */
  resourceDefinition(path: LwM2mPath): ResourceDefinition | undefined {
    return path.level >= 3 ? this.objects.get(path.objectId!)?.definition.resources[path.resourceId!] : undefined;
  }

  /** Object ids exposed, ascending. */
  objectIds(): number[] {
    return [...this.objects.keys()].sort((a, b) => a - b);
  }

  /** Instance ids of an object, ascending. */
  instanceIds(objectId: number): number[] {
    return [...(this.objects.get(objectId)?.instances.keys() ?? [])].sort((a, b) => a - b);
  }

  /**
   * Sets a value as the device itself (sensor reading, local change): a resource (`/3303/0/5700`), a
   * resource instance (`/3/0/7/1`) or several resources of an instance (`/3303/0` with `{ 5700: 21 }`).
   * Observers are notified. Throws for paths or values the model does not allow.
   */
  set(pathText: string, value: unknown): void {
    const path = LwM2mPath.parse(pathText);
    const instance = this.instanceAt(path);
    if (path.level === 2) {
      if (typeof value !== 'object' || value === null) throw new ValueError(`${path} expects { resourceId: value }`);
      const entries = value instanceof Map ? [...value.entries()] : Object.entries(value);
      for (const [key, resourceValue] of entries) {
        const id = /^\d+$/.test(String(key))
          ? Number(key)
          : findResourceByName(this.objects.get(instance.objectId)!.definition, String(key))?.id;
        if (id === undefined) throw new ValueError(`${path} has no resource "${String(key)}"`);
        this.set(`${path}/${id}`, resourceValue);
      }
      return;
    }
    if (path.level < 2)
      throw new ValueError(`set() needs an instance, resource or resource instance path, not ${path}`);
    const slot = this.slotFor(instance, path.resourceId!, true);
    if (slot === undefined) throw new ValueError(`object ${instance.objectId} has no resource ${path.resourceId}`);
    let changed: boolean;
    if (path.level === 4) {
      if (!slot.def.multiple) throw new ValueError(`${path.parent()} is a single resource`);
      const current = new Map(slot.instances ?? []);
      current.set(
        path.resourceInstanceId!,
        coerceContent({ ...slot.def, multiple: false }, value, path) as ResourceValue,
      );
      changed = slot.store(current);
    } else changed = slot.store(coerceContent(slot.def, value, path));
    if (changed) this.host.changed(path);
  }

  /**
   * A value as msg data (see lib/model toPlain): a resource's value, `{ id: value }` for a multiple
   * resource, `{ byName, byId }` for an instance, `{ id: instance }` for an object. Undefined when absent.
   */
  get(pathText: string): unknown {
    const path = LwM2mPath.parse(pathText);
    let node: LwM2mNode | undefined;
    try {
      node = this.localNode(path);
    } catch {
      return undefined;
    }
    return node === undefined ? undefined : toPlain(node, path, this.model);
  }

  /** Adds an object (before or after start; a registered client sends an Update). */
  addObject(choice: number | string | ObjectChoice): void {
    const c = parseObjectChoice(choice);
    if (this.objects.has(c.id)) {
      const count = typeof c.instances === 'number' ? c.instances : undefined;
      if (count !== undefined) while (this.instanceIds(c.id).length < count) this.addInstance(c.id);
      return;
    }
    const { definition, announced } = this.chooseDefinition(c.id, c.version);
    const object = new ClientObject(definition, announced);
    this.objects.set(c.id, object);
    this.implementations.set(c.id, c.implementation ?? this.builtin(definition));
    const instances = c.instances ?? 1;
    if (typeof instances === 'number') {
      for (let i = 0; i < instances; i++) this.addInstance(c.id, i);
    } else if (Array.isArray(instances)) {
      instances.forEach((spec, i) => this.addInstance(c.id, i, spec));
    } else {
      for (const [id, spec] of Object.entries(instances)) this.addInstance(c.id, Number(id), spec);
    }
    this.host.objectsChanged();
  }

  /** Adds an instance (next free id by default) with the built-in resources, overridden by `resources`. */
  addInstance(objectId: number, instanceId?: number, resources?: InstanceSpec): number {
    let object = this.objects.get(objectId);
    if (object === undefined) {
      this.addObject({ id: objectId, instances: 0 });
      object = this.objects.get(objectId)!;
    }
    const id = instanceId ?? object.freeInstanceId();
    if (object.instances.has(id)) throw new ClientError('4.00', `/${objectId}/${id} already exists`);
    if (!object.definition.multiple && object.instances.size > 0) {
      throw new ClientError('4.00', `object ${objectId} is single-instance`);
    }
    const spec = { ...this.implementations.get(objectId)!.instance(id), ...(resources ?? {}) };
    object.instances.set(id, this.buildInstance(object, id, spec));
    this.host.objectsChanged();
    this.host.changed(new LwM2mPath(objectId));
    return id;
  }

  /** Removes an instance (a registered client sends an Update). */
  removeInstance(objectId: number, instanceId: number): boolean {
    const object = this.objects.get(objectId);
    if (object === undefined || !object.instances.delete(instanceId)) return false;
    this.host.objectsChanged();
    this.host.changed(new LwM2mPath(objectId, instanceId));
    return true;
  }

  /** One simulated change of every simulated value; returns how many instances changed. */
  changeValues(): number {
    let count = 0;
    for (const [objectId, impl] of this.implementations) {
      if (impl.simulate === undefined) continue;
      for (const id of this.instanceIds(objectId)) {
        impl.simulate(id);
        count++;
      }
    }
    return count;
  }

  private chooseDefinition(id: number, wanted?: string): { definition: ObjectDefinition; announced?: string } {
    if (wanted !== undefined) {
      const definition = this.model.getObjectVersion(id, wanted);
      if (definition === undefined) throw new RangeError(`object ${id} version ${wanted} is not in the model`);
      return { definition, announced: definition.version };
    }
    const versions = this.model.versionsOf(id);
    if (versions.length === 0) throw new RangeError(`object ${id} is not in the model`);
    const mine = this.options.lwm2mVersion;
    let chosen: ObjectDefinition | undefined;
    for (const version of versions) {
      const definition = this.model.getObjectVersion(id, version)!;
      if (compareVersions(definition.lwm2mVersion, mine) <= 0) chosen = definition;
    }
    if (chosen !== undefined) return { definition: chosen, announced: chosen.version };
    // only versions written for a later LwM2M: use the oldest, announce no version (the implied one)
    return { definition: this.model.getObjectVersion(id, versions[0])! };
  }

  private builtin(definition: ObjectDefinition): ObjectImplementation {
    const o = this.options;
    const binding = o.queueMode && !o.binding.includes('Q') ? o.binding + 'Q' : o.binding;
    return builtinImplementation(this.host.context, definition, {
      shortServerId: o.shortServerId,
      defaultPmin: o.defaultPmin,
      defaultPmax: o.defaultPmax,
      supportedBinding: binding,
      firmware: o.firmware,
      device: {
        manufacturer: 'node-red-contrib-lwm2m',
        modelNumber: 'lwm2m-sim',
        serialNumber: `SN-${o.endpointName}`,
        firmwareVersion: '1.0.0',
        hardwareVersion: '1.0',
        softwareVersion: '1.0.0',
        deviceType: 'simulated device',
        ...o.device,
      },
    });
  }

  /** An instance of `object` with the resources of `spec` (values, or ResourceOptions with handlers). */
  buildInstance(object: ClientObject, id: number, spec: InstanceSpec): ClientInstance {
    const instance = new ClientInstance(object.id, id);
    for (const [key, entry] of Object.entries(spec)) {
      const resourceId = Number(key);
      const def = object.definition.resources[resourceId];
      if (def === undefined) throw new RangeError(`object ${object.id} has no resource ${key}`);
      const slot = new ResourceSlot(def);
      const path = new LwM2mPath(object.id, id, resourceId);
      if (isResourceOptions(entry)) {
        slot.read = entry.read;
        slot.write = entry.write;
        slot.execute = entry.execute;
        if (entry.value !== undefined) slot.store(coerceContent(def, entry.value, path));
      } else if (entry !== undefined && def.type !== 'none') {
        slot.store(coerceContent(def, entry, path));
      }
      instance.resources.set(resourceId, slot);
    }
    return instance;
  }

  private instanceAt(path: LwM2mPath): ClientInstance {
    if (path.level < 2) throw new ValueError(`${path} is not an instance or resource path`);
    const instance = this.objects.get(path.objectId!)?.instances.get(path.instanceId!);
    if (instance === undefined)
      throw new ValueError(`${path.toString().split('/').slice(0, 3).join('/')} does not exist`);
    return instance;
  }

  /** The slot of a resource; with `create`, made from the definition when the instance lacks it. */
  slotFor(instance: ClientInstance, resourceId: number, create: boolean): ResourceSlot | undefined {
    let slot = instance.resources.get(resourceId);
    if (slot === undefined && create) {
      const def = this.objects.get(instance.objectId)!.definition.resources[resourceId];
      if (def === undefined) return undefined;
      slot = new ResourceSlot(def);
      instance.resources.set(resourceId, slot);
    }
    return slot;
  }

  existingInstance(path: LwM2mPath): ClientInstance {
    const instance = this.objects.get(path.objectId!)?.instances.get(path.instanceId!);
    if (instance === undefined) throw new ClientError('4.04', `${path} not found`);
    return instance;
  }

  existingSlot(path: LwM2mPath): ResourceSlot {
    const slot = this.existingInstance(path).resources.get(path.resourceId!);
    if (slot === undefined) throw new ClientError('4.04', `${path} not found`);
    return slot;
  }

  /** The node at a path as a server reads it: only readable resources; ClientError 4.04 / 4.05. */
  readNode(path: LwM2mPath): LwM2mNode {
    if (path.level === 0) throw new ClientError('4.05', 'cannot read /');
    const object = this.objects.get(path.objectId!);
    if (object === undefined) throw new ClientError('4.04', `${path} not found`);
    if (path.level === 1) return object.node();
    const instance = this.existingInstance(path);
    if (path.level === 2) return instance.node();
    const slot = this.existingSlot(path);
    if (!slot.readable) throw new ClientError('4.05', `${path} is not readable`);
    const node = slot.node(path);
    if (node === undefined) throw new ClientError('4.04', `${path} has no value`);
    if (path.level === 3) return node;
    if (node.kind !== 'multipleResource') throw new ClientError('4.04', `${path} not found`);
    const value = node.instances.get(path.resourceInstanceId!);
    if (value === undefined) throw new ClientError('4.04', `${path} not found`);
    return { kind: 'resourceInstance', id: path.resourceInstanceId!, type: node.type, value };
  }

  /** Like readNode but for the device itself: every resource, readable or not. */
  private localNode(path: LwM2mPath): LwM2mNode | undefined {
    const object = this.objects.get(path.objectId!);
    if (object === undefined || path.level === 0) return undefined;
    const instanceNode = (instance: ClientInstance): LwM2mObjectInstance => {
      const resources = new Map<number, LwM2mResource>();
      for (const slot of sortedSlots(instance)) {
        const node = slot.node(instance.path.append(slot.id));
        if (node !== undefined) resources.set(slot.id, node);
      }
      return { kind: 'instance', id: instance.id, resources };
    };
    if (path.level === 1) {
      const instances = new Map<number, LwM2mObjectInstance>();
      for (const id of this.instanceIds(object.id)) instances.set(id, instanceNode(object.instances.get(id)!));
      return { kind: 'object', id: object.id, instances };
    }
    const instance = object.instances.get(path.instanceId!);
    if (instance === undefined) return undefined;
    if (path.level === 2) return instanceNode(instance);
    const node = instance.resources.get(path.resourceId!)?.node(path);
    if (node === undefined || path.level === 3) return node;
    if (node.kind !== 'multipleResource') return undefined;
    const value = node.instances.get(path.resourceInstanceId!);
    return value === undefined
      ? undefined
      : { kind: 'resourceInstance', id: path.resourceInstanceId!, type: node.type, value };
  }
}
